"""Differential test of filters and exact search: random payloads, random filter trees (every
condition kind, nested, with paths) and random queries, run against the real server and against
qdrant-client's local mode (`QdrantClient(":memory:")`, its pure-Python reference implementation).
Counts, scrolled ids and search results (ids and scores) must agree.

`QUIVER_DIFF_SEED` picks other random seeds (the tests run seeds 404, 405 and 406 by default).

Local mode (qdrant-client 1.20) follows the engine closely, including its newer text matching
on whole word tokens. The one difference the generator has to avoid is that Python compares
`True == 1`, so bool and integer fields are kept apart.
"""

import json
import os
import random
import time
import uuid

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.local import datetime_utils

from test_sharding import scroll_all

# The raw text of each datetime range bound generated, by its JSON form in a serialized filter.
RAW_DATETIMES: dict[str, str] = {}
KEYWORDS = ["red", "green", "blue", "cyan", "magenta"]
WORDS = ["quick", "brown", "fox", "jumps", "over", "lazy", "dog"]
N_POINTS = 1500
DIM = 6


def random_datetime(rng: random.Random) -> str:
    """A datetime in March 2024 in any of the forms Qdrant accepts: `T` or a space before the time;
    date only, minutes, seconds, or seconds with 1 to 9 fractional digits; and after seconds no zone
    (UTC), `Z`, `z`, `±HH`, `±HHMM`, `±HH:MM` or ` UTC`, with or without a space before it."""
    date = f"2024-03-{rng.randint(1, 28):02d}"
    shape = rng.random()
    if shape < 0.08:
        return date
    time_part = f"{rng.choice('T ')}{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    if shape < 0.16:
        return date + time_part
    time_part += f":{rng.randint(0, 59):02d}"
    if rng.random() < 0.5:
        time_part += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
    hours, minutes = rng.randint(0, 12), rng.choice([0, 0, 30, 45])
    sign = rng.choice("+-")
    zone = rng.choice(["", "Z", "z", " UTC", f"{sign}{hours:02d}", f"{sign}{hours:02d}{minutes:02d}", f"{sign}{hours:02d}:{minutes:02d}"])
    space = " " if zone and zone != " UTC" and rng.random() < 0.4 else ""
    return date + time_part + space + zone


