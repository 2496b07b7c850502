"""Search, payload indexes, order_by and facets through the real server: response shapes against
the OpenAPI document, qdrant-client calls, the legacy endpoints, and the errors."""

import time

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse


@pytest.fixture
def client(node):
    c = node.client(timeout=10)
    c.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.EUCLID))
    c.upsert("c", wait=True, points=[
        models.PointStruct(id=i, vector=[float(i), 0.0, 1.0],
                           payload={"color": ["red", "green", "blue"][i % 3], "n": i, "when": f"2024-01-{i + 1:02d}T00:00:00Z",
                                    "tags": ["a", "b"] if i % 2 else ["a"]})
        for i in range(12)
    ])
    return c


@pytest.mark.qdrant_client
def test_query_shapes_and_legacy_endpoints(client, node, openapi):
    r = openapi.validate(node.post("/collections/c/points/query", json={"query": [2.2, 0, 1], "limit": 3, "with_payload": ["n"]}))
    points = r.json()["result"]["points"]
    assert [p["id"] for p in points] == [2, 3, 1]
    assert points[0]["score"] == pytest.approx(0.2, abs=1e-5) and points[0]["payload"] == {"n": 2}
    assert points[0]["version"] >= 1
    # Euclid scores are distances: ascending, and score_threshold keeps the closer ones.
    r = node.post("/collections/c/points/query", json={"query": [2.2, 0, 1], "score_threshold": 1.0}).json()["result"]["points"]
    assert [p["id"] for p in r] == [2, 3]
    r = openapi.validate(node.post("/collections/c/points/search", json={"vector": [0, 0, 1], "limit": 2, "offset": 1,
                                                                          "filter": {"must": {"key": "color", "match": {"value": "red"}}}}))
    assert [p["id"] for p in r.json()["result"]] == [3, 6]
    r = openapi.validate(node.post("/collections/c/points/search/batch", json={"searches": [
        {"vector": [0, 0, 1], "limit": 1}, {"vector": [11, 0, 1], "limit": 1, "with_vector": True}]}))
    assert [[p["id"] for p in batch] for batch in r.json()["result"]] == [[0], [11]]
    assert r.json()["result"][1][0]["vector"] == [11.0, 0.0, 1.0]
    r = openapi.validate(node.post("/collections/c/points/query/batch", json={"searches": [{"query": 5, "limit": 2}, {"limit": 2}]}))
    first, second = r.json()["result"]
    assert [p["id"] for p in first["points"]] == [4, 6]  # the point queried by id is left out
    assert [p["id"] for p in second["points"]] == [0, 1]  # no query: id order
    # The client's own calls.
    got = client.query_points("c", query=[7, 0, 1], limit=2, query_filter=models.Filter(
        must=[models.FieldCondition(key="n", range=models.Range(gte=8))])).points
    assert [p.id for p in got] == [8, 9]


@pytest.mark.qdrant_client
@pytest.mark.parametrize("body, status, message", [
    ({"query": [1, 2]}, 400, "Vector dimension error: expected dim: 3, got 2"),
    ({"query": [1, 2, 3], "using": "nope"}, 400, "Not existing vector name error: nope"),
    ({"query": 999}, 404, "No point with id 999 found"),
    ({"query": {"sample": "sometimes"}}, 400, "unknown variant `sometimes`, expected `random`"),
    ({"query": [1, 2, 3], "limit": 0}, 400, "limit: must be at least 1"),
    ({"query": [1, 2, 3], "filter": {"must": [{"key": "n"}]}}, 400, "has no test"),
    ({"query": [1, 2, 3], "bogus": 1}, 400, "unknown field `bogus`"),
])
def test_query_errors(client, node, openapi, body, status, message):
    r = openapi.validate(node.post("/collections/c/points/query", json=body))
    assert r.status_code == status and message in r.json()["status"]["error"], r.text


