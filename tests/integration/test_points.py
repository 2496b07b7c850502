"""Point operations without filters or search, through qdrant-client and raw HTTP."""

import time
import uuid

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse


@pytest.fixture
def client(node):
    return node.client(timeout=10)


def make(client, name="c", **kw):
    client.create_collection(name, vectors_config=kw.pop("vectors", models.VectorParams(size=3, distance=models.Distance.DOT)), **kw)


@pytest.mark.qdrant_client
def test_upsert_retrieve_scroll_count_delete(client, node, openapi):
    make(client)
    result = client.upsert("c", wait=True, points=[
        models.PointStruct(id=i, vector=[float(i), 1.0, 0.5], payload={"i": i, "even": i % 2 == 0, "f": 1.0})
        for i in range(25)
    ])
    assert result.status == models.UpdateStatus.COMPLETED
    assert result.operation_id is not None
    assert client.count("c", exact=True).count == 25

    got = client.retrieve("c", ids=[3, 4, 99], with_payload=True, with_vectors=True)
    assert [p.id for p in got] == [3, 4]
    assert got[0].payload == {"i": 3, "even": False, "f": 1.0}
    assert got[0].vector == [3.0, 1.0, 0.5]

    seen, offset = [], None
    while True:
        page, offset = client.scroll("c", limit=7, offset=offset, with_payload=False)
        seen += [p.id for p in page]
        assert all(p.payload is None for p in page)
        if offset is None:
            break
    assert seen == list(range(25))

    client.delete("c", points_selector=models.PointIdsList(points=[0, 1, 2]), wait=True)
    assert client.count("c").count == 22
    assert client.retrieve("c", ids=[0, 1, 2]) == []

    for r in [node.post("/collections/c/points/scroll", json={"limit": 2, "with_vector": True}),
              node.post("/collections/c/points", json={"ids": [5], "with_vector": True}),
              node.get("/collections/c/points/5"),
              node.post("/collections/c/points/count", json={}),
              node.put("/collections/c/points?wait=true", json={"points": [{"id": 5, "vector": [1, 2, 3]}]}),
              node.post("/collections/c/points/delete?wait=true", json={"points": [5]})]:
        openapi.validate(r)
        assert r.status_code == 200, r.text


@pytest.mark.qdrant_client
def test_batch_format_and_named_vectors(client):
    make(client, vectors={"image": models.VectorParams(size=2, distance=models.Distance.EUCLID),
                          "text": models.VectorParams(size=3, distance=models.Distance.DOT)})
    client.upsert("c", wait=True, points=models.Batch(
        ids=[1, 2, 3], vectors={"image": [[1, 2], [3, 4], [5, 6]], "text": [[1, 1, 1], [2, 2, 2], [3, 3, 3]]},
        payloads=[{"n": 1}, {}, {"n": 3}]))
    client.upsert("c", wait=True, points=[models.PointStruct(id=4, vector={"image": [7, 8]}, payload={"only": "image"})])
    points = {p.id: p for p in client.retrieve("c", ids=[1, 2, 3, 4], with_vectors=True)}
    assert points[1].vector == {"image": [1.0, 2.0], "text": [1.0, 1.0, 1.0]}
    assert points[2].payload == {}
    assert points[4].vector == {"image": [7.0, 8.0]}
    only_text = client.retrieve("c", ids=[1], with_vectors=["text"])[0]
    assert only_text.vector == {"text": [1.0, 1.0, 1.0]}


@pytest.mark.qdrant_client
def test_uuid_ids_and_order(client):
    make(client)
    ids = [str(uuid.UUID(int=i * 7919)) for i in range(1, 6)]
    client.upsert("c", wait=True, points=[models.PointStruct(id=u, vector=[1, 2, 3]) for u in ids]
                  + [models.PointStruct(id=n, vector=[1, 2, 3]) for n in (10, 2)])
    page, _ = client.scroll("c", limit=100)
    assert [p.id for p in page] == [2, 10] + sorted(ids)
    assert client.retrieve("c", ids=[ids[0].upper().replace("-", "")])[0].id == ids[0]


@pytest.mark.qdrant_client
def test_cosine_vectors_are_normalised(client):
    make(client, vectors=models.VectorParams(size=2, distance=models.Distance.COSINE))
    client.upsert("c", wait=True, points=[models.PointStruct(id=1, vector=[3, 4])])
    assert client.retrieve("c", ids=[1], with_vectors=True)[0].vector == pytest.approx([0.6, 0.8])