def random_payload(rng: random.Random, i: int) -> dict:
    p: dict = {}
    r = rng.random()
    if r < 0.6:
        p["kw"] = rng.choice(KEYWORDS)
    elif r < 0.85:
        p["kw"] = rng.sample(KEYWORDS, rng.randint(0, 3))
    if rng.random() < 0.8:
        p["num"] = rng.choice([rng.randint(-20, 20), rng.randint(-20, 20) + 0.5, [rng.randint(-20, 20) for _ in range(rng.randint(0, 3))]])
    p["flag"] = rng.random() < 0.5
    if rng.random() < 0.7:
        p["dt"] = random_datetime(rng) if rng.random() < 0.85 else [random_datetime(rng) for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.7:
        geo = lambda: {"lon": round(rng.uniform(-10, 10), 4), "lat": round(rng.uniform(40, 60), 4)}
        p["geo"] = geo() if rng.random() < 0.7 else [geo() for _ in range(rng.randint(1, 3))]
    p["tags"] = rng.choice([None, [], rng.sample(WORDS, rng.randint(1, 4))])
    p["maybe"] = rng.choice([None, [None], [], "x", "red", [1, None], ["blue", None], {"a": 1}])
    if rng.random() < 0.8:
        p["nested"] = [{"a": rng.randint(0, 5), "b": rng.choice(KEYWORDS)} for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.8:
        p["obj"] = {"x": rng.randint(0, 10), "y": [rng.randint(0, 10) for _ in range(rng.randint(0, 3))]}
    if rng.random() < 0.6:
        p["text"] = rng.choice([" ", ", ", "-"]).join(w.capitalize() if rng.random() < 0.3 else w for w in rng.sample(WORDS, rng.randint(1, 5)))
    return p


def geo_point(rng):
    return models.GeoPoint(lon=rng.uniform(-10, 10), lat=rng.uniform(40, 60))


def random_condition(rng: random.Random, depth: int, ids: list[int]):
    kind = rng.randrange(18 if depth < 2 else 16)
    if kind == 0:
        return models.FieldCondition(key="kw", match=models.MatchValue(value=rng.choice(KEYWORDS)))
    if kind == 1:
        return models.FieldCondition(key=rng.choice(["kw", "nested[].b"]), match=models.MatchAny(any=rng.sample(KEYWORDS, 2)))
    if kind == 2:
        return models.FieldCondition(key=rng.choice(["kw", "maybe"]), match=models.MatchExcept(**{"except": rng.sample(KEYWORDS, 2)}))
    if kind == 3:
        return models.FieldCondition(key=rng.choice(["num", "obj.x"]), match=models.MatchValue(value=rng.randint(-5, 10)))
    if kind == 4:
        return models.FieldCondition(key=rng.choice(["num", "obj.y"]), match=models.MatchAny(any=[rng.randint(0, 10) for _ in range(3)]))
    if kind == 5:
        return models.FieldCondition(key="flag", match=models.MatchValue(value=rng.random() < 0.5))
    if kind == 6:
        return models.FieldCondition(key="text", match=models.MatchText(text=rng.choice(WORDS + ["ox", "la"])))
    if kind == 7:
        return models.FieldCondition(key="text", match=rng.choice([
            models.MatchTextAny(text_any=" ".join(rng.sample(WORDS, 2))),
            models.MatchPhrase(phrase=" ".join(rng.sample(WORDS, 2)).upper()),
            models.MatchPrefix(prefix=rng.choice(KEYWORDS)[:rng.randint(0, 3)]),
        ]))
    if kind == 8:
        bounds = {}
        for name in rng.sample(["gt", "gte", "lt", "lte"], rng.randint(1, 2)):
            bounds[name] = rng.choice([rng.randint(-20, 20), rng.uniform(-20, 20)])
        return models.FieldCondition(key=rng.choice(["num", "obj.x", "obj.y[]", "nested[].a"]), range=models.Range(**bounds))
    if kind == 9:
        # Local mode gets the bound as its own parser reads it; the server gets the raw text.
        bounds = {}
        for name in rng.sample(["gt", "gte", "lt", "lte"], rng.randint(1, 2)):
            raw = random_datetime(rng)
            bounds[name] = datetime_utils.parse(raw)
            RAW_DATETIMES[models.DatetimeRange(gt=bounds[name]).model_dump(mode="json")["gt"]] = raw
        return models.FieldCondition(key="dt", range=models.DatetimeRange(**bounds))
    if kind == 10:
        left, right = sorted([rng.uniform(-10, 10), rng.uniform(-10, 10)])
        low, high = sorted([rng.uniform(40, 60), rng.uniform(40, 60)])
        return models.FieldCondition(key="geo", geo_bounding_box=models.GeoBoundingBox(
            top_left=models.GeoPoint(lon=left, lat=high), bottom_right=models.GeoPoint(lon=right, lat=low)))
    if kind == 11:
        return models.FieldCondition(key="geo", geo_radius=models.GeoRadius(center=geo_point(rng), radius=rng.uniform(1e5, 8e5)))
    if kind == 12:
        ring = [geo_point(rng) for _ in range(rng.randint(3, 6))]
        ring.append(ring[0])
        return models.FieldCondition(key="geo", geo_polygon=models.GeoPolygon(exterior=models.GeoLineString(points=ring)))
    if kind == 13:
        bounds = {rng.choice(["gt", "gte", "lt", "lte"]): rng.randint(0, 3)}
        return models.FieldCondition(key=rng.choice(["tags", "maybe", "kw", "missing", "obj.y"]), values_count=models.ValuesCount(**bounds))
    if kind == 14:
        key = rng.choice(["tags", "maybe", "kw", "missing", "nested", "obj.y"])
        return rng.choice([models.IsEmptyCondition(is_empty=models.PayloadField(key=key)),
                           models.IsNullCondition(is_null=models.PayloadField(key=key)),
                           models.FieldCondition(key=key, is_empty=rng.random() < 0.5),
                           models.FieldCondition(key=key, is_null=rng.random() < 0.5)])
    if kind == 15:
        if rng.random() < 0.3:
            total = rng.randint(1, 5)
            return models.SliceCondition(slice=models.Slice(index=rng.randrange(total), total=total))
        if rng.random() < 0.3:
            return models.HasVectorCondition(has_vector=rng.choice(["l1", "cos"]))
        return models.HasIdCondition(has_id=rng.sample(ids, rng.randint(1, 40)))
    if kind == 16:
        return models.NestedCondition(nested=models.Nested(key=rng.choice(["nested", "nested[]"]), filter=random_filter(rng, depth + 1, ids, nested=True)))
    return random_filter(rng, depth + 1, ids)


def random_nested_condition(rng: random.Random):
    if rng.random() < 0.5:
        return models.FieldCondition(key="a", range=models.Range(**{rng.choice(["gt", "lt", "gte", "lte"]): rng.randint(0, 5)}))
    return models.FieldCondition(key="b", match=models.MatchValue(value=rng.choice(KEYWORDS)))


def random_filter(rng: random.Random, depth: int, ids: list[int], nested: bool = False) -> models.Filter:
    make = (lambda: random_nested_condition(rng)) if nested else (lambda: random_condition(rng, depth, ids))
    parts = {}
    for clause in rng.sample(["must", "should", "must_not", "min_should"], rng.randint(1, 3)):
        conditions = [make() for _ in range(rng.randint(1, 3))]
        if clause == "min_should":
            parts[clause] = models.MinShould(conditions=conditions, min_count=rng.randint(1, len(conditions)))
        else:
            parts[clause] = conditions
    return models.Filter(**parts)


SEEDS = [int(s) for s in os.environ.get("QUIVER_DIFF_SEED", "404,405,406").split(",")]


@pytest.fixture(params=SEEDS, ids=lambda seed: f"seed{seed}")
def pair(node, request):
    rng = random.Random(request.param)
    remote = node.client(timeout=30)
    local = QdrantClient(":memory:")
    # A fifth of the ids are UUIDs (they sort after the numbers, and hash differently for `slice`).
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) if i % 5 == 4 else i for i in range(N_POINTS)]
    points = [models.PointStruct(id=i, vector={name: [rng.uniform(-1, 1) for _ in range(DIM)] for name in
                                                ["cos", "dot", "l2", "l1"]}, payload=random_payload(rng, i)) for i in ids]
    for client, extra in [(remote, {"shard_number": 2, "optimizers_config": models.OptimizersConfigDiff(indexing_threshold=20)}),
                          (local, {})]:
        client.create_collection("c", vectors_config={
            "cos": models.VectorParams(size=DIM, distance=models.Distance.COSINE),
            "dot": models.VectorParams(size=DIM, distance=models.Distance.DOT),
            "l2": models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
            "l1": models.VectorParams(size=DIM, distance=models.Distance.MANHATTAN),
        }, **extra)
        for start in range(0, N_POINTS, 250):
            client.upsert("c", points=points[start:start + 250], wait=True)
        # Changes after the optimizer has sealed segments move points between segments.
        client.set_payload("c", payload={"kw": "cyan", "obj": {"x": 3, "y": [3]}}, points=ids[::17], wait=True)
        client.delete("c", points_selector=models.PointIdsList(points=ids[5::23]), wait=True)
        client.delete_vectors("c", vectors=["l1"], points=[i for i in ids[::31] if i not in ids[5::23]], wait=True)
    deadline = time.time() + 60
    while remote.get_collection("c").status != models.CollectionStatus.GREEN and time.time() < deadline:
        time.sleep(0.2)
    # The comparisons below are meant to run over sealed, indexed segments too.
    assert remote.get_collection("c").status == models.CollectionStatus.GREEN, "the optimizer never finished"
    manifests = [json.loads(m.read_text()) for m in node.workdir.glob("storage/collections/c/*/segments/*/manifest.json")]
    assert any(m.get("kind") == "immutable" for m in manifests), "no segment was sealed"
    return remote, local, rng, ids


