"""Sparse (BM25) and multivector search: Quiver's server next to Qdrant's engine (qdrant-edge-py,
in-process), one run, same data and queries.

Sparse: a text corpus from an offline source, Debian's package descriptions (`apt-cache
dumpavail`: each package's short description and every paragraph of a long one where the lists have them), topped up
with the PyPI summaries of the tool library when there are fewer than `--docs`. Documents and
queries are embedded by Qdrant's own BM25 model (`qdrant_edge.Bm25`); Quiver gets the same
vectors through REST, and a sample of documents is also sent as `Document`s to check that the
server's own inference gives the same vectors. The collection has the `idf` modifier on both.

Multivector: ColBERT-like synthetic data (clustered 64-d rows, 4-24 rows per document, queries
of 8 rows), cosine `max_sim`, HNSW on both; recall@10 against an exact numpy computation.

Quiver runs as its release binary (started here, in a temporary directory) and is queried through
REST by one client thread, so its QPS includes HTTP; the server-side time of each answer is
reported as well. Qdrant's engine is queried in-process, one query per call.

    python3 -m venv venv && venv/bin/pip install qdrant-edge-py==0.9.0 numpy requests
    venv/bin/python bench/hybrid_bench.py --quiver .build/release/quiver --docs 120000
    venv/bin/python bench/hybrid_bench.py --parts multivector --multi-quantization scalar
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import requests


def corpus(n):
    docs = []
    text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True).stdout
    for block in text.split("\n\n"):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("Description"):
                continue
            docs.append(line.split(":", 1)[1].strip())
            paragraph = []
            for rest in lines[i + 1:]:
                if not rest.startswith(" "):
                    break
                if rest.strip() == ".":
                    if paragraph:
                        docs.append(" ".join(paragraph))
                    paragraph = []
                else:
                    paragraph.append(rest.strip())
            if paragraph:
                docs.append(" ".join(paragraph))
            break
    docs = [d for d in dict.fromkeys(docs) if len(d.split()) >= 3]
    source = f"{len(docs)} Debian package descriptions"
    pypi = "/work/.library/env/packages/pypi.tsv"
    if len(docs) < n and os.path.exists(pypi):
        with open(pypi, encoding="utf-8", errors="replace") as f:
            next(f)
            extra = [line.rstrip("\n").split("\t")[-1] for line in f]
        extra = [d for d in extra if len(d.split()) >= 3][: n - len(docs)]
        docs += extra
        source += f" and {len(extra)} PyPI package summaries"
    return docs[:n], source


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quiver:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="quiver-bench-")
        self.port = free_port()
        env = dict(os.environ, QDRANT__SERVICE__HOST="127.0.0.1", QDRANT__SERVICE__HTTP_PORT=str(self.port),
                   QDRANT__SERVICE__GRPC_PORT=str(free_port()),
                   QDRANT__STORAGE__STORAGE_PATH=os.path.join(self.dir, "storage"),
                   QDRANT__STORAGE__SNAPSHOTS_PATH=os.path.join(self.dir, "snapshots"), QDRANT__LOG_LEVEL="WARN")
        self.proc = subprocess.Popen([binary], cwd=self.dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        for _ in range(200):
            try:
                if self.http.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("quiver did not start")

    def call(self, method, path, body=None):
        r = self.http.request(method, self.url + path, json=body, timeout=600)
        if r.status_code != 200:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def wait_green(self, name):
        while self.call("GET", f"/collections/{name}")["result"]["status"] != "green":
            time.sleep(0.5)

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def sparse_json(v):
    return {"indices": list(v.indices), "values": list(v.values)}


def run_sparse(args, qe, quiver):
    docs, source = corpus(args.docs)
    rng = random.Random(7)
    bm25 = qe.Bm25()
    t0 = time.perf_counter()
    vectors = [bm25.embed_document(d) for d in docs]
    embed_s = time.perf_counter() - t0
    words = [re.findall(r"[^\W_]+", d) for d in docs]
    query_texts = []
    while len(query_texts) < args.queries:
        w = words[rng.randrange(len(words))]
        if len(w) >= 4:
            query_texts.append(" ".join(rng.sample(w, rng.randint(2, 4))))
    queries = [bm25.embed_query(q) for q in query_texts]
    nnz = statistics.mean(len(v.indices) for v in vectors)
    print(f"sparse corpus: {len(docs)} documents ({source}), {nnz:.1f} terms per document; {len(queries)} queries", flush=True)

    # Qdrant's engine.
    path = tempfile.mkdtemp(prefix="edge-sparse-")
    cfg = qe.EdgeConfig(sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=10**9, indexing_threshold=1),
                        max_search_threads=1, wal_enabled=False)
    shard = qe.EdgeShard.create(os.path.join(path, "shard"), cfg)
    t0 = time.perf_counter()
    for s in range(0, len(vectors), 1000):
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, {"bm25": vectors[i]}) for i in range(s, min(len(vectors), s + 1000))]))
    shard.optimize()
    edge_build = time.perf_counter() - t0
    requests_ = [qe.QueryRequest(limit=10, query=qe.Query.Nearest(q, using="bm25")) for q in queries]
    edge_ids = [[p.id for p in shard.query(r)] for r in requests_]
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        for r in requests_:
            shard.query(r)
        w = time.perf_counter() - t0
        best = w if best is None else min(best, w)
    edge_qps = len(requests_) / best
    shutil.rmtree(path, ignore_errors=True)

    # Quiver.
    quiver.call("PUT", "/collections/sp", {"vectors": {}, "sparse_vectors": {"bm25": {"modifier": "idf"}}})
    t0 = time.perf_counter()
    for s in range(0, len(vectors), 1000):
        points = [{"id": i, "vector": {"bm25": sparse_json(vectors[i])}} for i in range(s, min(len(vectors), s + 1000))]
        quiver.call("PUT", "/collections/sp/points?wait=true", {"points": points})
    quiver.wait_green("sp")
    quiver_build = time.perf_counter() - t0
    # The server's own inference gives Qdrant's vectors.
    sample = rng.sample(range(len(docs)), 200)
    quiver.call("PUT", "/collections/sp/points?wait=true", {"points": [
        {"id": 10_000_000 + i, "vector": {"bm25": {"text": docs[i], "model": "qdrant/bm25"}}} for i in sample]})
    got = quiver.call("POST", "/collections/sp/points", {"ids": [10_000_000 + i for i in sample], "with_vector": True})["result"]
    same = sum(1 for p, i in zip(sorted(got, key=lambda p: p["id"]), sorted(sample))
               if p["vector"]["bm25"]["indices"] == sorted(vectors[i].indices)
               and np.allclose(p["vector"]["bm25"]["values"], [dict(zip(vectors[i].indices, vectors[i].values))[j] for j in sorted(vectors[i].indices)], rtol=1e-6))
    quiver.call("POST", "/collections/sp/points/delete?wait=true", {"points": [10_000_000 + i for i in sample]})
    bodies = [{"query": sparse_json(q), "using": "bm25", "limit": 10} for q in queries]
    quiver_ids, server_ms = [], []
    for b in bodies:
        answer = quiver.call("POST", "/collections/sp/points/query", b)
        quiver_ids.append([p["id"] for p in answer["result"]["points"]])
        server_ms.append(answer["time"] * 1000)
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        for b in bodies:
            quiver.call("POST", "/collections/sp/points/query", b)
        w = time.perf_counter() - t0
        best = w if best is None else min(best, w)
    quiver_qps = len(bodies) / best
    agree = statistics.mean(len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(quiver_ids, edge_ids) if b)
    return {"documents": len(docs), "source": source, "terms_per_document": round(nnz, 1), "queries": len(queries),
            "embed_s": round(embed_s, 1), "inference_identical": f"{same}/{len(sample)}",
            "qdrant_engine": {"build_s": round(edge_build, 1), "qps": round(edge_qps)},
            "quiver_rest": {"build_s": round(quiver_build, 1), "qps": round(quiver_qps),
                            "server_ms_median": round(statistics.median(server_ms), 3)},
            "top10_agreement": round(agree, 4)}


def run_multi(args, qe, quiver):
    rng = np.random.default_rng(11)
    d, n = 64, args.multi_docs
    centres = rng.normal(size=(200, d)).astype(np.float32)
    def matrix(rows):
        m = centres[rng.integers(0, len(centres), rows)] + 0.6 * rng.normal(size=(rows, d)).astype(np.float32)
        return m / np.linalg.norm(m, axis=1, keepdims=True)
    docs = [matrix(int(rng.integers(4, 25))) for _ in range(n)]
    queries = [matrix(8) for _ in range(args.multi_queries)]
    truth = []
    for q in queries:
        scores = np.array([(q @ m.T).max(axis=1).sum() for m in docs])
        truth.append(list(np.argsort(-scores, kind="stable")[:10]))
    rows = statistics.mean(len(m) for m in docs)
    print(f"multivectors: {n} documents of {rows:.1f} rows × {d}, {len(queries)} queries of 8 rows", flush=True)

    path = tempfile.mkdtemp(prefix="edge-multi-")
    cfg = qe.EdgeConfig(vectors={"colbert": qe.EdgeVectorParams(size=d, distance=qe.Distance.Cosine,
                                                                multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim))},
                        hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10, max_indexing_threads=2),
                        optimizers=qe.EdgeOptimizersConfig(default_segment_number=1, max_segment_size=10**9, indexing_threshold=1),
                        max_search_threads=1, wal_enabled=False)
    shard = qe.EdgeShard.create(os.path.join(path, "shard"), cfg)
    t0 = time.perf_counter()
    for s in range(0, n, 500):
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(i, {"colbert": docs[i].tolist()}) for i in range(s, min(n, s + 500))]))
    shard.optimize()
    edge_build = time.perf_counter() - t0
    results = {"documents": n, "rows_per_document": round(rows, 1), "dimension": d, "queries": len(queries)}
    edge = {"build_s": round(edge_build, 1)}
    for ef in (64, 128):
        reqs = [qe.QueryRequest(limit=10, query=qe.Query.Nearest(q.tolist(), using="colbert"), params=qe.SearchParams(hnsw_ef=ef)) for q in queries]
        ids = [[p.id for p in shard.query(r)] for r in reqs]
        t0 = time.perf_counter()
        for r in reqs:
            shard.query(r)
        w = time.perf_counter() - t0
        edge[f"ef{ef}"] = {"recall": round(statistics.mean(len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)), 3), "qps": round(len(reqs) / w)}
    results["qdrant_engine"] = edge
    shutil.rmtree(path, ignore_errors=True)

    colbert = {"size": d, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}}
    if args.multi_quantization == "scalar":
        colbert["quantization_config"] = {"scalar": {"type": "int8"}}
    quiver.call("PUT", "/collections/mv", {"vectors": {"colbert": colbert},
                                           "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10},
                                           "optimizers_config": {"default_segment_number": 1, "indexing_threshold": 1}})
    t0 = time.perf_counter()
    for s in range(0, n, 500):
        quiver.call("PUT", "/collections/mv/points?wait=true", {"points": [{"id": i, "vector": {"colbert": docs[i].tolist()}} for i in range(s, min(n, s + 500))]})
    quiver.wait_green("mv")
    mine = {"build_s": round(time.perf_counter() - t0, 1)}
    for ef in (64, 128):
        bodies = [{"query": q.tolist(), "using": "colbert", "limit": 10, "params": {"hnsw_ef": ef}} for q in queries]
        ids, server_ms = [], []
        for b in bodies:
            answer = quiver.call("POST", "/collections/mv/points/query", b)
            ids.append([p["id"] for p in answer["result"]["points"]])
            server_ms.append(answer["time"] * 1000)
        t0 = time.perf_counter()
        for b in bodies:
            quiver.call("POST", "/collections/mv/points/query", b)
        w = time.perf_counter() - t0
        mine[f"ef{ef}"] = {"recall": round(statistics.mean(len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)), 3),
                           "qps": round(len(bodies) / w), "server_ms_median": round(statistics.median(server_ms), 3)}
    results["quiver_rest"] = mine
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiver", default=".build/release/quiver")
    parser.add_argument("--docs", type=int, default=120_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--multi-docs", type=int, default=10_000)
    parser.add_argument("--multi-queries", type=int, default=200)
    parser.add_argument("--multi-quantization", choices=["none", "scalar"], default="none",
                        help="quantization_config of Quiver's multivector (Qdrant's engine keeps float rows)")
    parser.add_argument("--parts", default="sparse,multivector", help="which comparisons to run, comma-separated")
    args = parser.parse_args()
    import qdrant_edge as qe
    quiver = Quiver(os.path.abspath(args.quiver))
    parts = {"sparse": run_sparse, "multivector": run_multi}
    try:
        out = {name: parts[name](args, qe, quiver) for name in args.parts.split(",")}
    finally:
        quiver.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