@pytest.mark.qdrant_client
def test_upsert_replaces_whole_point(client):
    make(client)
    client.upsert("c", wait=True, points=[models.PointStruct(id=1, vector=[1, 1, 1], payload={"a": 1})])
    client.upsert("c", wait=True, points=[models.PointStruct(id=1, vector=[2, 2, 2], payload={"b": 2})])
    p = client.retrieve("c", ids=[1], with_vectors=True)[0]
    assert (p.vector, p.payload) == ([2.0, 2.0, 2.0], {"b": 2})
    assert client.count("c").count == 1


@pytest.mark.qdrant_client
def test_wait_false_is_acknowledged_and_visible(client):
    make(client)
    result = client.upsert("c", wait=False, points=[models.PointStruct(id=1, vector=[1, 2, 3])])
    assert result.status == models.UpdateStatus.ACKNOWLEDGED
    assert client.count("c").count == 1


def test_payload_numbers_round_trip_exactly(node):
    node.put("/collections/c", json={"vectors": {"size": 1, "distance": "Dot"}})
    body = '{"points":[{"id":1,"vector":[1],"payload":{"int":1,"float":1.0,"big":12345678901234567890,"s":"\\u00e9","n":null,"a":[1,2.5,{"x":[]}]}}]}'
    assert node.put("/collections/c/points?wait=true", data=body).status_code == 200
    text = node.get("/collections/c/points/1").text
    assert '"payload":{"int":1,"float":1.0,"big":12345678901234567890,"s":"é","n":null,"a":[1,2.5,{"x":[]}]}' in text


@pytest.mark.parametrize("body, status, fragment", [
    ({"points": [{"id": 1, "vector": [1, 2]}]}, 400, "Vector dimension error: expected dim: 3, got 2"),
    ({"points": [{"id": 1, "vector": {"nope": [1, 2, 3]}}]}, 400, "Not existing vector name error: nope"),
    ({"points": [{"id": -1, "vector": [1, 2, 3]}]}, 400, "points[0].id"),
    ({"points": [{"id": "not-a-uuid", "vector": [1, 2, 3]}]}, 400, "Unable to parse UUID: not-a-uuid"),
    ({"points": [{"id": 1.5, "vector": [1, 2, 3]}]}, 400, "points[0].id"),
    ({"points": [{"id": 1, "vector": [1, "x", 3]}]}, 400, "points[0].vector[1]"),
    ({"points": [{"id": 1}]}, 400, "missing field `vector`"),
    ({"points": [{"id": 1, "vector": [1e300, 0, 0]}]}, 400, "does not fit a 32-bit float"),
    ({"batch": {"ids": [1, 2], "vectors": [[1, 2, 3]]}}, 400, "has 1 vectors for 2 ids"),
    ({"nothing": []}, 400, "expected `points` or `batch`"),
])
def test_bad_points_are_rejected_and_nothing_is_stored(node, body, status, fragment):
    node.put("/collections/c", json={"vectors": {"size": 3, "distance": "Dot"}})
    r = node.put("/collections/c/points?wait=true", json=body)
    assert r.status_code == status, r.text
    assert fragment in r.json()["status"]["error"]
    assert node.post("/collections/c/points/count", json={}).json()["result"]["count"] == 0


def test_a_bad_point_rejects_the_whole_batch(node):
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    r = node.put("/collections/c/points?wait=true", json={"points": [
        {"id": 1, "vector": [1, 2]}, {"id": 2, "vector": [1, 2, 3]}]})
    assert r.status_code == 400
    assert node.post("/collections/c/points/count", json={}).json()["result"]["count"] == 0


def test_missing_things(node):
    assert node.put("/collections/nope/points", json={"points": []}).status_code == 404
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    r = node.get("/collections/c/points/42")
    assert r.status_code == 404 and r.json()["status"]["error"] == "Not found: No point with id 42 found"
    assert node.put("/collections/c/points?wait=maybe", json={"points": []}).status_code == 400
    assert node.put("/collections/c/points?ordering=chaotic", json={"points": []}).status_code == 400
    assert node.post("/collections/c/points/scroll", json={"limit": 0}).status_code == 422


@pytest.mark.qdrant_client
def test_points_survive_restart_and_collection_info_counts_them(client, node):
    make(client, shard_number=3)
    client.upsert("c", wait=True, points=[models.PointStruct(id=i, vector=[1, 2, 3], payload={"i": i}) for i in range(100)])
    client.delete("c", points_selector=models.PointIdsList(points=list(range(0, 100, 3))), wait=True)
    node.kill()
    node.start()
    assert client.count("c").count == 66
    assert client.get_collection("c").points_count == 66
    assert client.retrieve("c", ids=[4])[0].payload == {"i": 4}