INDEXES = {"kw": "keyword", "num": "integer", "obj.x": "integer", "obj.y": "float", "flag": "bool", "dt": "datetime",
           "geo": "geo", "nested[].b": "keyword", "maybe": "keyword",
           # Default text index settings tokenize as unindexed fields do.
           "text": models.TextIndexParams(type=models.TextIndexType.TEXT, phrase_matching=True)}


def scroll_ids(client, query_filter):
    ids, offset = [], None
    while True:
        page, offset = client.scroll("c", scroll_filter=query_filter, limit=400, offset=offset, with_payload=False)
        ids += [p.id for p in page]
        if offset is None:
            return ids


def raw_filter(query_filter: models.Filter) -> dict:
    """The filter as JSON, with each datetime bound in the raw form it was generated in."""
    def walk(value):
        if isinstance(value, dict):
            if set(value) <= {"gt", "gte", "lt", "lte"} and any(v in RAW_DATETIMES for v in value.values()):
                return {k: RAW_DATETIMES.get(v, v) for k, v in value.items()}
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value
    return walk(query_filter.model_dump(mode="json", exclude_none=True, by_alias=True))


@pytest.mark.qdrant_client
@pytest.mark.parametrize("indexed", [False, True])
def test_filters_agree_with_local_mode(node, pair, indexed):
    """With payload indexes on most fields the results are the same: indexes only make filters faster."""
    remote, local, rng, ids = pair
    if indexed:
        for field, schema in INDEXES.items():
            remote.create_payload_index("c", field_name=field, field_schema=schema, wait=True)
        info = remote.get_collection("c")
        assert set(info.payload_schema) == set(INDEXES)
        assert info.payload_schema["flag"].points == len(ids) - len(ids[5::23])
    checked_nonempty = 0
    for round_number in range(200):
        query_filter = random_filter(rng, 0, ids)
        expected = scroll_ids(local, query_filter)
        got = scroll_all(node, "c", limit=400, filter=raw_filter(query_filter))
        assert got == sorted(expected, key=lambda i: (isinstance(i, str), i)), f"round {round_number}: {raw_filter(query_filter)}"
        r = node.post("/collections/c/points/count", json={"filter": raw_filter(query_filter), "exact": True})
        assert r.json()["result"]["count"] == len(expected)
        checked_nonempty += 0 < len(expected) < len(ids)
    assert checked_nonempty > 100, "the generator made too few selective filters to mean anything"


