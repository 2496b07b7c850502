"""Bad input gets a 4xx in Qdrant's error shape with a message naming the problem, changes
nothing, and the server keeps serving."""

import pytest


def error_of(r):
    body = r.json()
    assert set(body) >= {"status", "time"}, body
    return body["status"]["error"]


@pytest.mark.parametrize("body, status, fragment", [
    ("{not json", 400, "Format error in JSON body: key must be a string at line 1 column 2"),
    ('{"vectors": {"size": 4, "distance": "Dot"}', 400, "EOF while parsing an object"),
    ('{"vectors": {"size": "four", "distance": "Dot"}}', 400, 'vectors.size: invalid type: string "four"'),
    ('{"vectors": {"size": -1, "distance": "Dot"}}', 400, "vectors.size: invalid value: integer `-1`"),
    ('{"vectors": {"size": 4, "distance": "Hamming"}}', 400, "unknown variant `Hamming`"),
    ('{"vectors": {"size": 4}}', 400, "missing field `distance`"),
    ('{"vectors": {"size": 0, "distance": "Dot"}}', 422, "vectors.size: value 0 invalid, must be from 1 to 65536"),
    ('{"vectors": {"size": 70000, "distance": "Dot"}}', 422, "must be from 1 to 65536"),
    ('{"shard_number": 0}', 422, "shard_number: value 0 invalid"),
    ('{"hnsw_config": {"ef_construct": 1}}', 422, "hnsw_config.ef_construct"),
    ('{"optimizers_config": {"deleted_threshold": 2}}', 422, "optimizers_config.deleted_threshold"),
    ('{"quantization_config": {"scalar": {"type": "int8", "quantile": 0.1}}}', 422, "quantile"),
    ('{"quantization_config": {"scalar": {"type": "int4"}}}', 400, "unknown variant `int4`"),
    ('{"vectors": {"a/b": {"size": 4, "distance": "Dot"}}}', 422, 'vector name cannot contain "/" char'),
    ('{"metadata": [1, 2]}', 400, "metadata: invalid type: sequence"),
    # Every count in Qdrant's schema is unsigned: a negative one is malformed (400), not a range error.
    ('{"hnsw_config": {"m": -1}}', 400, "hnsw_config.m: invalid value: integer `-1`, expected a non-negative integer"),
    ('{"optimizers_config": {"indexing_threshold": -5}}', 400, "optimizers_config.indexing_threshold: invalid value: integer `-5`"),
    ('{"wal_config": {"wal_capacity_mb": -1}}', 400, "wal_config.wal_capacity_mb: invalid value: integer `-1`"),
    ('{"strict_mode_config": {"upsert_max_batchsize": -3}}', 400, "strict_mode_config.upsert_max_batchsize: invalid value"),
    ('{"strict_mode_config": {"max_query_limit": -1}}', 400, "strict_mode_config.max_query_limit: invalid value"),
    ('{"optimizers_config": {"vacuum_min_vector_number": 5}}', 422, "value 5 invalid, must be 100 or larger"),
    ('[]', 400, "invalid type: sequence, expected struct"),
])
def test_bad_create_bodies(node, openapi, body, status, fragment):
    r = node.put("/collections/c", data=body, headers={"Content-Type": "application/json"})
    openapi.validate(r)
    assert r.status_code == status, r.text
    assert fragment in error_of(r)
    assert node.get("/collections/c/exists").json()["result"]["exists"] is False


@pytest.mark.parametrize("name, fragment", [
    ("a:b", 'collection name cannot contain ":" char'),
    ("a*b", 'collection name cannot contain "*" char'),
    ("a%3Fb", 'collection name cannot contain "?" char'),
    ("x" * 256, "must be from 1 to 255 bytes"),
    ("%2E%2E", "cannot be"),
])
def test_bad_collection_names(node, name, fragment):
    r = node.put(f"/collections/{name}", json={})
    assert r.status_code == 422, r.text
    assert "Validation error in path parameters" in error_of(r)
    assert fragment in error_of(r)
    assert node.get("/collections").json()["result"]["collections"] == []