@pytest.mark.qdrant_client
def test_updates_by_filter(client):
    client.set_payload("c", payload={"hot": True}, points=models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=3))]), wait=True)
    assert client.count("c", count_filter=models.Filter(must=[models.FieldCondition(key="hot", match=models.MatchValue(value=True))])).count == 3
    client.delete_payload("c", keys=["tags"], points=models.Filter(must=[models.HasIdCondition(has_id=[0, 1])]), wait=True)
    assert "tags" not in client.retrieve("c", ids=[1])[0].payload
    client.delete("c", points_selector=models.FilterSelector(filter=models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])), wait=True)
    assert client.count("c").count == 8
    # A filter that matches nothing is not an error.
    client.clear_payload("c", points_selector=models.FilterSelector(filter=models.Filter(must=[models.HasIdCondition(has_id=[999])])), wait=True)


@pytest.mark.qdrant_client
def test_payload_indexes_order_by_and_facets(client, node, openapi):
    r = openapi.validate(node.put("/collections/c/index?wait=true", json={"field_name": "color", "field_schema": "keyword"}))
    assert r.json()["result"]["status"] == "completed"
    client.create_payload_index("c", "n", models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=True, range=True), wait=True)
    client.create_payload_index("c", "when", "datetime", wait=True)
    info = openapi.validate(node.get("/collections/c")).json()["result"]
    assert info["payload_schema"]["color"] == {"data_type": "keyword", "params": None, "points": 12}
    assert info["payload_schema"]["n"]["params"] == {"type": "integer", "lookup": True, "range": True}

    page, next_offset = client.scroll("c", order_by=models.OrderBy(key="n", direction=models.Direction.DESC, start_from=9), limit=3)
    assert [(p.id, p.order_value) for p in page] == [(9, 9), (8, 8), (7, 7)] and next_offset is None
    page, _ = client.scroll("c", order_by="when", limit=2)
    assert [p.id for p in page] == [0, 1] and page[0].order_value == 1704067200000000
    r = node.post("/collections/c/points/scroll", json={"order_by": "tags"})
    assert r.status_code == 400 and "No range index for `order_by` key: `tags`" in r.json()["status"]["error"]

    facet = openapi.validate(node.post("/collections/c/facet", json={"key": "color", "filter": {"must": {"key": "n", "range": {"lt": 10}}}}))
    # Most frequent first, ties by value.
    assert facet.json()["result"]["hits"] == [{"value": "red", "count": 4}, {"value": "blue", "count": 3}, {"value": "green", "count": 3}]
    hits = client.facet("c", key="color", limit=1).hits
    assert [(h.value, h.count) for h in hits] == [("blue", 4)]
    r = node.post("/collections/c/facet", json={"key": "tags"})
    assert r.status_code == 400 and "Index required" in r.json()["status"]["error"]
    # An index of the wrong type for a condition is an error naming the field.
    r = node.post("/collections/c/points/count", json={"filter": {"must": {"key": "color", "range": {"gt": 1}}}})
    assert r.status_code == 400 and "field `color` has a `keyword` index" in r.json()["status"]["error"]
    r = node.put("/collections/c/index", json={"field_name": "x", "field_schema": "vector"})
    assert r.status_code == 400 and "unknown variant `vector`" in r.json()["status"]["error"]

    # Indexes survive a restart and can be dropped.
    node.kill()
    node.start()
    assert set(client.get_collection("c").payload_schema) == {"color", "n", "when"}
    assert openapi.validate(node.delete("/collections/c/index/when?wait=true")).status_code == 200
    assert set(client.get_collection("c").payload_schema) == {"color", "n"}


