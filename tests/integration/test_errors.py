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
        node.put(f"/collections/g{i}", data=bytes([i % 256]) * (i + 1), headers={"Content-Type": "application/json"})
    assert node.get("/").status_code == 200
    assert node.get("/collections").json()["result"]["collections"] == []