@pytest.mark.qdrant_client
def test_payload_operations(client):
    make(client)
    client.upsert("c", wait=True, points=[
        models.PointStruct(id=i, vector=[1, 2, 3], payload={"keep": i, "drop": "x", "nested": {"list": [{"a": 1, "b": 2}]}})
        for i in range(3)])
    client.set_payload("c", payload={"color": "red"}, points=[0, 1], wait=True)
    client.set_payload("c", payload={"deep": True}, points=[0], key="nested.sub", wait=True)
    client.delete_payload("c", keys=["drop", "nested.list[].b"], points=[0], wait=True)
    client.overwrite_payload("c", payload={"only": 1}, points=[1], wait=True)
    client.clear_payload("c", points_selector=models.PointIdsList(points=[2]), wait=True)
    got = {p.id: p.payload for p in client.retrieve("c", ids=[0, 1, 2])}
    assert got[0] == {"keep": 0, "nested": {"list": [{"a": 1}], "sub": {"deep": True}}, "color": "red"}
    assert got[1] == {"only": 1}
    assert got[2] == {}
    with pytest.raises(UnexpectedResponse) as err:
        client.set_payload("c", payload={"x": 1}, points=[0, 12345], wait=True)
    assert err.value.status_code == 404
    assert "No point with id 12345 found" in err.value.content.decode()
    assert "x" not in client.retrieve("c", ids=[0])[0].payload  # nothing applied


@pytest.mark.qdrant_client
def test_vector_operations(client):
    make(client, vectors={"a": models.VectorParams(size=2, distance=models.Distance.DOT),
                          "b": models.VectorParams(size=2, distance=models.Distance.COSINE)})
    client.upsert("c", wait=True, points=[models.PointStruct(id=1, vector={"a": [1, 2], "b": [3, 4]}, payload={"p": 1})])
    client.update_vectors("c", points=[models.PointVectors(id=1, vector={"a": [9, 9]})], wait=True)
    p = client.retrieve("c", ids=[1], with_vectors=True)[0]
    assert p.vector["a"] == [9.0, 9.0] and p.vector["b"] == pytest.approx([0.6, 0.8]) and p.payload == {"p": 1}
    client.delete_vectors("c", vectors=["b"], points=[1], wait=True)
    assert client.retrieve("c", ids=[1], with_vectors=True)[0].vector == {"a": [9.0, 9.0]}
    with pytest.raises(UnexpectedResponse) as err:
        client.update_vectors("c", points=[models.PointVectors(id=2, vector={"a": [1, 1]})], wait=True)
    assert err.value.status_code == 404
    with pytest.raises(UnexpectedResponse) as err:
        client.update_vectors("c", points=[models.PointVectors(id=1, vector={"a": [1, 1, 1]})], wait=True)
    assert err.value.status_code == 400


@pytest.mark.qdrant_client
def test_batch_of_mixed_operations_applies_in_order(client, node, openapi):
    make(client)
    results = client.batch_update_points("c", wait=True, update_operations=[
        models.UpsertOperation(upsert=models.PointsList(points=[
            models.PointStruct(id=i, vector=[1, 2, 3], payload={"i": i}) for i in range(5)])),
        models.DeleteOperation(delete=models.PointIdsList(points=[4])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"s": 1}, points=[0, 1])),
        models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(payload={"o": 1}, points=[1])),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["i"], points=[2])),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[3])),
        models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=[models.PointVectors(id=0, vector=[7, 7, 7])])),
    ])
    assert len(results) == 7 and all(r.status == models.UpdateStatus.COMPLETED for r in results)
    got = {p.id: (p.payload, p.vector) for p in client.retrieve("c", ids=[0, 1, 2, 3, 4], with_vectors=True)}
    assert got == {0: ({"i": 0, "s": 1}, [7.0, 7.0, 7.0]), 1: ({"o": 1}, [1.0, 2.0, 3.0]),
                   2: ({}, [1.0, 2.0, 3.0]), 3: ({}, [1.0, 2.0, 3.0])}
    r = openapi.validate(node.post("/collections/c/points/batch?wait=true", json={"operations": [
        {"clear_payload": {"points": [0]}}]}))
    assert r.status_code == 200 and r.json()["result"][0]["status"] == "completed"
    assert client.retrieve("c", ids=[0])[0].payload == {}
    r = node.post("/collections/c/points/batch", json={"operations": [{"explode": {}}]})
    assert r.status_code == 400 and "unknown operation `explode`" in r.json()["status"]["error"]


