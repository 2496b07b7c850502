"""Filtered search speed on a real Quiver node: 100,000 points of 128-d, a keyword field with 100
values (1% selectivity each) under a payload index. Prints queries/s and mean latency for the
unfiltered search and for the filtered one, both exact.

    python bench/filter_bench.py [--binary .build/release/quiver] [--points 100000] [--queries 200]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upsert_bench import Node, dumps  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(Path(__file__).resolve().parents[1] / ".build/release/quiver"))
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    import shutil
    import tempfile
    workdir = Path(tempfile.mkdtemp(prefix="quiver-filter-bench-"))
    node = Node(args.binary, workdir)
    rng = np.random.default_rng(11)
    try:
        node.start()
        node.request("PUT", "/collections/f", dumps({"vectors": {"size": 128, "distance": "Cosine"}}))
        vectors = rng.standard_normal((args.points, 128), dtype=np.float32)
        for start in range(0, args.points, 1000):
            ids = list(range(start, min(args.points, start + 1000)))
            body = {"points": [{"id": i, "vector": vectors[i].tolist(), "payload": {"group": f"g{i % 100}"}} for i in ids]}
            node.request("PUT", "/collections/f/points?wait=true", dumps(body))
        node.request("PUT", "/collections/f/index?wait=true", dumps({"field_name": "group", "field_schema": "keyword"}))
        while json.loads(node.request("GET", "/collections/f")[1])["result"]["status"] != "green":
            time.sleep(0.5)
        info = json.loads(node.request("GET", "/collections/f")[1])["result"]
        print(f"{args.points} points, {info['segments_count']} segments, index: {info['payload_schema']}")
        queries = rng.standard_normal((args.queries, 128), dtype=np.float32)
        for label, extra in [("unfiltered", {}),
                             ("filtered, 1% (indexed keyword)", {"filter": {"must": [{"key": "group", "match": {"value": "g7"}}]}})]:
            bodies = [dumps({"query": q.tolist(), "limit": 10, **extra}) for q in queries]
            node.request("POST", "/collections/f/points/query", bodies[0])  # warm up
            t0 = time.perf_counter()
            for body in bodies:
                status, response = node.request("POST", "/collections/f/points/query", body)
                assert status == 200, response
            seconds = time.perf_counter() - t0
            print(f"{label:>32}: {args.queries / seconds:8.1f} queries/s, {seconds / args.queries * 1000:7.2f} ms mean")
    finally:
        if node.proc and node.proc.poll() is None:
            node.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