@pytest.mark.qdrant_client
@pytest.mark.parametrize("using", ["cos", "dot", "l2", "l1"])
def test_search_agrees_with_local_mode(pair, using):
    remote, local, rng, ids = pair
    if using in ("dot", "l1"):
        for field, schema in INDEXES.items():
            remote.create_payload_index("c", field_name=field, field_schema=schema, wait=True)
    for round_number in range(40):
        query_filter = random_filter(rng, 1, ids) if rng.random() < 0.7 else None
        query = [rng.uniform(-1, 1) for _ in range(DIM)]
        kwargs = dict(query=query, using=using, query_filter=query_filter, limit=rng.randint(1, 30),
                      offset=rng.choice([0, 0, 3]), with_payload=True)
        expected = local.query_points("c", **kwargs).points
        got = remote.query_points("c", **kwargs).points
        # Scores agree position by position; ids too, except among points whose scores differ by
        # less than float32 rounding (local mode sums in another order), which may swap.
        assert len(got) == len(expected), f"{using} round {round_number}"
        close = lambda a, b: a == pytest.approx(b, rel=1e-5, abs=1e-6)
        for i, (g, e) in enumerate(zip(got, expected)):
            assert g.score == pytest.approx(e.score, rel=1e-4, abs=1e-5), f"{using} round {round_number}"
            tied = any(close(e.score, other.score) for j, other in enumerate(expected) if j != i)
            if not tied:
                assert g.id == e.id and g.payload == e.payload, f"{using} round {round_number}, rank {i}"
        assert {str(p.id) for p in got if not any(close(p.score, e.score) for e in expected[-1:])} <= {str(p.id) for p in expected}


@pytest.mark.qdrant_client
def test_order_by_and_facets_agree_with_local_mode(pair):
    remote, local, rng, ids = pair
    for field, schema in [("num", "float"), ("dt", "datetime"), ("kw", "keyword"), ("obj.x", "integer")]:
        remote.create_payload_index("c", field_name=field, field_schema=schema, wait=True)
    for round_number in range(40):
        query_filter = random_filter(rng, 1, ids) if rng.random() < 0.6 else None
        key = rng.choice(["num", "dt", "obj.x"])
        direction = rng.choice([models.Direction.ASC, models.Direction.DESC])
        start_from = rng.choice([None, rng.randint(-10, 10)]) if key != "dt" else rng.choice([None, datetime_utils.parse(random_datetime(rng))])
        order_by = models.OrderBy(key=key, direction=direction, start_from=start_from)
        limit = rng.randint(1, 60)
        expected, _ = local.scroll("c", order_by=order_by, scroll_filter=query_filter, limit=limit)
        got, next_offset = remote.scroll("c", order_by=order_by, scroll_filter=query_filter, limit=limit)
        assert next_offset is None
        # Points with equal values may come in either order, and where the limit cuts through
        # equal values, either may make the page.
        assert [p.order_value for p in got] == [p.order_value for p in expected], f"round {round_number}: {order_by}"
        cut = got[-1].order_value if len(got) == limit else None
        inside = lambda points: sorted((p.order_value, str(p.id)) for p in points if p.order_value != cut)
        assert inside(got) == inside(expected)
        for facet_key in ["kw", "obj.x"]:
            expected_hits = local.facet("c", key=facet_key, facet_filter=query_filter, limit=50).hits
            got_hits = remote.facet("c", key=facet_key, facet_filter=query_filter, limit=50).hits
            assert [(h.value, h.count) for h in got_hits] == [(h.value, h.count) for h in expected_hits], f"round {round_number}"
