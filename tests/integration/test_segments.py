"""Segments and optimizers through the real server: indexing (sealing), merging, vacuum,
memory-mapped storage, and the collection status Qdrant reports for each phase."""

import time

import pytest
from qdrant_client import models


def client_for(node):
    return node.client(timeout=10)


def wait_green(client, name="c", timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = client.get_collection(name)
        if info.status == models.CollectionStatus.GREEN:
            return info
        time.sleep(0.2)
    raise AssertionError(f"collection {name} still {info.status} after {timeout}s")


def vector(i):
    return [float(i), 1.0, 0.5, -1.0, 2.0, 0.0, 3.0, float(i % 7)]


def all_points(client, name="c"):
    points, offset = [], None
    while True:
        page, offset = client.scroll(name, limit=500, offset=offset, with_payload=True, with_vectors=True)
        points += page
        if offset is None:
            return points


@pytest.mark.qdrant_client
def test_indexing_and_merging_keep_every_point(node, openapi):
    client = client_for(node)
    # 10 KB of 8-d float32 vectors is 320 points: thirty batches of 100 seal many segments, and
    # with a budget of 2 segments the optimizer keeps merging them.
    client.create_collection("c", vectors_config=models.VectorParams(size=8, distance=models.Distance.DOT),
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10, default_segment_number=2,
                                                                           flush_interval_sec=1))
    for start in range(0, 3000, 100):
        client.upsert("c", wait=True, points=[models.PointStruct(id=i, vector=vector(i), payload={"i": i, "f": 1.0})
                                              for i in range(start, start + 100)])
    info = wait_green(client)
    assert info.points_count == 3000
    assert 1 <= info.segments_count <= 2
    report = openapi.validate(node.get("/collections/c/optimizations?with=completed,idle_segments")).json()["result"]
    optimizers = {o["optimizer"] for o in report["completed"]}
    assert "indexing" in optimizers, report["completed"]
    assert all(o["status"] == "done" for o in report["completed"])
    assert report["summary"]["idle_segments"] == info.segments_count
    assert sum(s["points_count"] for s in report["idle_segments"]) == 3000
    segment_dirs = list(node.workdir.glob("storage/collections/c/0/segments/*"))
    assert len(segment_dirs) == info.segments_count

    # Points now in immutable segments are changed by moving them (copy-on-write).
    client.set_payload("c", payload={"x": True}, points=[5, 6], wait=True)
    client.update_vectors("c", points=[models.PointVectors(id=7, vector=vector(70))], wait=True)
    client.delete("c", points_selector=models.PointIdsList(points=[8]), wait=True)
    expected = {i: ({"i": i, "f": 1.0}, vector(i)) for i in range(3000) if i != 8}
    expected[5] = ({"i": 5, "f": 1.0, "x": True}, vector(5))
    expected[6] = ({"i": 6, "f": 1.0, "x": True}, vector(6))
    expected[7] = ({"i": 7, "f": 1.0}, vector(70))

    def check():
        points = all_points(client)
        assert len(points) == len(expected) == client.count("c").count
        for p in points:
            assert (p.payload, p.vector) == expected[p.id], p.id

    check()
    node.kill()
    node.start()
    check()
    assert client.get_collection("c").status == models.CollectionStatus.GREEN


@pytest.mark.qdrant_client
def test_on_disk_storage_is_memory_mapped(node):
    client = client_for(node)
    client.create_collection("c", vectors_config=models.VectorParams(size=8, distance=models.Distance.DOT, on_disk=True),
                             on_disk_payload=True,
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10, default_segment_number=1))
    client.upsert("c", wait=True, points=[models.PointStruct(id=i, vector=vector(i), payload={"i": i}) for i in range(1000)])
    wait_green(client)

    def mapped():
        maps = open(f"/proc/{node.proc.pid}/maps").read()
        return {line.rsplit("/", 1)[1] for line in maps.splitlines() if "/segments/" in line}

    assert {"vectors-0.bin", "payload.bin", "payload-index.bin"} <= mapped()
    got = client.retrieve("c", ids=[999], with_vectors=True)[0]
    assert (got.payload, got.vector) == ({"i": 999}, vector(999))
    # Moving vectors to RAM reopens the segment without rewriting it; payloads stay mapped.
    client.update_collection("c", vectors_config={"": models.VectorParamsDiff(on_disk=False)})
    deadline = time.time() + 10
    while "vectors-0.bin" in mapped() and time.time() < deadline:
        time.sleep(0.2)
    assert "vectors-0.bin" not in mapped() and "payload.bin" in mapped()
    got = client.retrieve("c", ids=[999], with_vectors=True)[0]
    assert (got.payload, got.vector) == ({"i": 999}, vector(999))


@pytest.mark.qdrant_client
def test_status_is_grey_while_optimizations_are_disabled(node):
    client = client_for(node)
    client.create_collection("c", vectors_config=models.VectorParams(size=8, distance=models.Distance.DOT),
                             optimizers_config=models.OptimizersConfigDiff(deleted_threshold=0.2, vacuum_min_vector_number=100,
                                                                           max_optimization_threads=0))
    client.upsert("c", wait=True, points=[models.PointStruct(id=i, vector=vector(i)) for i in range(1000)])
    client.delete("c", points_selector=models.PointIdsList(points=list(range(500))), wait=True)
    time.sleep(1.5)
    assert client.get_collection("c").status == models.CollectionStatus.GREY
    queued = node.get("/collections/c/optimizations?with=queued").json()["result"]["queued"]
    assert [q["optimizer"] for q in queued] == ["vacuum"]
    client.update_collection("c", optimizers_config=models.OptimizersConfigDiff(max_optimization_threads=1))
    info = wait_green(client)
    assert info.points_count == 500
