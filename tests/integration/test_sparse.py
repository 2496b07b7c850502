"""Sparse vectors: every input form, search through `query` and the legacy endpoints, the `idf`
modifier, filters, errors, crash safety and a damaged index, on one node and on a 3-peer cluster.

The differential tests compare with qdrant-client's local mode (`QdrantClient(":memory:")`):
ids, scores (to float32 tolerance) and payloads. Local mode counts a point for idf while it is
live and has the vector, as Quiver does, on one node and over all shards of a cluster.
"""

import os
import random
import signal
import threading
import time
import uuid

import pytest
import requests
from qdrant_client import QdrantClient, models

from test_cluster import Cluster, wait_for
from test_filter_differential import random_filter, random_payload, raw_filter

VOCABULARY = 60
# Dense leaves ask for exact search, which local mode always does (and says so).
pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact")


def random_sparse(rng: random.Random, empty_ok=True) -> dict:
    """Indices in any order, some zero weights, now and then no dimension at all."""
    count = rng.choice([0, 1, 2, 3, 5, 8]) if empty_ok else rng.randint(1, 8)
    indices = rng.sample(range(VOCABULARY), count)
    values = [rng.choice([0.0, round(rng.uniform(-1, 3), 3), rng.uniform(0, 1)]) for _ in indices]
    return {"indices": indices, "values": values}


def sparse_model(raw: dict) -> models.SparseVector:
    return models.SparseVector(indices=raw["indices"], values=raw["values"])


def create(client, name="c", multi=False, **extra):
    """Dense `d`, sparse `s` and `t` (idf); with `multi`, a multivector `m` (Cosine, max_sim) too."""
    vectors = {"d": models.VectorParams(size=4, distance=models.Distance.DOT)}
    if multi:
        vectors["m"] = models.VectorParams(size=3, distance=models.Distance.COSINE,
                                           multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM))
    client.create_collection(name, vectors_config=vectors,
                             sparse_vectors_config={"s": models.SparseVectorParams(),
                                                    "t": models.SparseVectorParams(modifier=models.Modifier.IDF)}, **extra)


def fill(node, local, rng, n=1200):
    """The same points into the server (raw JSON, every input form) and local mode."""
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) if i % 4 == 3 else i for i in range(n)]
    vectors = {}
    for i in ids:
        v = {"d": [rng.uniform(-1, 1) for _ in range(4)]}
        for name in ("s", "t"):
            if rng.random() < 0.9:
                v[name] = random_sparse(rng)
        vectors[i] = v
    payloads = {i: random_payload(rng, k) for k, i in enumerate(ids)}
    for start in range(0, n, 200):
        chunk = ids[start:start + 200]
        if start % 400 == 0:
            body = {"points": [{"id": i, "vector": vectors[i], "payload": payloads[i]} for i in chunk]}
        else:
            # The batch form: one list per vector name (every point of a chunk has each name here).
            for i in chunk:
                vectors[i].setdefault("s", {"indices": [], "values": []})
                vectors[i].setdefault("t", {"indices": [], "values": []})
            body = {"batch": {"ids": chunk, "vectors": {name: [vectors[i][name] for i in chunk] for name in ("d", "s", "t")},
                              "payloads": [payloads[i] for i in chunk]}}
        r = node.put("/collections/c/points?wait=true", json=body, timeout=60)
        assert r.status_code == 200, r.text
        local.upsert("c", points=[models.PointStruct(id=i, payload=payloads[i],
                                                     vector={k: (sparse_model(v) if k != "d" else v) for k, v in vectors[i].items()})
                                  for i in chunk])
    # Changes: new sparse vectors for some points, one vector removed from others, deletions.
    changed = ids[::13]
    updates = {i: random_sparse(rng, empty_ok=False) for i in changed}
    r = node.put("/collections/c/points/vectors?wait=true", json={"points": [{"id": i, "vector": {"s": updates[i]}} for i in changed]})
    assert r.status_code == 200, r.text
    local.update_vectors("c", points=[models.PointVectors(id=i, vector={"s": sparse_model(updates[i])}) for i in changed])
    dropped = [i for i in ids[5::29] if i not in changed]
    r = node.post("/collections/c/points/vectors/delete?wait=true", json={"points": dropped, "vector": ["t"]})
    assert r.status_code == 200, r.text
    local.delete_vectors("c", vectors=["t"], points=dropped)
    deleted = ids[7::31]
    r = node.post("/collections/c/points/delete?wait=true", json={"points": deleted})
    assert r.status_code == 200, r.text
    local.delete("c", points_selector=models.PointIdsList(points=deleted))
    return ids


