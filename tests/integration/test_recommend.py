"""Queries by examples — recommend (every strategy), discover and context — on dense vectors of
every distance and on sparse vectors, through the Query API (also inside prefetch trees) and the
legacy `points/recommend` and `points/discover` endpoints, compared with qdrant-client's local
mode on one node and on a sharded cluster; and MMR re-ranking of nearest queries."""

import random
import uuid

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from test_cluster import Cluster
from test_filter_differential import random_filter, random_payload, raw_filter
from test_sparse import compare, continuous_sparse, sparse_model, wait_green

NAMES = {"cos": models.Distance.COSINE, "dot": models.Distance.DOT, "l2": models.Distance.EUCLID, "l1": models.Distance.MANHATTAN}


def create(client, **extra):
    client.create_collection("c", vectors_config={name: models.VectorParams(size=4, distance=d) for name, d in NAMES.items()},
                             sparse_vectors_config={"s": models.SparseVectorParams()}, **extra)


def fill(remote, local, rng, n):
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) if i % 6 == 5 else i for i in range(n)]
    points = []
    for k, i in enumerate(ids):
        vector = {name: [rng.uniform(-1, 1) for _ in range(4)] for name in NAMES}
        vector["s"] = sparse_model(continuous_sparse(rng))
        points.append(models.PointStruct(id=i, vector=vector, payload=random_payload(rng, k)))
    for start in range(0, n, 200):
        remote.upsert("c", points=points[start:start + 200], wait=True)
        local.upsert("c", points=points[start:start + 200])
    return ids


def example(rng, ids, using):
    if rng.random() < 0.5:
        return rng.choice(ids)
    return sparse_model(continuous_sparse(rng)) if using == "s" else [rng.uniform(-1, 1) for _ in range(4)]


def random_query(rng, ids, using):
    kind = rng.choice(["average_vector", "best_score", "sum_scores", "discover", "context"])
    if kind == "discover":
        pairs = [models.ContextPair(positive=example(rng, ids, using), negative=example(rng, ids, using)) for _ in range(rng.randint(1, 3))]
        return models.DiscoverQuery(discover=models.DiscoverInput(target=example(rng, ids, using), context=pairs))
    if kind == "context":
        pairs = [models.ContextPair(positive=example(rng, ids, using), negative=example(rng, ids, using)) for _ in range(rng.randint(1, 3))]
        return models.ContextQuery(context=pairs)
    positive = [example(rng, ids, using) for _ in range(rng.randint(1 if kind == "average_vector" else 0, 3))]
    negative = [example(rng, ids, using) for _ in range(rng.randint(0 if positive else 1, 2))]
    return models.RecommendQuery(recommend=models.RecommendInput(positive=positive, negative=negative, strategy=kind))


def run(remote, local, rng, ids, rounds):
    kinds = {}
    for round_number in range(rounds):
        using = rng.choice(list(NAMES) + ["s"])
        query = random_query(rng, ids, using)
        kwargs = dict(query=query, using=using, query_filter=random_filter(rng, 1, ids) if rng.random() < 0.4 else None,
                      limit=rng.randint(1, 20), offset=rng.choice([0, 0, 2]), with_payload=True)
        if rng.random() < 0.25:
            # As the query of a level that ranks what a sparse prefetch found.
            kwargs["prefetch"] = [models.Prefetch(query=sparse_model(continuous_sparse(rng)), using="s", limit=60)]
        expected = local.query_points("c", **kwargs).points
        got = remote.query_points("c", **kwargs).points
        compare(got, expected, f"round {round_number}: {kwargs}")
        kind = type(query).__name__ + getattr(getattr(query, "recommend", None), "strategy", "")
        kinds[kind] = kinds.get(kind, 0) + (len(expected) > 0)
    # Every kind of query was compared on results that were not empty, many times.
    assert len(kinds) == 5 and min(kinds.values()) >= rounds // 10, kinds


