"""Multivectors (`multivector_config: max_sim`): every input form, search by multivector, by
point id and by examples (recommend, discover, context), ColBERT-style rescoring of a prefetch,
filters and thresholds, compared with qdrant-client's local mode on one node and on a sharded
cluster; the errors Qdrant gives; and crash safety."""

import random
import signal
import threading
import uuid

import pytest
import requests
from qdrant_client import QdrantClient, models

from test_cluster import Cluster, wait_for
from test_filter_differential import random_filter, random_payload
from test_sparse import compare, wait_green

MULTI = {"colbert": models.Distance.COSINE, "dot": models.Distance.DOT, "l2": models.Distance.EUCLID, "l1": models.Distance.MANHATTAN}
MAX_SIM = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
EXACT = models.SearchParams(exact=True)
pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact")


def create(client, **extra):
    config = {name: models.VectorParams(size=3, distance=d, multivector_config=MAX_SIM) for name, d in MULTI.items()}
    config["d"] = models.VectorParams(size=3, distance=models.Distance.DOT)
    client.create_collection("c", vectors_config=config, **extra)


def flat(value):
    return [x for row in value for x in row] if value and isinstance(value[0], list) else value


def random_multi(rng, rows=None):
    return [[round(rng.uniform(-1, 1), 3) for _ in range(3)] for _ in range(rows or rng.randint(1, 5))]


def fill(node, local, rng, n):
    """The same points into the server (raw JSON, list and batch forms) and local mode, then
    vector updates, vector deletions and point deletions."""
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) if i % 5 == 4 else i for i in range(n)]
    vectors = {i: {name: random_multi(rng) for name in list(MULTI) + ["d"]} for i in ids}
    for i in ids:
        vectors[i]["d"] = vectors[i]["d"][0]
    payloads = {i: random_payload(rng, k) for k, i in enumerate(ids)}
    for start in range(0, n, 150):
        chunk = ids[start:start + 150]
        if start % 300 == 0:
            body = {"points": [{"id": i, "vector": vectors[i], "payload": payloads[i]} for i in chunk]}
        else:
            body = {"batch": {"ids": chunk, "vectors": {name: [vectors[i][name] for i in chunk] for name in list(MULTI) + ["d"]},
                              "payloads": [payloads[i] for i in chunk]}}
        r = node.put("/collections/c/points?wait=true", json=body, timeout=60)
        assert r.status_code == 200, r.text
        local.upsert("c", points=[models.PointStruct(id=i, vector=vectors[i], payload=payloads[i]) for i in chunk])
    changed = ids[::11]
    updates = {i: random_multi(rng) for i in changed}
    r = node.put("/collections/c/points/vectors?wait=true", json={"points": [{"id": i, "vector": {"colbert": updates[i]}} for i in changed]})
    assert r.status_code == 200, r.text
    local.update_vectors("c", points=[models.PointVectors(id=i, vector={"colbert": updates[i]}) for i in changed])
    dropped = [i for i in ids[3::23] if i not in changed]
    r = node.post("/collections/c/points/vectors/delete?wait=true", json={"points": dropped, "vector": ["l2"]})
    assert r.status_code == 200, r.text
    local.delete_vectors("c", vectors=["l2"], points=dropped)
    deleted = ids[6::29]
    r = node.post("/collections/c/points/delete?wait=true", json={"points": deleted})
    assert r.status_code == 200, r.text
    local.delete("c", points_selector=models.PointIdsList(points=deleted))
    # Points that still have every vector: the examples and query points.
    return [i for i in ids if i not in deleted and i not in dropped]


def example(rng, ids):
    return rng.choice(ids) if rng.random() < 0.5 else random_multi(rng)


def random_query(rng, ids):
    kind = rng.choice(["nearest", "nearest", "id", "average_vector", "best_score", "sum_scores", "discover", "context"])
    if kind == "nearest":
        return kind, random_multi(rng)
    if kind == "id":
        return kind, rng.choice(ids)
    if kind == "discover":
        pairs = [models.ContextPair(positive=example(rng, ids), negative=example(rng, ids)) for _ in range(rng.randint(1, 2))]
        return kind, models.DiscoverQuery(discover=models.DiscoverInput(target=example(rng, ids), context=pairs))
    if kind == "context":
        pairs = [models.ContextPair(positive=example(rng, ids), negative=example(rng, ids)) for _ in range(rng.randint(1, 2))]
        return kind, models.ContextQuery(context=pairs)
    positive = [example(rng, ids) for _ in range(rng.randint(1 if kind == "average_vector" else 0, 2))]
    negative = [example(rng, ids) for _ in range(rng.randint(0 if positive else 1, 2))]
    return kind, models.RecommendQuery(recommend=models.RecommendInput(positive=positive, negative=negative, strategy=kind))


