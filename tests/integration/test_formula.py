"""Formula queries: random expressions over prefetch scores, payload numbers (with defaults),
conditions, geo distances, datetimes and decays, compared with qdrant-client's local mode on one
node and on a sharded cluster; and the errors of formulas that cannot be evaluated."""

import random

import pytest
from qdrant_client import QdrantClient, models

from test_cluster import Cluster
from test_sparse import compare, wait_green

EXACT = models.SearchParams(exact=True)
pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact")
CATEGORIES = ["a", "b", "c", "d"]
DATETIMES = ["2024-01-02T03:04:05Z", "2024-03-01T10:00:00+02:00", "2023-12-31T23:59:59.5Z", "2024-02-29T12:00:00-05:30"]


def payload(rng):
    p = {"cat": rng.choice(CATEGORIES), "n": rng.randrange(10)}
    if rng.random() < 0.9:
        p["price"] = round(rng.uniform(0, 100), 2)
    if rng.random() < 0.8:
        p["loc"] = {"lat": rng.uniform(-60, 60), "lon": rng.uniform(-170, 170)}
    if rng.random() < 0.8:
        p["ts"] = rng.choice(DATETIMES)
    return p


def create(client, **extra):
    client.create_collection("c", vectors_config={"cos": models.VectorParams(size=4, distance=models.Distance.COSINE),
                                                  "dot": models.VectorParams(size=4, distance=models.Distance.DOT)}, **extra)


def fill(remote, local, rng, n):
    points = [models.PointStruct(id=i, vector={"cos": [rng.uniform(-1, 1) for _ in range(4)], "dot": [rng.uniform(-1, 1) for _ in range(4)]},
                                 payload=payload(rng)) for i in range(n)]
    for start in range(0, n, 200):
        remote.upsert("c", points=points[start:start + 200], wait=True)
        local.upsert("c", points=points[start:start + 200])


def leaf(rng):
    kind = rng.choice(["const", "score", "score1", "price", "cond", "geo", "ts", "n"])
    if kind == "const":
        return round(rng.uniform(-3, 3), 2)
    if kind == "score":
        return "$score"
    if kind == "score1":
        return "$score[1]"
    if kind == "price":
        return "price"
    if kind == "n":
        return "n"
    if kind == "cond":
        return rng.choice([models.FieldCondition(key="cat", match=models.MatchValue(value=rng.choice(CATEGORIES))),
                           models.FieldCondition(key="price", range=models.Range(gte=rng.uniform(0, 100))),
                           models.HasIdCondition(has_id=list(range(0, 400, 3)))])
    if kind == "geo":
        return models.DivExpression(div=models.DivParams(left=models.GeoDistance(geo_distance=models.GeoDistanceParams(
            origin=models.GeoPoint(lat=10, lon=20), to="loc")), right=1_000_000))
    return models.DivExpression(div=models.DivParams(left=models.SumExpression(sum=[
        models.DatetimeKeyExpression(datetime_key="ts"), models.NegExpression(neg=models.DatetimeExpression(datetime="2024-01-01T00:00:00Z"))]),
        right=86400))