@pytest.mark.qdrant_client
def test_examples_agree_with_local_mode_on_one_node(make_node):
    node = make_node()
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(51)
    ids = fill(remote, local, rng, 700)
    wait_green(remote)
    run(remote, local, rng, ids, 300)

    # The legacy endpoints answer as the Query API does.
    for _ in range(20):
        using = rng.choice(list(NAMES) + ["s"])
        positive = [rng.choice(ids) for _ in range(2)]
        negative = [rng.choice(ids)]
        strategy = rng.choice(["average_vector", "best_score", "sum_scores"])
        expected = local.query_points("c", query=models.RecommendQuery(recommend=models.RecommendInput(
            positive=positive, negative=negative, strategy=strategy)), using=using, limit=7).points
        r = node.post("/collections/c/points/recommend", json={"positive": positive, "negative": negative, "strategy": strategy,
                                                                "using": using, "limit": 7})
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()["result"]] == [p.id for p in expected]
        target, pair = rng.choice(ids), {"positive": rng.choice(ids), "negative": rng.choice(ids)}
        expected = local.query_points("c", query=models.DiscoverQuery(discover=models.DiscoverInput(
            target=target, context=[models.ContextPair(**pair)])), using=using, limit=5).points
        r = node.post("/collections/c/points/discover/batch", json={"searches": [
            {"target": target, "context": [pair], "using": using, "limit": 5},
            {"context": [pair], "using": using, "limit": 5}]})
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()["result"][0]] == [p.id for p in expected]
        assert len(r.json()["result"][1]) == 5

    # Qdrant's errors.
    r = node.post("/collections/c/points/query", json={"query": {"recommend": {"positive": []}}, "using": "cos"})
    assert r.status_code == 422 and "At least one positive or negative vector/id must be provided" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": {"recommend": {"negative": [1]}}, "using": "cos"})
    assert r.status_code == 400 and "At least one positive vector ID required with this strategy" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": {"recommend": {"positive": [[1, 2]]}}, "using": "cos"})
    assert r.status_code == 400 and "Vector dimension error" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": {"recommend": {"positive": [{"indices": [1], "values": [1]}]}}, "using": "cos"})
    assert r.status_code == 400 and "Conversion between sparse and regular vectors failed" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"query": {"discover": {"target": 123456789, "context": []}}, "using": "cos"})
    assert r.status_code == 404 and "123456789" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/recommend", json={"positive": [1]})
    assert r.status_code == 400 and "limit" in r.json()["status"]["error"]


@pytest.mark.qdrant_client
def test_examples_agree_with_local_mode_on_a_sharded_cluster(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    remote = peers[1].client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, shard_number=6, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(52)
    ids = fill(remote, local, rng, 600)
    wait_green(remote)
    run(remote, local, rng, ids, 120)


def mmr_similarity(using, a, b):
    """The similarity MMR compares, as the engine computes it (float64 here)."""
    if using == "s":
        shared = set(a.indices) & set(b.indices)
        return sum(a.values[a.indices.index(i)] * b.values[b.indices.index(i)] for i in shared)
    x, y = np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)
    if using == "cos":
        x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    return {"l2": -np.square(x - y).sum(), "l1": -np.abs(x - y).sum()}.get(using, float(x @ y))