def run(remote, local, rng, ids, rounds):
    kinds = {}
    for round_number in range(rounds):
        using = rng.choice(list(MULTI))
        kind, query = random_query(rng, ids)
        # Exact, as local mode always is (the graph's recall is checked in the unit tests).
        kwargs = dict(query=query, using=using, query_filter=random_filter(rng, 1, ids) if rng.random() < 0.4 else None,
                      limit=rng.randint(1, 20), offset=rng.choice([0, 0, 2]), with_payload=True, search_params=EXACT)
        if kind == "nearest" and rng.random() < 0.3:
            # A threshold near the scores' middle (a largest distance for l2 and l1).
            kwargs["score_threshold"] = {"colbert": 1.0, "dot": 0.5, "l2": 1.5, "l1": 3.0}[using]
        if rng.random() < 0.3:
            # ColBERT-style: the multivector ranks again what a dense search found.
            kwargs["prefetch"] = [models.Prefetch(query=[rng.uniform(-1, 1) for _ in range(3)], using="d", limit=40, params=EXACT)]
        expected = local.query_points("c", **kwargs).points
        got = remote.query_points("c", **kwargs).points
        compare(got, expected, f"round {round_number}: {kwargs}")
        kinds[kind] = kinds.get(kind, 0) + (len(expected) > 0)
    assert len(kinds) == 7 and min(kinds.values()) >= rounds // 20, kinds


@pytest.mark.qdrant_client
def test_multivectors_agree_with_local_mode_on_one_node(make_node):
    node = make_node()
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(61)
    ids = fill(node, local, rng, 900)
    wait_green(remote)
    manifests = list(node.workdir.glob("storage/collections/c/*/segments/*/manifest.json"))
    assert any('"multi"' in m.read_text() for m in manifests), "no immutable segment with multivectors"
    assert list(node.workdir.glob("storage/collections/c/*/segments/*/hnsw-multi-*.bin")), "no multivector graph"
    run(remote, local, rng, ids, 300)
    # Retrieve gives the rows back (normalised for Cosine, as stored).
    some = ids[:30]
    got = {p.id: p.vector for p in remote.retrieve("c", some, with_vectors=True)}
    want = {p.id: p.vector for p in local.retrieve("c", some, with_vectors=True)}
    assert got.keys() == want.keys()
    for i in got:
        assert got[i].keys() == want[i].keys(), i
        for name in got[i]:
            assert flat(got[i][name]) == pytest.approx(flat(want[i][name]), rel=1e-5, abs=1e-6), (i, name)


@pytest.mark.qdrant_client
def test_multivectors_agree_with_local_mode_on_a_sharded_cluster(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    remote = peers[1].client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, shard_number=6, replication_factor=2, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(62)
    ids = fill(peers[0], local, rng, 600)
    wait_green(remote)
    run(remote, local, rng, ids, 120)


def test_multivector_input_forms_and_errors(node):
    body = {"vectors": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}}
    assert node.put("/collections/c", json=body).status_code == 200
    points = [{"id": 1, "vector": [[1, 0], [0, 1]]}, {"id": 2, "vector": [0.5, 0.5]},
              {"id": 3, "vector": [[2, 1], [0, 0], [1, 3]]}]
    r = node.put("/collections/c/points?wait=true", json={"points": points})
    assert r.status_code == 200, r.text
    # A dense vector is stored as a multivector of one; an unnamed multivector prints bare.
    r = node.post("/collections/c/points", json={"ids": [2, 1], "with_vector": True})
    assert [p["vector"] for p in r.json()["result"]] == [[[0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]]]
    r = node.post("/collections/c/points/query", json={"query": [[1, 0], [0, 1]]})
    assert [(p["id"], p["score"]) for p in r.json()["result"]["points"]] == [(3, 5.0), (1, 2.0), (2, 1.0)]
    # A dense query is a multivector of one row.
    r = node.post("/collections/c/points/query", json={"query": [0, 1]})
    assert [(p["id"], p["score"]) for p in r.json()["result"]["points"]] == [(3, 3.0), (1, 1.0), (2, 0.5)]
    # By point id, the point left out.
    r = node.post("/collections/c/points/query", json={"query": 1})
    assert [(p["id"], p["score"]) for p in r.json()["result"]["points"]] == [(3, 5.0), (2, 1.0)]
    r = node.post("/collections/c/points/scroll", json={"with_vector": True, "limit": 1})
    assert r.json()["result"]["points"][0]["vector"] == [[1.0, 0.0], [0.0, 1.0]]

    # Qdrant's validation errors (422) and wrong input (400).
    for vector, message in (([[]], "all vectors must be non-empty"),
                            ([[1, 2], [1]], "all vectors must have the same dimension, found vector with dimension 1")):
        r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": vector}]})
        assert r.status_code == 422 and message in r.json()["status"]["error"], r.text
    r = node.put("/collections/c/points", json={"points": [{"id": 9, "vector": [[1, 2, 3]]}]})
    assert r.status_code == 400 and "Vector dimension error: expected dim: 2, got 3" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": [[1, 2, 3]]})
    assert r.status_code == 400 and "Vector dimension error: expected dim: 2, got 3" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": [[1, 2], []]})
    assert r.status_code == 422 and "all vectors must be non-empty" in r.json()["status"]["error"]
    assert node.put("/collections/plain", json={"vectors": {"v": {"size": 2, "distance": "Dot"}}}).status_code == 200
    r = node.put("/collections/plain/points", json={"points": [{"id": 1, "vector": {"v": [[1, 2]]}}]})
    assert r.status_code == 400 and "Conversion between multi and regular vectors failed" in r.json()["status"]["error"]
    r = node.post("/collections/plain/points/query", json={"query": [[1, 2]], "using": "v"})
    assert r.status_code == 400 and "Conversion between multi and regular vectors failed" in r.json()["status"]["error"]