def expression(rng, depth):
    if depth == 0 or rng.random() < 0.3:
        return leaf(rng)
    kind = rng.choice(["sum", "mult", "neg", "abs", "div", "sqrt", "pow", "exp", "ln", "log10", "lin", "expd", "gauss"])
    sub = lambda: expression(rng, depth - 1)
    positive = lambda: models.SumExpression(sum=[models.AbsExpression(abs=sub()), 1])
    if kind == "sum":
        return models.SumExpression(sum=[sub() for _ in range(rng.randint(1, 3))])
    if kind == "mult":
        return models.MultExpression(mult=[sub() for _ in range(rng.randint(1, 3))])
    if kind == "neg":
        return models.NegExpression(neg=sub())
    if kind == "abs":
        return models.AbsExpression(abs=sub())
    if kind == "div":
        return models.DivExpression(div=models.DivParams(left=sub(), right=sub(), by_zero_default=rng.choice([0.0, 7.5])))
    if kind == "sqrt":
        return models.SqrtExpression(sqrt=models.AbsExpression(abs=sub()))
    if kind == "pow":
        return models.PowExpression(pow=models.PowParams(base=positive(), exponent=rng.choice([0.5, 2, -1])))
    if kind == "exp":
        return models.ExpExpression(exp=models.DivExpression(div=models.DivParams(left=sub(), right=100, by_zero_default=0)))
    if kind == "ln":
        return models.LnExpression(ln=positive())
    if kind == "log10":
        return models.Log10Expression(log10=positive())
    params = models.DecayParamsExpression(x=sub(), target=rng.choice([None, 1.0, "n"]), scale=rng.choice([None, 0.5, 10.0]),
                                          midpoint=rng.choice([None, 0.2, 0.7]))
    return {"lin": models.LinDecayExpression(lin_decay=params), "expd": models.ExpDecayExpression(exp_decay=params),
            "gauss": models.GaussDecayExpression(gauss_decay=params)}[kind]


DEFAULTS = {"price": 5, "loc": {"lat": 0, "lon": 0}, "ts": "2024-01-01T12:00:00Z", "$score[1]": 0.25}


def run(remote, local, rng, rounds):
    compared = 0
    for round_number in range(rounds):
        formula = models.FormulaQuery(formula=expression(rng, 3), defaults=DEFAULTS)
        prefetch = [models.Prefetch(query=[rng.uniform(-1, 1) for _ in range(4)], using=name, limit=rng.randint(5, 60), params=EXACT)
                    for name in ("cos", "dot")[:rng.randint(1, 2)]]
        kwargs = dict(prefetch=prefetch, query=formula, limit=rng.randint(1, 20), offset=rng.choice([0, 0, 3]), with_payload=True)
        try:
            expected = local.query_points("c", **kwargs).points
        except ValueError:
            continue  # a formula that cannot be evaluated (checked separately)
        got = remote.query_points("c", **kwargs).points
        compare(got, expected, f"round {round_number}: {kwargs}")
        compared += 1
    assert compared > rounds * 0.8


@pytest.mark.qdrant_client
def test_formulas_agree_with_local_mode_on_one_node(make_node):
    node = make_node()
    remote = node.client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(81)
    fill(remote, local, rng, 400)
    wait_green(remote)
    run(remote, local, rng, 300)

    # Errors Qdrant gives: a variable with no value and no default, a bad score variable, a
    # non-finite result, a formula with nothing to rescore.
    prefetch = {"query": [1, 0, 0, 0], "using": "dot", "limit": 50}
    for formula, message in (({"sum": ["$score", "missing_field"]}, "No value found for missing_field"),
                             ("$score[x]", "Invalid score pattern"),
                             ({"div": {"left": 1, "right": 0}}, "non-finite"),
                             ({"ln": {"neg": {"abs": "$score"}}}, "non-finite")):
        r = node.post("/collections/c/points/query", json={"prefetch": prefetch, "query": {"formula": formula}})
        assert r.status_code == 400 and message in r.json()["status"]["error"], (formula, r.text)
    r = node.post("/collections/c/points/query", json={"query": {"formula": "$score"}})
    assert r.status_code == 400 and "prefetch" in r.json()["status"]["error"]
    r = node.post("/collections/c/points/query", json={"prefetch": prefetch, "query": {"formula": {"lin_decay": {"x": 1, "midpoint": 2}}}})
    assert r.status_code == 400 and "midpoint" in r.json()["status"]["error"]


@pytest.mark.qdrant_client
def test_formulas_agree_with_local_mode_on_a_sharded_cluster(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    remote = peers[2].client(timeout=60)
    local = QdrantClient(":memory:")
    create(remote, shard_number=6, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    create(local)
    rng = random.Random(82)
    fill(remote, local, rng, 400)
    wait_green(remote)
    run(remote, local, rng, 100)