@pytest.mark.qdrant_client
@pytest.mark.filterwarnings("ignore:Local mode performs exact")
def test_mmr_agrees_with_local_mode(make_node):
    """`{"nearest": …, "mmr": …}` on every distance and on sparse vectors: the same candidates
    re-ranked in the same order as local mode (which follows Qdrant's core, ties included). Local
    mode computes some similarities with a float64 query, Quiver in float32 as the core does, so
    where two candidates' MMR scores are equal to float32 precision either may come first: there
    the comparison checks the tie and stops."""
    node = make_node()
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(53)
    ids = fill(remote, local, rng, 500)
    wait_green(remote)
    ties = 0
    for round_number in range(150):
        using = rng.choice(list(NAMES) + ["s"])
        vector = sparse_model(continuous_sparse(rng)) if using == "s" else [rng.uniform(-1, 1) for _ in range(4)]
        diversity = rng.choice([None, 0.0, 0.3, 0.5, 0.9, 1.0])
        mmr = models.Mmr(diversity=diversity, candidates_limit=rng.choice([None, 10, 40, 100]))
        kwargs = dict(query=models.NearestQuery(nearest=vector, mmr=mmr), using=using, limit=rng.randint(1, 12),
                      query_filter=random_filter(rng, 1, ids) if rng.random() < 0.3 else None, with_payload=True,
                      with_vectors=rng.choice([False, True, [using]]), search_params=models.SearchParams(exact=True))
        expected = local.query_points("c", **kwargs).points
        got = remote.query_points("c", **kwargs).points
        assert len(got) == len(expected), f"round {round_number}: {kwargs}"
        for rank, (g, e) in enumerate(zip(got, expected)):
            if g.id != e.id:
                picked = [p.id for p in got[:rank]]
                stored = {p.id: p.vector[using] for p in remote.retrieve("c", picked + [g.id, e.id], with_vectors=[using])}
                lam = 1 - (0.5 if diversity is None else diversity)
                query = vector

                def score(point):
                    relevance = mmr_similarity(using, query, stored[point])
                    if not picked:
                        return relevance
                    return lam * relevance - (1 - lam) * max(mmr_similarity(using, stored[point], stored[p]) for p in picked)
                assert abs(score(g.id) - score(e.id)) < 1e-5, f"round {round_number}, rank {rank}: {kwargs}"
                ties += 1
                break
            assert g.score == pytest.approx(e.score, rel=1e-4, abs=1e-5)
            assert g.payload == e.payload
            g_vector, e_vector = g.vector or {}, e.vector or {}
            assert sorted(g_vector) == sorted(e_vector)
    assert ties <= 5
    # An offset drops the first picks of the same re-ranking.
    query = models.NearestQuery(nearest=[0.3, -0.1, 0.8, 0.2], mmr=models.Mmr(diversity=0.7, candidates_limit=50))
    whole = [p.id for p in remote.query_points("c", query=query, using="cos", limit=8).points]
    assert [p.id for p in remote.query_points("c", query=query, using="cos", limit=6, offset=2).points] == whole[2:]
    r = node.post("/collections/c/points/query", json={"query": {"nearest": [1, 0, 0, 0], "mmr": {"diversity": 1.5}}, "using": "cos"})
    assert r.status_code == 422 and "diversity" in r.json()["status"]["error"]


@pytest.mark.qdrant_client
@pytest.mark.filterwarnings("ignore:Local mode performs exact")
def test_relevance_feedback_agrees_with_local_mode(make_node):
    """`{"relevance_feedback": …}` with the naive strategy on every distance: targets and
    examples as vectors or point ids (left out of the results), any coefficients."""
    node = make_node()
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(54)
    ids = fill(remote, local, rng, 400)
    wait_green(remote)
    for round_number in range(120):
        using = rng.choice(list(NAMES))
        vector = lambda: rng.choice(ids) if rng.random() < 0.5 else [rng.uniform(-1, 1) for _ in range(4)]
        feedback = [models.FeedbackItem(example=vector(), score=rng.choice([0.0, 0.5, 1.0, round(rng.uniform(-1, 2), 2)]))
                    for _ in range(rng.randint(0, 4))]
        strategy = models.NaiveFeedbackStrategy(naive=models.NaiveFeedbackStrategyParams(
            a=round(rng.uniform(-1, 2), 2), b=rng.choice([0.0, 0.5, 1.0, 2.0]), c=round(rng.uniform(-1, 2), 2)))
        query = models.RelevanceFeedbackQuery(relevance_feedback=models.RelevanceFeedbackInput(target=vector(), feedback=feedback, strategy=strategy))
        kwargs = dict(query=query, using=using, limit=rng.randint(1, 15), with_payload=True,
                      query_filter=random_filter(rng, 1, ids) if rng.random() < 0.3 else None)
        expected = local.query_points("c", **kwargs).points
        got = remote.query_points("c", **kwargs).points
        compare(got, expected, f"round {round_number}: {kwargs}")
    r = node.post("/collections/c/points/query", json={"query": {"relevance_feedback": {
        "target": [1, 0, 0, 0], "feedback": [], "strategy": {"naive": {"a": 1, "b": -1, "c": 1}}}}, "using": "cos"})
    assert r.status_code == 422 and "b" in r.json()["status"]["error"]
