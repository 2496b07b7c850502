"""Grouped search (`query/groups`, the legacy `search/groups` and `recommend/groups`, with
`with_lookup`) and the distance matrix (`search/matrix/pairs`, `search/matrix/offsets`), compared
with qdrant-client's local mode on one node and on a sharded cluster."""

import random
import uuid

import pytest
from qdrant_client import QdrantClient, models

from test_cluster import Cluster
from test_filter_differential import random_filter
from test_sparse import wait_green

EXACT = models.SearchParams(exact=True)
pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact")
KEYS = ["red", "green", "blue", "cyan", "black", "white", "pink", "gold"]


def payload(rng, k):
    """Group keys of every kind: an integer, a string, a list of strings, a nested value, and now
    and then a missing key or a value that cannot name a group (a float, a boolean)."""
    p = {"g": rng.randrange(25), "k": rng.choice(KEYS), "tags": rng.sample(KEYS, rng.randint(0, 3)),
         "nested": {"n": rng.randrange(6)}, "rank": k}
    if rng.random() < 0.1:
        del p["g"]
    if rng.random() < 0.05:
        p["k"] = rng.choice([1.5, True, None])
    return p


def create(client, **extra):
    client.create_collection("c", vectors_config={"d": models.VectorParams(size=4, distance=models.Distance.COSINE),
                                                  "e": models.VectorParams(size=4, distance=models.Distance.EUCLID)}, **extra)
    client.create_collection("lk", vectors_config={})


def fill(remote, local, rng, n):
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) if i % 7 == 6 else i for i in range(n)]
    points = [models.PointStruct(id=i, vector={"d": [rng.uniform(-1, 1) for _ in range(4)], "e": [rng.uniform(-1, 1) for _ in range(4)]},
                                 payload=payload(rng, k)) for k, i in enumerate(ids)]
    for start in range(0, n, 200):
        remote.upsert("c", points=points[start:start + 200], wait=True)
        local.upsert("c", points=points[start:start + 200])
    # The lookup collection: one record per group id of `g`.
    lookups = [models.PointStruct(id=g, vector={}, payload={"name": f"group {g}"}) for g in range(0, 25, 2)]
    remote.upsert("lk", points=lookups, wait=True)
    local.upsert("lk", points=lookups)
    return ids


def compare_groups(got, expected, message):
    assert [g.id for g in got] == [g.id for g in expected], message
    for g, e in zip(got, expected):
        assert [h.id for h in g.hits] == [h.id for h in e.hits], f"{message}: group {g.id}"
        assert [h.score for h in g.hits] == pytest.approx([h.score for h in e.hits], rel=1e-4, abs=1e-5)
        assert [h.payload for h in g.hits] == [h.payload for h in e.hits]
        assert (g.lookup and (g.lookup.id, g.lookup.payload)) == (e.lookup and (e.lookup.id, e.lookup.payload)), message


def run_groups(remote, local, rng, ids, rounds):
    seen = set()
    for round_number in range(rounds):
        using = rng.choice(["d", "e"])
        group_by = rng.choice(["g", "k", "tags", "nested.n"])
        kwargs = dict(group_by=group_by, using=using, limit=rng.randint(1, 8), group_size=rng.randint(1, 4),
                      query_filter=random_filter(rng, 1, ids) if rng.random() < 0.3 else None, search_params=EXACT,
                      with_payload=rng.choice([True, False, ["k"]]))
        if rng.random() < 0.3:
            # Fusion over prefetches deep enough to hold every point (local mode deepens them so).
            kwargs["prefetch"] = [models.Prefetch(query=[rng.uniform(-1, 1) for _ in range(4)], using=name, limit=len(ids), params=EXACT)
                                  for name in ("d", "e")]
            kwargs["query"] = models.FusionQuery(fusion=rng.choice([models.Fusion.RRF, models.Fusion.DBSF]))
            del kwargs["using"]
        else:
            kwargs["query"] = rng.choice(ids) if rng.random() < 0.3 else [rng.uniform(-1, 1) for _ in range(4)]
        if group_by == "g" and rng.random() < 0.5:
            kwargs["with_lookup"] = models.WithLookup(collection="lk", with_payload=True)
        expected = local.query_points_groups("c", **kwargs).groups
        got = remote.query_points_groups("c", **kwargs).groups
        compare_groups(got, expected, f"round {round_number}: {kwargs}")
        seen.add((group_by, len(expected) > 0))
    assert {g for g, nonempty in seen if nonempty} == {"g", "k", "tags", "nested.n"}