def compare(got, expected, message):
    assert len(got) == len(expected), f"{message}: {[(p.id, p.score) for p in got]} vs {[(p.id, p.score) for p in expected]}"
    close = lambda a, b: a == pytest.approx(b, rel=1e-5, abs=1e-5)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.score == pytest.approx(e.score, rel=1e-4, abs=1e-4), message
        # Points with equal scores may come in another order, and one tied with the last may be
        # cut off on one side and not on the other.
        tied = any(close(e.score, other.score) for j, other in enumerate(expected) if j != i) or close(e.score, expected[-1].score)
        if not tied:
            assert g.id == e.id and g.payload == e.payload, f"{message}, rank {i}"


def run_queries(remote, local, rng, ids, rounds):
    nonempty = 0
    for round_number in range(rounds):
        using = rng.choice(["s", "t"])
        query_filter = random_filter(rng, 1, ids) if rng.random() < 0.5 else None
        query = random_sparse(rng, empty_ok=rng.random() < 0.05)
        kwargs = dict(using=using, query_filter=query_filter, limit=rng.randint(1, 25), offset=rng.choice([0, 0, 2]),
                      with_payload=True, score_threshold=rng.choice([None, None, 0.5]))
        expected = local.query_points("c", query=sparse_model(query), **kwargs).points
        got = remote.query_points("c", query=sparse_model(query), **kwargs).points
        compare(got, expected, f"round {round_number} {using} {query} {raw_filter(query_filter) if query_filter else None}")
        nonempty += len(expected) > 0
    assert nonempty > rounds // 2


def wait_green(client):
    wait_for(lambda: client.get_collection("c").status == models.CollectionStatus.GREEN, timeout=120, message="collection green")


@pytest.mark.qdrant_client
def test_sparse_search_agrees_with_local_mode_on_one_node(make_node):
    node = make_node()
    rng = random.Random(31)
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    ids = fill(node, local, rng)
    wait_green(remote)
    manifests = list(node.workdir.glob("storage/collections/c/*/segments/*/manifest.json"))
    assert any('"sparse"' in m.read_text() for m in manifests), "no immutable segment with a sparse index"
    run_queries(remote, local, rng, ids, 300)
    # Retrieve returns the vectors sorted by index, zeros kept.
    some = [i for i in ids[:40] if i not in ids[7::31]]
    got = {p.id: p.vector for p in remote.retrieve("c", some, with_vectors=True)}
    want = {p.id: p.vector for p in local.retrieve("c", some, with_vectors=True)}
    assert got.keys() == want.keys()
    for i in got:
        assert got[i].keys() == want[i].keys()
        assert got[i]["d"] == pytest.approx(want[i]["d"], rel=1e-6)
        for name in set(got[i]) - {"d"}:
            assert got[i][name].indices == want[i][name].indices
            assert got[i][name].values == pytest.approx(want[i][name].values, rel=1e-6)