def test_multivector_writes_survive_kill_9(make_node):
    """kill -9 while `wait=true` upserts stream in: every acknowledged multivector is there after
    the restart, in segments of every kind (float16 and on-disk columns, graphs)."""
    node = make_node(env={"SWIFT_BACKTRACE": "enable=no"})
    body = {"vectors": {"m": {"size": 4, "distance": "Cosine", "multivector_config": {"comparator": "max_sim"}, "datatype": "float16"},
                        "e": {"size": 2, "distance": "Euclid", "multivector_config": {"comparator": "max_sim"}, "on_disk": True}},
            "optimizers_config": {"indexing_threshold": 20}}
    assert node.put("/collections/c", json=body).status_code == 200
    rng = random.Random(63)
    acknowledged = {}
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            points = [{"id": j, "vector": {"m": [[rng.choice([0.25, 0.5, 1, -1]) for _ in range(4)] for _ in range(rng.randint(1, 4))],
                                           "e": [[rng.uniform(-2, 2) for _ in range(2)] for _ in range(rng.randint(1, 3))]}}
                      for j in range(i, i + 50)]
            try:
                r = requests.put(f"{node.url}/collections/c/points?wait=true", json={"points": points}, timeout=10)
            except requests.RequestException:
                return
            if r.status_code == 200:
                acknowledged.update({p["id"]: p["vector"] for p in points})
            i += 50

    thread = threading.Thread(target=writer)
    thread.start()
    wait_for(lambda: len(acknowledged) >= 3000, timeout=120, message="3000 points written")
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    stop.set()
    thread.join()
    node.start()
    ids = sorted(acknowledged)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        r = node.post("/collections/c/points", json={"ids": chunk, "with_vector": True}, timeout=60)
        stored = {p["id"]: p["vector"] for p in r.json()["result"]}
        for i in chunk:
            assert i in stored, f"acknowledged point {i} lost"
            assert len(stored[i]["m"]) == len(acknowledged[i]["m"]), i
            assert flat(stored[i]["e"]) == pytest.approx(flat(acknowledged[i]["e"]), rel=1e-6), i
    # Each point is its own best match by the Euclid multivector (distance 0).
    for i in ids[::211]:
        r = node.post("/collections/c/points/query", json={"query": acknowledged[i]["e"], "using": "e", "limit": 1,
                                                           "params": {"exact": True}})
        assert r.json()["result"]["points"][0]["score"] == pytest.approx(0, abs=1e-5), i


@pytest.mark.qdrant_client
def test_quantized_multivectors(make_node):
    """A multivector with `quantization_config`: each row gets a code, the graph is walked on the
    codes, the float rows score the candidates (so scores are exact), and the codes are files
    that a restart loads again."""
    node = make_node()
    client = node.client(timeout=60)
    client.create_collection("c", vectors_config={"colbert": models.VectorParams(
        size=16, distance=models.Distance.COSINE, multivector_config=MAX_SIM,
        quantization_config=models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)))},
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    rng = random.Random(64)
    centres = [[rng.gauss(0, 1) for _ in range(16)] for _ in range(40)]

    def near(centre):
        return [[x + rng.gauss(0, 0.4) for x in centre] for _ in range(rng.randint(2, 6))]
    for start in range(0, 3000, 500):
        client.upsert("c", points=[models.PointStruct(id=i, vector={"colbert": near(centres[i % 40])}) for i in range(start, start + 500)])
    wait_green(client)
    codes = sorted(p.name for p in (node.workdir / "storage").rglob("quant-multi-*.bin"))
    assert codes and all(name.startswith("quant-multi-0-scalar") for name in codes), codes
    queries = [near(rng.choice(centres)) for _ in range(20)]

    def results(params):
        return [client.query_points("c", query=q, using="colbert", limit=10, search_params=params).points for q in queries]
    exact = results(models.SearchParams(exact=True))
    for params in [models.QuantizationSearchParams(oversampling=2.0), models.QuantizationSearchParams(ignore=True)]:
        got = results(models.SearchParams(hnsw_ef=64, quantization=params))
        found = sum(len({p.id for p in g} & {p.id for p in e}) for g, e in zip(got, exact))
        assert found / 200 >= 0.9, (params, found)
        for g, e in zip(got, exact):
            by_id = {p.id: p.score for p in e}
            for p in g:
                if p.id in by_id:
                    assert p.score == pytest.approx(by_id[p.id], abs=1e-5)
    before = results(models.SearchParams(hnsw_ef=64))
    node.restart()
    assert sorted(p.name for p in (node.workdir / "storage").rglob("quant-multi-*.bin")) == codes
    after = results(models.SearchParams(hnsw_ef=64))
    assert [[p.id for p in r] for r in after] == [[p.id for p in r] for r in before]