@pytest.mark.qdrant_client
def test_payload_and_vector_changes_survive_kill_9(client, node):
    make(client, shard_number=2)
    client.upsert("c", wait=True, points=[models.PointStruct(id=i, vector=[1, 2, 3], payload={"i": i}) for i in range(10)])
    client.set_payload("c", payload={"tag": "t"}, points=list(range(10)), wait=True)
    client.update_vectors("c", points=[models.PointVectors(id=3, vector=[3, 3, 3])], wait=True)
    client.delete_payload("c", keys=["i"], points=[5], wait=True)
    node.kill()
    node.start()
    got = {p.id: p for p in client.retrieve("c", ids=list(range(10)), with_vectors=True)}
    assert all(got[i].payload["tag"] == "t" for i in range(10))
    assert got[5].payload == {"tag": "t"}
    assert got[3].vector == [3.0, 3.0, 3.0]


@pytest.mark.qdrant_client
def test_datatypes_read_back_as_stored(client):
    make(client, vectors={"half": models.VectorParams(size=2, distance=models.Distance.DOT, datatype=models.Datatype.FLOAT16),
                          "byte": models.VectorParams(size=3, distance=models.Distance.EUCLID, datatype=models.Datatype.UINT8)})
    client.upsert("c", wait=True, points=[models.PointStruct(id=1, vector={"half": [0.1, 65504.0], "byte": [3.7, -5, 300]})])
    v = client.retrieve("c", ids=[1], with_vectors=True)[0].vector
    assert v["half"] == [pytest.approx(0.0999755859375, rel=1e-7), 65504.0]  # nearest float16 values
    assert v["byte"] == [3.0, 0.0, 255.0]  # truncated and saturated, as a cast to u8
    with pytest.raises(UnexpectedResponse) as err:
        client.upsert("c", wait=True, points=[models.PointStruct(id=2, vector={"half": [1.0, 70000.0]})])
    assert err.value.status_code == 400 and "float16" in err.value.content.decode()


@pytest.mark.qdrant_client
def test_with_payload_selectors(client):
    make(client)
    client.upsert("c", wait=True, points=[models.PointStruct(id=1, vector=[1, 2, 3],
                  payload={"a": {"b": 1, "c": 2}, "d": 3, "e": [1, 2]})])
    inc = client.retrieve("c", ids=[1], with_payload=models.PayloadSelectorInclude(include=["a.b", "e"]))[0].payload
    assert inc == {"a": {"b": 1}, "e": [1, 2]}
    exc = client.retrieve("c", ids=[1], with_payload=models.PayloadSelectorExclude(exclude=["a.c", "d"]))[0].payload
    assert exc == {"a": {"b": 1}, "e": [1, 2]}
    assert client.retrieve("c", ids=[1], with_payload=["d"])[0].payload == {"d": 3}
    assert client.retrieve("c", ids=[1], with_payload=False)[0].payload is None


@pytest.mark.qdrant_client
def test_vacuum_runs_in_the_background_and_is_reported(client, node, openapi):
    make(client, optimizers_config=models.OptimizersConfigDiff(deleted_threshold=0.2, vacuum_min_vector_number=100,
                                                               flush_interval_sec=1))
    client.upsert("c", wait=True, points=[models.PointStruct(id=i, vector=[1, 2, 3], payload={"i": i}) for i in range(1000)])
    r = openapi.validate(node.get("/collections/c/optimizations?with=queued,completed,idle_segments"))
    assert r.json()["result"]["running"] == [] and r.json()["result"]["summary"]["idle_segments"] == 1
    client.delete("c", points_selector=models.PointIdsList(points=list(range(700))), wait=True)
    deadline = time.time() + 15
    while time.time() < deadline:
        result = node.get("/collections/c/optimizations?with=completed").json()["result"]
        if result.get("completed"):
            break
        time.sleep(0.2)
    completed = result["completed"]
    assert completed and completed[0]["optimizer"] == "vacuum" and completed[0]["status"] == "done"
    assert completed[0]["segments"][0]["points_count"] == 300
    openapi.validate(node.get("/collections/c/optimizations?with=completed"))
    assert client.get_collection("c").status == models.CollectionStatus.GREEN
    assert client.count("c").count == 300
    assert client.retrieve("c", ids=[999])[0].payload == {"i": 999}
    node.kill()
    node.start()
    assert client.count("c").count == 300
    assert node.get("/collections/c/optimizations?with=bogus").status_code == 400


@pytest.mark.parametrize("path, body", [
    ("/collections/c/points/scroll", []),
    ("/collections/c/points/count", "x"),
    ("/collections/c/points", [1, 2]),
])
def test_read_bodies_must_be_objects(node, path, body):
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    r = node.post(path, json=body)
    assert r.status_code == 400 and "expected a map" in r.json()["status"]["error"]