@pytest.mark.qdrant_client
def test_sparse_search_agrees_with_local_mode_on_a_sharded_cluster(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    rng = random.Random(32)
    remote = peers[1].client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, shard_number=6, replication_factor=2, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    ids = fill(peers[0], local, rng, n=900)
    wait_green(remote)
    run_queries(remote, local, rng, ids, 150)


def test_sparse_input_forms_endpoints_and_errors(node):
    base = {"sparse_vectors": {"text": {}}, "vectors": {}}
    assert node.put("/collections/c", json=base).status_code == 200
    info = node.get("/collections/c").json()["result"]["config"]["params"]
    assert info["sparse_vectors"] == {"text": {}} and info["vectors"] == {}
    points = [{"id": 1, "vector": {"text": {"indices": [2, 0], "values": [0.2, 0.1]}}},
              {"id": 2, "vector": {"text": {"indices": [1, 3], "values": [0.3, 0.4]}}},
              {"id": 3, "vector": {"text": {"indices": [0, 1], "values": [0.5, 0.6]}}}]
    assert node.put("/collections/c/points?wait=true", json={"points": points}).status_code == 200
    r = node.post("/collections/c/points/query", json={"query": {"indices": [0, 1], "values": [1, 1]}, "using": "text", "with_vector": True})
    result = r.json()["result"]["points"]
    assert [(p["id"], round(p["score"], 5)) for p in result] == [(3, 1.1), (2, 0.3), (1, 0.1)]
    assert result[2]["vector"] == {"text": {"indices": [0, 2], "values": [0.1, 0.2]}}
    # The legacy search and the nearest form.
    r = node.post("/collections/c/points/search", json={"vector": {"name": "text", "vector": {"indices": [3], "values": [2]}}, "limit": 5})
    assert [(p["id"], round(p["score"], 5)) for p in r.json()["result"]] == [(2, 0.8)]
    r = node.post("/collections/c/points/query", json={"query": {"nearest": {"indices": [2], "values": [1]}}, "using": "text"})
    assert [p["id"] for p in r.json()["result"]["points"]] == [1]
    # By point id: that point's sparse vector, the point itself left out.
    r = node.post("/collections/c/points/query", json={"query": 3, "using": "text"})
    assert [p["id"] for p in r.json()["result"]["points"]] == [2, 1]
    # Qdrant's validation errors (422) and format errors (400).
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"text": {"indices": [1, 2], "values": [1]}}}]})
    assert r.status_code == 422
    assert "points[0].vector.?.values: Validation error: must be the same length as indices [{}]" in r.json()["status"]["error"]
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"text": {"indices": [1, 1], "values": [1, 2]}}}]})
    assert r.status_code == 422
    assert "points[0].vector.?.indices: Validation error: must be unique [{}]" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": {"indices": [1, 2], "values": [1]}, "using": "text"})
    assert r.status_code == 422 and "query.values" in r.json()["status"]["error"]
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"text": {"indices": [-1], "values": [1]}}}]})
    assert r.status_code == 400
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"text": [1.0, 2.0]}}]})
    assert r.status_code == 400 and "Conversion between sparse and regular vectors failed" in r.json()["status"]["error"]
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"other": {"indices": [1], "values": [1]}}}]})
    assert r.status_code == 400 and "Not existing vector name error: other" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": [0.1, 0.2], "using": "text"})
    assert r.status_code == 400 and "Conversion between sparse and regular vectors failed" in r.json()["status"]["error"]
    # An empty query finds nothing; so does one sharing no dimension.
    for query in ({"indices": [], "values": []}, {"indices": [77], "values": [1]}):
        r = node.post("/collections/c/points/query", json={"query": query, "using": "text"})
        assert r.status_code == 200 and r.json()["result"]["points"] == []
    # Nothing of the refused requests was stored.
    assert node.post("/collections/c/points/count", json={"exact": True}).json()["result"]["count"] == 3
    # Deleting a sparse vector; `has_vector` sees sparse vectors.
    assert node.post("/collections/c/points/vectors/delete?wait=true", json={"points": [2], "vector": ["text"]}).status_code == 200
    r = node.post("/collections/c/points/count", json={"exact": True, "filter": {"must": [{"has_vector": "text"}]}})
    assert r.json()["result"]["count"] == 2