@pytest.mark.qdrant_client
def test_groups_and_matrix_agree_with_local_mode_on_one_node(make_node):
    node = make_node()
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(71)
    ids = fill(remote, local, rng, 600)
    wait_green(remote)
    run_groups(remote, local, rng, ids, 200)

    # The legacy endpoints group as the Query API does.
    vector = [0.3, -0.2, 0.5, 0.1]
    expected = local.query_points_groups("c", query=vector, using="d", group_by="k", limit=4, group_size=2, search_params=EXACT).groups
    r = node.post("/collections/c/points/search/groups", json={"vector": {"name": "d", "vector": vector}, "group_by": "k",
                                                                "limit": 4, "group_size": 2, "params": {"exact": True}})
    assert r.status_code == 200, r.text
    assert [(g["id"], [h["id"] for h in g["hits"]]) for g in r.json()["result"]["groups"]] == \
        [(g.id, [h.id for h in g.hits]) for g in expected]
    positive = [i for i in ids[:3]]
    expected = local.query_points_groups("c", query=models.RecommendQuery(recommend=models.RecommendInput(positive=positive)),
                                         using="d", group_by="g", limit=3, group_size=2, with_lookup="lk", search_params=EXACT).groups
    r = node.post("/collections/c/points/recommend/groups", json={"positive": positive, "using": "d", "group_by": "g", "limit": 3,
                                                                   "group_size": 2, "with_lookup": "lk", "params": {"exact": True}})
    assert r.status_code == 200, r.text
    groups = r.json()["result"]["groups"]
    assert [(g["id"], [h["id"] for h in g["hits"]]) for g in groups] == [(g.id, [h.id for h in g.hits]) for g in expected]
    assert [g.get("lookup", {}).get("payload") for g in groups] == [g.lookup.payload if g.lookup else None for g in expected]

    # Qdrant's errors.
    r = node.post("/collections/c/points/query/groups", json={"query": vector, "using": "d"})
    assert r.status_code == 400 and "group_by" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query/groups", json={"query": vector, "using": "d", "group_by": "g", "group_size": 0})
    assert r.status_code == 422 and "group_size" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/search/groups", json={"vector": {"name": "d", "vector": vector}, "group_by": "g", "limit": 3})
    assert r.status_code == 400 and "group_size" in r.json()["status"]["error"]

    # The matrix: with a sample as large as the points that match, every point is in it.
    for using in ("d", "e"):
        matrix_filter = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=rng.randrange(25)))])
        expected = local.search_matrix_pairs("c", query_filter=matrix_filter, limit=3, sample=1000, using=using).pairs
        got = remote.search_matrix_pairs("c", query_filter=matrix_filter, limit=3, sample=1000, using=using).pairs
        assert [(p.a, p.b) for p in got] == [(p.a, p.b) for p in expected]
        assert [p.score for p in got] == pytest.approx([p.score for p in expected], rel=1e-4, abs=1e-5)
        expected = local.search_matrix_offsets("c", query_filter=matrix_filter, limit=2, sample=1000, using=using)
        got = remote.search_matrix_offsets("c", query_filter=matrix_filter, limit=2, sample=1000, using=using)
        assert (got.ids, got.offsets_row, got.offsets_col) == (expected.ids, expected.offsets_row, expected.offsets_col)
        assert got.scores == pytest.approx(expected.scores, rel=1e-4, abs=1e-5)
    # A sample smaller than the matches: that many distinct points, each row within the sample.
    got = remote.search_matrix_offsets("c", limit=4, sample=12, using="d")
    assert len(got.ids) == 12 == len(set(got.ids)) and len(got.scores) == 12 * 4
    assert all(0 <= c < 12 for c in got.offsets_col) and all(got.ids[r] != got.ids[c] for r, c in zip(got.offsets_row, got.offsets_col))
    r = node.post("/collections/c/points/search/matrix/pairs", json={"sample": 1, "using": "d"})
    assert r.status_code == 422 and "sample" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/search/matrix/pairs", json={"using": "nope"})
    assert r.status_code == 400 and "Not existing vector name error: nope" in r.json()["status"]["error"]


@pytest.mark.qdrant_client
def test_groups_agree_with_local_mode_on_a_sharded_cluster(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    remote = peers[1].client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, shard_number=6, replication_factor=2, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(72)
    ids = fill(remote, local, rng, 500)
    wait_green(remote)
    run_groups(remote, local, rng, ids, 80)
    matrix_filter = models.Filter(must=[models.FieldCondition(key="k", match=models.MatchValue(value="red"))])
    expected = local.search_matrix_pairs("c", query_filter=matrix_filter, limit=3, sample=1000, using="d").pairs
    got = remote.search_matrix_pairs("c", query_filter=matrix_filter, limit=3, sample=1000, using="d").pairs
    assert [(p.a, p.b) for p in got] == [(p.a, p.b) for p in expected]


@pytest.mark.qdrant_client
def test_random_samples_and_order_by_inside_prefetch(node):
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    rng = random.Random(73)
    for client in (remote, local):
        client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    points = [models.PointStruct(id=i, vector=[rng.uniform(-1, 1) for _ in range(3)], payload={"rank": (i * 7) % 60, "even": i % 2 == 0})
              for i in range(60)]
    remote.upsert("c", points=points, wait=True)
    local.upsert("c", points=points)
    remote.create_payload_index("c", "rank", models.PayloadSchemaType.INTEGER, wait=True)
    sample = models.SampleQuery(sample=models.Sample.RANDOM)
    draws = []
    for _ in range(6):
        got = remote.query_points("c", query=sample, limit=10).points
        assert len({p.id for p in got}) == 10 and all(p.score == 1.0 for p in got)
        draws.append(tuple(p.id for p in got))
    assert len(set(draws)) > 1, "every draw was the same"
    even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    got = remote.query_points("c", query=sample, query_filter=even, limit=40, with_payload=True).points
    assert len(got) == 30 and all(p.payload["even"] for p in got)
    # Sampling what a prefetch found draws from those points only.
    prefetch = models.Prefetch(query=[1, 0, 0], limit=5)
    found = {p.id for p in remote.query_points("c", query=[1, 0, 0], limit=5).points}
    assert {p.id for p in remote.query_points("c", prefetch=prefetch, query=sample, limit=10).points} == found
    # order_by inside a prefetch: the 12 lowest ranks, ranked by the vector.
    kwargs = dict(prefetch=models.Prefetch(query=models.OrderByQuery(order_by="rank"), limit=12), query=[0.2, 0.5, -0.3], limit=6)
    expected = local.query_points("c", **kwargs).points
    got = remote.query_points("c", **kwargs).points
    assert [(p.id, round(p.score, 5)) for p in got] == [(p.id, round(p.score, 5)) for p in expected]
    r = node.post("/collections/c/points/query", json={"query": {"sample": "sometimes"}})
    assert r.status_code == 400 and "sample" in r.json()["status"]["error"]