@pytest.mark.qdrant_client
def test_text_index_settings_apply_to_text_conditions(client, node):
    client.upsert("c", wait=True, points=[models.PointStruct(id=100, vector=[0, 0, 0], payload={"title": "The Wonderful World"})])
    text = {"filter": {"must": {"key": "title", "match": {"text": "wond"}}}}
    assert node.post("/collections/c/points/count", json=text).json()["result"]["count"] == 0
    r = node.put("/collections/c/index?wait=true", json={"field_name": "title", "field_schema": {
        "type": "text", "tokenizer": "prefix", "lowercase": True, "min_token_len": 2, "stopwords": "english"}})
    assert r.status_code == 200, r.text
    assert node.post("/collections/c/points/count", json=text).json()["result"]["count"] == 1
    phrase = {"filter": {"must": {"key": "title", "match": {"phrase": "wonderful world"}}}}
    r = node.post("/collections/c/points/count", json=phrase)
    assert r.status_code == 400 and "phrase_matching" in r.json()["status"]["error"]
    client.delete_payload_index("c", "title", wait=True)
    assert node.post("/collections/c/points/count", json=phrase).json()["result"]["count"] == 1
    # Another language: German stopwords and stemming ("Häuser" and "Haus" are one stem).
    client.upsert("c", wait=True, points=[models.PointStruct(id=101, vector=[0, 0, 0], payload={"titel": "Die grünen Häuser"})])
    r = node.put("/collections/c/index?wait=true", json={"field_name": "titel", "field_schema": {
        "type": "text", "stemmer": {"type": "snowball", "language": "de"}, "stopwords": "german"}})
    assert r.status_code == 200, r.text
    for query, count in (("Haus", 1), ("Häusern", 1), ("grün", 1), ("rot", 0)):
        r = node.post("/collections/c/points/count", json={"filter": {"must": {"key": "titel", "match": {"text": query}}}})
        assert r.json()["result"]["count"] == count, query
    r = node.put("/collections/c/index", json={"field_name": "title", "field_schema": {"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}}})
    assert r.status_code == 400 and "klingon" in r.json()["status"]["error"]


def _english_vocabulary(count):
    """Distinct lowercase words from the comments and docstrings of Python's standard library."""
    import os, re
    folder = os.path.dirname(os.__file__)
    words = set()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), encoding="utf-8", errors="ignore") as f:
                words.update(w for w in re.findall(r"[a-z]{3,}", f.read()))
    words = sorted(words)
    return words[::max(1, len(words) // count)][:count]


@pytest.mark.qdrant_client
def test_english_stemming_matches_qdrants_stemmer(node):
    """Text conditions on a field with an English snowball stemmer match what Qdrant's stemmer
    (rust-stemmers, through its Python binding) says, in sealed segments and the appendable one."""
    import random
    from py_rust_stemmers import SnowballStemmer
    stem = SnowballStemmer("english").stem_word
    client = node.client(timeout=30)
    client.create_collection("s", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1, default_segment_number=1))
    r = node.put("/collections/s/index?wait=true", json={"field_name": "t", "field_schema": {
        "type": "text", "stemmer": {"type": "snowball", "language": "english"}}})
    assert r.status_code == 200, r.text
    vocabulary = _english_vocabulary(1500)
    rng = random.Random(11)
    docs = {i: rng.sample(vocabulary, 6) for i in range(400)}
    for start in range(0, 400, 100):
        client.upsert("s", wait=True, points=[models.PointStruct(id=i, vector=[1.0, 0.0], payload={"t": " ".join(docs[i])})
                                              for i in range(start, start + 100)])
    stems = {i: {stem(w) for w in words} for i, words in docs.items()}
    queries = rng.sample(vocabulary, 150)

    def check():
        checked = 0
        for word in queries:
            expected = sorted(i for i, s in stems.items() if stem(word) in s)
            got = client.scroll("s", limit=1000, scroll_filter=models.Filter(must=[
                models.FieldCondition(key="t", match=models.MatchText(text=word.upper()))]))[0]
            assert sorted(p.id for p in got) == expected, word
            checked += bool(expected)
        assert checked > 100

    check()  # while the optimizer seals segments
    deadline = time.time() + 60
    while client.get_collection("s").status != models.CollectionStatus.GREEN and time.time() < deadline:
        time.sleep(0.1)
    assert client.get_collection("s").status == models.CollectionStatus.GREEN, "the optimizer never finished"
    check()  # in sealed segments
    # Every token of the query must match (as stems).
    a, b = docs[7][0], docs[7][1]
    both = client.count("s", count_filter=models.Filter(must=[models.FieldCondition(key="t", match=models.MatchText(text=f"{a} {b}"))])).count
    assert both == sum(1 for s in stems.values() if stem(a) in s and stem(b) in s)