@pytest.mark.qdrant_client
def test_sparse_writes_survive_kill_9_and_a_damaged_index_is_rebuilt(make_node):
    node = make_node(env={"SWIFT_BACKTRACE": "enable=no"})
    rng = random.Random(33)
    client = node.client(timeout=60)
    client.create_collection("c", vectors_config={}, sparse_vectors_config={"s": models.SparseVectorParams(index=models.SparseIndexParams(on_disk=True))},
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=20))
    acked: dict[int, dict] = {}
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            batch = {j: random_sparse(rng, empty_ok=False) for j in range(i, i + 50)}
            try:
                r = requests.put(f"{node.url}/collections/c/points?wait=true", timeout=10,
                                 json={"points": [{"id": j, "vector": {"s": v}} for j, v in batch.items()]})
            except requests.RequestException:
                return
            if r.status_code == 200:
                acked.update(batch)
            i += 50

    thread = threading.Thread(target=writer)
    thread.start()
    wait_for(lambda: len(acked) >= 4000, timeout=120, message="4000 points written")
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    stop.set()
    thread.join()
    node.start()

    def check():
        ids = sorted(acked)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            got = {p.id: p.vector["s"] for p in client.retrieve("c", chunk, with_vectors=True)}
            for j in chunk:
                want = sorted(zip(acked[j]["indices"], acked[j]["values"]))
                assert j in got, f"acknowledged point {j} lost"
                assert list(zip(got[j].indices, got[j].values)) == [(a, pytest.approx(b)) for a, b in want]
        # Every point is found by a query on one of its own dimensions.
        for j in ids[::97]:
            first = acked[j]["indices"][0]
            hits = client.query_points("c", query=models.SparseVector(indices=[first], values=[1.0]), using="s", limit=len(acked)).points
            assert j in {p.id for p in hits}

    check()
    # Optimizations start again with the first update after a restart (as in Qdrant).
    client.set_payload("c", payload={"after": "restart"}, points=[0], wait=True)
    wait_green(client)
    node.stop()
    postings = list(node.workdir.glob("storage/collections/c/*/segments/*/sparse-0-postings.bin"))
    assert postings, "no sealed segment with a sparse index"
    for path in postings:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    node.start()
    check()


# The Query API's prefetch trees over dense, sparse and multivectors. Weights are continuous here, so
# that no two points tie in a prefetch's list and the lists (and what a parent keeps of them)
# are the same on both sides.

def continuous_sparse(rng: random.Random) -> dict:
    indices = rng.sample(range(VOCABULARY), rng.randint(1, 8))
    return {"indices": indices, "values": [rng.uniform(0.05, 2) for _ in indices]}


def continuous_multi(rng: random.Random) -> list:
    return [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(rng.randint(1, 4))]


def fill_hybrid(node, local, rng, n=1000):
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) if i % 5 == 2 else i for i in range(n)]
    points = []
    for k, i in enumerate(ids):
        vector = {"d": [rng.uniform(-1, 1) for _ in range(4)], "s": continuous_sparse(rng)}
        if rng.random() < 0.85:
            vector["t"] = continuous_sparse(rng)
        if rng.random() < 0.9:
            vector["m"] = continuous_multi(rng)
        points.append({"id": i, "vector": vector, "payload": random_payload(rng, k)})
    for start in range(0, n, 250):
        chunk = points[start:start + 250]
        r = node.put("/collections/c/points?wait=true", json={"points": chunk}, timeout=60)
        assert r.status_code == 200, r.text
        local.upsert("c", points=[models.PointStruct(id=p["id"], payload=p["payload"],
                                                     vector={k: (sparse_model(v) if k in "st" else v) for k, v in p["vector"].items()})
                                  for p in chunk])
    return ids