@pytest.mark.parametrize("name, fragment", [
    ("x" * 256, 'value "' + "x" * 256 + '" invalid, must be from 1 to 255 characters'),
    ("é" * 256, "must be from 1 to 255 characters"),
    ("a%2Fb", 'collection name cannot contain "/" char'),
])
def test_addressed_collection_names_are_checked_on_every_route(node, openapi, name, fragment):
    # Routes that address an existing collection check Qdrant's basic rules (in characters, so
    # names made under older rules stay reachable); creation checks the strict ones.
    for method, path, body in [("get", "", None), ("get", "/exists", None), ("delete", "", None), ("patch", "", {}),
                               ("get", "/aliases", None), ("post", "/points/scroll", {}), ("post", "/points/count", {}),
                               ("put", "/points", {"points": []}), ("get", "/optimizations", None)]:
        kwargs = {} if body is None else {"json": body}
        r = getattr(node, method)(f"/collections/{name}{path}", **kwargs)
        assert r.status_code == 422, (method, path, r.text)
        assert error_of(r).startswith("Validation error in path parameters: [collection_name: ") and fragment in error_of(r)
    assert node.get(f"/collections/{'é' * 255}/exists").json()["result"]["exists"] is False


def test_bad_body_is_reported_before_a_bad_timeout(node):
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    r = node.post("/collections/c/points/scroll?timeout=0", json={"limit": "x"})
    assert r.status_code == 400 and "limit" in error_of(r), r.text
    r = node.post("/collections/c/points/scroll?timeout=0", json={"limit": -2})
    assert r.status_code == 400 and "limit: invalid value" in error_of(r), r.text
    r = node.post("/collections/c/points/scroll?timeout=0", json={"limit": 2})
    assert r.status_code == 422 and "timeout" in error_of(r), r.text


def test_not_found_everywhere(node, openapi):
    for method, path in [("get", "/collections/nope"), ("get", "/collections/nope/aliases")]:
        r = openapi.validate(getattr(node, method)(path))
        assert r.status_code == 404
        assert error_of(r) == "Not found: Collection `nope` doesn't exist!"
    r = openapi.validate(node.patch("/collections/nope", json={}))
    assert r.status_code == 404
    r = openapi.validate(node.delete("/collections/nope"))
    assert (r.status_code, r.json()["result"]) == (200, False)


def test_bad_query_parameters(node):
    r = node.put("/collections/c?timeout=0", json={})
    assert r.status_code == 422 and "timeout" in error_of(r)
    r = node.put("/collections/c?timeout=soon", json={})
    assert r.status_code == 400 and "timeout" in error_of(r)


def test_bad_alias_requests(node):
    node.put("/collections/c", json={})
    r = node.post("/collections/aliases", json={"actions": [{"create_alias": {"collection_name": "c"}}]})
    assert r.status_code == 400 and "missing field `alias_name`" in error_of(r)
    r = node.post("/collections/aliases", json={"actions": [{"create_alias": {"collection_name": "c", "alias_name": "a/b"}}]})
    assert r.status_code == 422
    r = node.post("/collections/aliases", json={"actions": [{"rename_alias": {"old_alias_name": "x", "new_alias_name": "y"}}]})
    assert r.status_code == 404 and "Alias x does not exists!" in error_of(r)
    assert node.get("/aliases").json()["result"]["aliases"] == []


def test_oversized_body_is_413(make_node):
    node = make_node(env={"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1"})
    big = {"metadata": {"blob": "x" * (2 * 1024 * 1024)}}
    r = node.put("/collections/big", json=big)
    assert r.status_code == 413
    assert "1048576 bytes" in error_of(r)
    assert node.get("/collections/big/exists").json()["result"]["exists"] is False
    assert node.put("/collections/small", json={"metadata": {"blob": "x" * 1000}}).status_code == 200