def random_leaf(rng, ids):
    """A search on one vector. Dense and multivector searches are exact: the graph's
    approximation is no part of what is compared."""
    using = rng.choice(["d", "s", "t", "m"])
    query = {"d": lambda: [rng.uniform(-1, 1) for _ in range(4)], "m": lambda: continuous_multi(rng)}.get(
        using, lambda: sparse_model(continuous_sparse(rng)))()
    return dict(query=query, using=using, limit=rng.randint(1, 40), params=models.SearchParams(exact=True) if using in "dm" else None,
                filter=random_filter(rng, 1, ids) if rng.random() < 0.3 else None)


def random_fusion(rng, sources):
    r = rng.random()
    if r < 0.4:
        return models.FusionQuery(fusion=models.Fusion.RRF)
    if r < 0.7:
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    weights = [rng.choice([0.5, 1.0, 2.0, 3.0]) for _ in range(sources)] if rng.random() < 0.6 else None
    return models.RrfQuery(rrf=models.Rrf(k=rng.choice([None, 1, 5, 60]), weights=weights))


def random_level(rng, ids, depth) -> dict:
    """A level of a prefetch tree: a leaf search, a fusion of 1–3 prefetches, or a search that
    ranks what its prefetches found. Levels below the root keep every point they fuse (a limit
    of 200), so the order among fused ties (the order first met, on both sides) is all that a
    parent sees of them."""
    if depth >= 3 or rng.random() < 0.35:
        return random_leaf(rng, ids)
    children = [random_level(rng, ids, depth + 1) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.6:
        return dict(prefetch=children, query=random_fusion(rng, len(children)), using=None, limit=200,
                    filter=random_filter(rng, 1, ids) if rng.random() < 0.2 else None)
    leaf = random_leaf(rng, ids)
    leaf["prefetch"] = children
    return leaf


def as_prefetch(level: dict) -> models.Prefetch:
    return models.Prefetch(prefetch=[as_prefetch(c) for c in level["prefetch"]] if "prefetch" in level else None,
                           query=level["query"], using=level["using"], limit=level["limit"], filter=level["filter"],
                           params=level.get("params"))


def run_trees(remote, local, rng, ids, rounds):
    for round_number in range(rounds):
        root = random_level(rng, ids, 0)
        if "prefetch" not in root:
            root = dict(prefetch=[root, random_level(rng, ids, 1)], query=random_fusion(rng, 2), using=None, filter=None)
        kwargs = dict(prefetch=[as_prefetch(c) for c in root["prefetch"]], query=root["query"], using=root["using"],
                      query_filter=root["filter"], search_params=root.get("params"), limit=rng.randint(1, 25),
                      offset=rng.choice([0, 0, 3]), with_payload=True)
        expected = local.query_points("c", **kwargs).points
        got = remote.query_points("c", **kwargs).points
        compare(got, expected, f"round {round_number}: {kwargs}")


@pytest.fixture
def hybrid_single(make_node):
    node = make_node()
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, multi=True, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local, multi=True)
    rng = random.Random(41)
    ids = fill_hybrid(node, local, rng)
    wait_green(remote)
    return node, remote, local, rng, ids


@pytest.mark.qdrant_client
def test_prefetch_trees_and_fusion_agree_with_local_mode_on_one_node(hybrid_single):
    _, remote, local, rng, ids = hybrid_single
    run_trees(remote, local, rng, ids, 250)


@pytest.mark.qdrant_client
def test_prefetch_trees_and_fusion_agree_with_local_mode_on_a_sharded_cluster(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    remote = peers[2].client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, multi=True, shard_number=6, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local, multi=True)
    rng = random.Random(42)
    ids = fill_hybrid(peers[0], local, rng, n=800)
    wait_green(remote)
    # Every peer counts the indexed vectors of all six shards, two of which it holds.
    clients = [p.client(timeout=60) for p in peers]
    for client in clients:
        wait_green(client)
    counts = [client.get_collection("c").indexed_vectors_count for client in clients]
    assert len(set(counts)) == 1 and 0 < counts[0] <= 800 * 4, counts
    run_trees(remote, local, rng, ids, 120)