def test_server_survives_a_burst_of_garbage(node):
    for i in range(200):
        r = node.put(f"/collections/g{i}", data=bytes([i % 256]) * (i + 1), headers={"Content-Type": "application/json"})
        # Some of these bytes are valid JSON (a digit is a number; `{}`-free bytes never make a
        # body): each is refused as malformed or of the wrong shape, never a 5xx.
        assert r.status_code == 400, (i, r.status_code, r.text)
        assert error_of(r).startswith("Format error in JSON body"), (i, r.text)
    assert node.get("/").status_code == 200
    assert node.get("/collections").json()["result"]["collections"] == []


def test_validation_messages_as_qdrant_words_them(node, openapi):
    assert node.put("/collections/v", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    assert node.put("/collections/n", json={"vectors": {"a": {"size": 2, "distance": "Dot"}}}).status_code == 200
    slice_message = "Validation error: Slice index must be less than the total number of slices [{}]"
    for path, body, prefix in [("points/scroll", {}, "scroll_request"), ("points/count", {}, "count_request"),
                               ("points/query", {"query": [1, 0]}, "internal"), ("points/search", {"vector": [1, 0], "limit": 2}, "search_request")]:
        r = openapi.validate(node.post(f"/collections/v/{path}", json={**body, "filter": {"must": [{"slice": {"index": 3, "total": 3}}]}}))
        assert r.status_code == 422, r.text
        assert error_of(r) == f"Validation error in JSON body: [{prefix}.filter.must[0].__all__: {slice_message}]"
    for bad in [{"index": 0, "total": 0}, {"index": -1, "total": 2}, {"index": 0, "total": 2**32}]:
        r = node.post("/collections/v/points/scroll", json={"filter": {"must": [{"slice": bad}]}})
        assert r.status_code == 400, r.text
    for name, body, field in [
        ("v", {"points": [{"id": 1, "vector": []}]}, "points[0].vector.vector"),
        ("n", {"points": [{"id": 1, "vector": {"a": []}}]}, "points[0].vector.?.vector"),
        ("v", {"batch": {"ids": [1], "vectors": [[]]}}, "batch.vector"),
        ("n", {"batch": {"ids": [1], "vectors": {"a": [[]]}}}, "batch.?.vector"),
        ("missing", {"points": [{"id": 1, "vector": []}]}, "points[0].vector.vector"),
    ]:
        r = openapi.validate(node.put(f"/collections/{name}/points?wait=true", json=body))
        assert r.status_code == 422, r.text
        assert error_of(r) == f"Validation error in JSON body: [{field}: dense vector must not be empty]"
    for name, vector, field in [("v", [], "points[0].vector"), ("n", {"a": []}, "points[0].?.vector")]:
        r = node.put(f"/collections/{name}/points/vectors?wait=true", json={"points": [{"id": 1, "vector": vector}]})
        assert r.status_code == 422 and error_of(r) == f"Validation error in JSON body: [{field}: dense vector must not be empty]", r.text
    r = openapi.validate(node.put("/collections/d", json={"vectors": {"text": {"size": 2, "distance": "Dot"}}, "sparse_vectors": {"text": {}}}))
    assert r.status_code == 400
    assert error_of(r) == "Wrong input: Dense and sparse vector names must be unique - duplicate found with 'text'"
    assert node.get("/collections/d/exists").json()["result"]["exists"] is False
    # `top` is the old name of `limit` in the legacy search body; both at once is a duplicate.
    assert node.put("/collections/v/points?wait=true", json={"points": [{"id": i, "vector": [1, i]} for i in range(5)]}).status_code == 200
    r = node.post("/collections/v/points/search", json={"vector": [1, 0], "top": 3})
    assert r.status_code == 200 and len(r.json()["result"]) == 3
    r = node.post("/collections/v/points/search", json={"vector": [1, 0], "top": 3, "limit": 2})
    assert r.status_code == 400 and "duplicate field `limit`" in error_of(r)
    r = node.put("/collections/v/points?wait=true", json={"points": [{"id": 1, "vector": [1, 0]}], "update_mode": "replace"})
    assert r.status_code == 400 and "unknown variant `replace`, expected one of `upsert`, `insert_only`, `update_only`" in error_of(r)