@pytest.mark.qdrant_client
def test_query_api_errors(hybrid_single):
    node = hybrid_single[0]
    post = lambda body: node.post("/collections/c/points/query", json=body, timeout=30)
    leaf = {"query": [0.1, 0.2, 0.3, 0.4], "using": "d", "limit": 5}
    r = post({"prefetch": [leaf]})
    assert r.status_code == 400 and "Can't have prefetches without defining a query" in r.json()["status"]["error"]
    r = post({"prefetch": [leaf], "query": {"fusion": "rrf"}, "using": "d"})
    assert r.status_code == 400 and "Fusion queries cannot be combined with the 'using' field" in r.json()["status"]["error"]
    r = post({"prefetch": [leaf, leaf], "query": {"rrf": {"weights": [1.0]}}})
    assert r.status_code == 400 and "Number of weights in RRF should match number of pre-fetches: got 1, expected 2" in r.json()["status"]["error"]
    r = post({"prefetch": [{"query": [0.1, 0.2, 0.3, 0.4], "using": "missing"}], "query": {"fusion": "dbsf"}})
    assert r.status_code == 400 and "Not existing vector name error: missing" in r.json()["status"]["error"]
    r = post({"prefetch": [leaf], "query": {"fusion": "max"}})
    assert r.status_code == 400 and "query.fusion" in r.json()["status"]["error"]
    r = post({"query": {"rrf": {"k": 0}}, "prefetch": [leaf]})
    assert r.status_code == 422 and "query.rrf.k" in r.json()["status"]["error"]
    r = post({"score_threshold": 0.5})
    assert r.status_code == 400 and "A query is needed to use the score_threshold" in r.json()["status"]["error"]
    # A hybrid query by point id: the point's own vectors, itself left out.
    r = post({"prefetch": [{"query": 5, "using": "d", "limit": 20}, {"query": 5, "using": "s", "limit": 20}], "query": {"fusion": "rrf"},
              "with_payload": False})
    assert r.status_code == 200 and 5 not in [p["id"] for p in r.json()["result"]["points"]] and r.json()["result"]["points"]


@pytest.mark.qdrant_client
def test_idf_over_a_corpus_filter_agrees_with_local_mode(make_node):
    """`params.idf: {"corpus": filter}`: the idf statistics count only the corpus's points."""
    node = make_node()
    rng = random.Random(34)
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, shard_number=3, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    ids = fill(node, local, rng, n=600)
    wait_green(remote)
    for round_number in range(80):
        corpus = random_filter(rng, 1, ids)
        query = random_sparse(rng, empty_ok=False)
        kwargs = dict(using="t", limit=rng.randint(1, 15), with_payload=True, search_params=models.SearchParams(idf=models.IdfCorpusParams(corpus=corpus)),
                      query_filter=random_filter(rng, 1, ids) if rng.random() < 0.3 else None)
        expected = local.query_points("c", query=sparse_model(query), **kwargs).points
        got = remote.query_points("c", query=sparse_model(query), **kwargs).points
        compare(got, expected, f"round {round_number}: corpus {raw_filter(corpus)}")
    # The corpus changes the scores: a corpus of few points gives other idf weights than all.
    query = sparse_model({"indices": list(range(10)), "values": [1.0] * 10})
    few = models.Filter(must=[models.HasIdCondition(has_id=ids[:50])])
    narrow = remote.query_points("c", query=query, using="t", limit=5, search_params=models.SearchParams(idf=models.IdfCorpusParams(corpus=few))).points
    wide = remote.query_points("c", query=query, using="t", limit=5, search_params=models.SearchParams(idf="global")).points
    assert [p.score for p in narrow] != pytest.approx([p.score for p in wide])
