"""A full disk: the node's storage (and snapshots) sit on a small tmpfs the test mounts, filled
through the API with `wait=true` upserts whose acknowledged ids are kept in a ledger. Reads keep
working, writes get Qdrant's 507 (`Insufficient storage`) before the disk is actually full, deletes
still go through, snapshots are refused up front, a node killed with SIGKILL comes back read-only
and serves every acknowledged point, and freeing space (removing a ballast file the test placed)
turns writes back on without a restart. Skipped, saying why, where mounting is not allowed.
"""

import os
import random
import signal
import threading
import time

import grpc
import pytest
import requests
from qdrant_client import QdrantClient, models

from conftest import Node

DIM = 256
SIZE_MB = 48
RESERVE_MB = 6
BALLAST_MB = 8


@pytest.fixture
def small_disk(mount_disk):
    return mount_disk(SIZE_MB)


def start_node(workdir, disk):
    node = Node(workdir, env={"QDRANT__STORAGE__STORAGE_PATH": str(disk / "storage"),
                              "QDRANT__STORAGE__SNAPSHOTS_PATH": str(disk / "snapshots"),
                              "QDRANT__STORAGE__DISK_RESERVE_MB": str(RESERVE_MB)})
    return node.start()


def batch(rng, start, count=100):
    return [{"id": i, "vector": [rng.random() for _ in range(DIM)], "payload": {"n": i}} for i in range(start, start + count)]


def fill(node, rng, ledger, start):
    """Upserts batches until one is refused three times in a row, a second and a half apart (an
    optimization under way holds the space it will write, so writes can be refused while it runs
    and taken again after); returns the refusal. Acknowledged ids go to `ledger`."""
    next_id = start
    refusals = 0
    for _ in range(2000):
        points = batch(rng, next_id)
        response = node.put("/collections/c/points?wait=true", json={"points": points}, timeout=60)
        if response.status_code != 200:
            refusals += 1
            if refusals == 3:
                return response
            time.sleep(1.5)
            continue
        refusals = 0
        ledger.update(p["id"] for p in points)
        next_id += len(points)
    raise AssertionError("the disk never filled up")


def check_ledger(node, ledger):
    assert node.post("/collections/c/points/count", json={"exact": True}).json()["result"]["count"] == len(ledger)
    ids = sorted(ledger)
    for start in range(0, len(ids), 1000):
        got = node.post("/collections/c/points", json={"ids": ids[start:start + 1000], "with_payload": True}, timeout=60).json()["result"]
        assert sorted(p["id"] for p in got) == ids[start:start + 1000]
        assert all(p["payload"] == {"n": p["id"]} for p in got)


def leftovers(disk):
    return [str(p) for p in (disk / "storage").rglob("*") if p.name.endswith(".tmp")] + \
           [str(p) for p in disk.rglob("*.partial")]


def fill_to_the_end(ballast):
    """Another program fills the disk to the last byte."""
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass


def wait_writable(node):
    deadline = time.monotonic() + 10
    while node.get("/readyz").text != "all shards are ready":
        assert time.monotonic() < deadline, node.get("/readyz").text
        time.sleep(0.2)


def test_a_full_disk_makes_the_node_read_only_until_space_is_freed(workdir, small_disk):
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (BALLAST_MB << 20))
    node = start_node(workdir, small_disk)
    try:
        # Optimizations (indexing, merging) run while the disk fills.
        node.put("/collections/c", json={"vectors": {"size": DIM, "distance": "Cosine"},
                                         "optimizers_config": {"indexing_threshold": 500, "default_segment_number": 2},
                                         "hnsw_config": {"m": 8, "ef_construct": 32},
                                         "wal_config": {"wal_capacity_mb": 1}}).raise_for_status()
        rng = random.Random(5)
        ledger = set()
        refused = fill(node, rng, ledger, 0)
        assert len(ledger) >= 1000
        assert refused.status_code == 507, refused.text
        error = refused.json()["status"]["error"]
        assert error.startswith("Insufficient storage: The disk holding the storage has ") and "storage.disk_reserve_mb" in error
        assert "retry-after" not in refused.headers  # as Qdrant's

        # gRPC says RESOURCE_EXHAUSTED with Qdrant's marker, qdrant-client over REST sees the 507.
        grpc_client = QdrantClient(url=node.url, grpc_port=node.grpc_port, prefer_grpc=True, timeout=10, check_compatibility=False)
        with pytest.raises(grpc.RpcError) as raised:
            grpc_client.upsert("c", [models.PointStruct(id=999_999, vector=[0.5] * DIM)])
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert ("qdrant-insufficient-storage", "1") in tuple(raised.value.trailing_metadata())
        rest_client = QdrantClient(url=node.url, timeout=10, check_compatibility=False)
        with pytest.raises(Exception) as raised:
            rest_client.upsert("c", [models.PointStruct(id=999_999, vector=[0.5] * DIM)])
        assert "507" in str(raised.value)

        # Reads go on, the reason is everywhere an operator looks, deletes still work.
        check_ledger(node, ledger)
        ready = node.get("/readyz")
        assert ready.status_code == 200 and ready.text.startswith("all shards are ready; writes are refused: The disk")
        info = node.get("/collections/c").json()["result"]
        assert info["status"] == "red" and info["optimizer_status"]["error"].startswith("Insufficient storage: ")
        disk = node.get("/telemetry").json()["result"]["disk"]
        assert disk["read_only"] is True and disk["available_bytes"] < disk["reserve_bytes"] == RESERVE_MB << 20
        gone = sorted(ledger)[:50]
        node.post("/collections/c/points/delete?wait=true", json={"points": gone}).raise_for_status()
        ledger.difference_update(gone)
        assert node.put("/collections/d", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 507
        assert node.put("/collections/c/index?wait=true", json={"field_name": "n", "field_schema": "integer"}).status_code == 507

        # A snapshot is refused before anything is written.
        snapshot = node.post("/collections/c/snapshots?wait=true", timeout=60)
        assert snapshot.status_code == 507 and "The snapshot is refused: it needs " in snapshot.json()["status"]["error"], snapshot.text
        assert node.get("/collections/c/snapshots").json()["result"] == []

        # Killed while full, it starts again (read-only) and serves every acknowledged point.
        node.kill()
        node = start_node(workdir, small_disk)
        assert node.get("/readyz").text.startswith("all shards are ready; writes are refused: ")
        check_ledger(node, ledger)
        assert leftovers(small_disk) == []
        assert node.put("/collections/c/points?wait=true", json={"points": batch(rng, 100_000, 10)}).status_code == 507

        # Room made: writes resume by themselves.
        ballast.unlink()
        wait_writable(node)
        points = batch(rng, 100_000, 100)
        node.put("/collections/c/points?wait=true", json={"points": points}).raise_for_status()
        ledger.update(p["id"] for p in points)
        check_ledger(node, ledger)
        assert node.get("/telemetry").json()["result"]["disk"]["read_only"] is False

        # Filled again to the end, then a clean stop and start: still every acknowledged point.
        refused = fill(node, rng, ledger, 200_000)
        assert refused.status_code == 507, refused.text
        assert node.stop() == 0
        node = start_node(workdir, small_disk)
        check_ledger(node, ledger)
    finally:
        node.kill()


def test_a_snapshot_cut_short_by_a_full_disk_leaves_nothing_half_written(workdir, small_disk):
    node = start_node(workdir, small_disk)
    ballast = small_disk / "ballast"
    try:
        node.put("/collections/c", json={"vectors": {"size": DIM, "distance": "Dot"}, "wal_config": {"wal_capacity_mb": 1}}).raise_for_status()
        rng = random.Random(9)
        ledger = set()
        for start in range(0, 8000, 500):
            points = batch(rng, start, 500)
            node.put("/collections/c/points?wait=true", json={"points": points}, timeout=60).raise_for_status()
            ledger.update(p["id"] for p in points)
        # The snapshot starts with room to spare; meanwhile another program fills the disk.
        outcome = {}
        worker = threading.Thread(target=lambda: outcome.update(r=requests.post(node.url + "/collections/c/snapshots?wait=true", timeout=120)))
        worker.start()
        fill_to_the_end(ballast)
        worker.join()
        response = outcome["r"]
        listed = node.get("/collections/c/snapshots").json()["result"]
        print(f"snapshot while the disk filled: {response.status_code} {response.text[:200]}")
        if response.status_code == 200:
            # It finished before the disk filled: whole, with its checksum.
            assert [s["name"] for s in listed] == [response.json()["result"]["name"]]
        else:
            assert response.status_code == 507 and response.json()["status"]["error"].startswith("Insufficient storage: "), response.text
            assert listed == []
        assert [p for p in small_disk.rglob("*.partial")] == []
        check_ledger(node, ledger)
        ballast.unlink()
        wait_writable(node)
        node.put("/collections/c/points?wait=true", json={"points": batch(rng, 50_000, 10)}).raise_for_status()
    finally:
        node.kill()


def test_a_peer_with_a_full_disk_drops_out_of_writes_and_recovers(make_node, mount_disk):
    """Three peers, one replica of the one shard on each; the third peer's storage is on a small
    disk. Its refusals mark its replica Dead while writes go on (write_consistency_factor 1); once
    it has room, its replica is recovered and holds every acknowledged point."""
    from test_cluster import Cluster, wait_for
    from test_sharding import scroll_all

    small_disk = mount_disk(128)  # a peer's Raft log preallocates 24 MiB
    cluster = Cluster(make_node)
    first = cluster.add()
    second = cluster.add(bootstrap=first)
    small = cluster.add(bootstrap=first, start=False)
    small.extra_env.update({"QDRANT__STORAGE__STORAGE_PATH": str(small_disk / "storage"),
                            "QDRANT__STORAGE__DISK_RESERVE_MB": str(RESERVE_MB)})
    small.start()
    cluster.wait_converged()
    small_id = Cluster.info(small)["peer_id"]
    # Little room beside the reserve: the third replica fills up after a few batches.
    ballast = small_disk / "ballast"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    ballast.write_bytes(b"\0" * (free - ((RESERVE_MB + 4) << 20)))
    first.put("/collections/c", json={"vectors": {"size": DIM, "distance": "Dot"}, "shard_number": 1, "replication_factor": 3,
                                      "write_consistency_factor": 1, "wal_config": {"wal_capacity_mb": 1}}).raise_for_status()
    wait_for(lambda: all(s["state"] == "Active" for s in first.get("/collections/c/cluster").json()["result"]["remote_shards"]),
             message="every replica Active")

    def small_state(node):
        info = node.get("/collections/c/cluster").json()["result"]
        return next(s["state"] for s in info["remote_shards"] if s["peer_id"] == small_id)

    rng = random.Random(3)
    ledger = set()
    for start in range(0, 8000, 500):
        points = batch(rng, start, 500)
        response = first.put("/collections/c/points?wait=true", json={"points": points}, timeout=60)
        assert response.status_code == 200, response.text
        ledger.update(p["id"] for p in points)
    assert small_state(first) == "Dead"
    assert small.get("/readyz").text.startswith("all shards are ready; writes are refused: ")
    for peer in (first, second):
        assert sorted(scroll_all(peer, "c", path="/collections/c/shards/0/points/scroll")) == sorted(ledger)

    ballast.unlink()
    wait_for(lambda: all(small_state(p) == "Active" for p in (first, second)) and
             not first.get("/collections/c/cluster").json()["result"]["shard_transfers"],
             timeout=120, message="the full peer's replica recovered")
    assert sorted(scroll_all(small, "c", path="/collections/c/shards/0/points/scroll")) == sorted(ledger)


def test_an_optimization_cut_short_by_a_full_disk_is_done_again_once_there_is_room(workdir, small_disk):
    node = start_node(workdir, small_disk)
    ballast = small_disk / "ballast"
    try:
        # Loaded with indexing held back, so the optimization starts when the test says.
        node.put("/collections/c", json={"vectors": {"size": DIM, "distance": "Cosine"},
                                         "optimizers_config": {"indexing_threshold": 1_000_000},
                                         "hnsw_config": {"m": 16, "ef_construct": 400},
                                         "wal_config": {"wal_capacity_mb": 1}}).raise_for_status()
        rng = random.Random(13)
        ledger = set()
        for start in range(0, 8000, 500):
            points = batch(rng, start, 500)
            node.put("/collections/c/points?wait=true", json={"points": points}, timeout=60).raise_for_status()
            ledger.update(p["id"] for p in points)
        node.patch("/collections/c", json={"optimizers_config": {"indexing_threshold": 1000}}).raise_for_status()
        deadline = time.monotonic() + 30
        while not node.get("/collections/c/optimizations").json()["result"]["running"]:
            assert time.monotonic() < deadline, "the optimization did not start"
            time.sleep(0.005)
        # Meanwhile another program fills the disk to the last byte.
        fill_to_the_end(ballast)
        deadline = time.monotonic() + 120
        while node.get("/collections/c/optimizations").json()["result"]["running"]:
            assert time.monotonic() < deadline, "the optimization did not end"
            time.sleep(0.2)
        info = node.get("/collections/c").json()["result"]
        print(f"after the disk filled: status {info['status']}, optimizer {info['optimizer_status']}, {info['segments_count']} segments")
        # It was cut short (the graph of 8,000 points takes seconds; filling the disk milliseconds).
        completed = node.get("/collections/c/optimizations?with=completed").json()["result"]["completed"]
        assert any(isinstance(o["status"], dict) and "No space left on device" in o["status"]["error"] for o in completed), completed
        # Red, with the failure or (once the free space is read) the refusal that follows it.
        error = info["optimizer_status"]["error"]
        assert info["status"] == "red" and ("No space left on device" in error or error.startswith("Insufficient storage: ")), info
        check_ledger(node, ledger)
        assert node.post("/collections/c/points/query", json={"query": [0.5] * DIM, "limit": 5}).status_code == 200

        # Killed on the full disk: it starts (read-only), nothing half-written is read, nothing is lost.
        node.kill()
        node = start_node(workdir, small_disk)
        check_ledger(node, ledger)
        assert leftovers(small_disk) == []
        # Room made: writes resume and the optimization is done, without a restart.
        ballast.unlink()
        wait_writable(node)
        points = batch(rng, 20_000, 100)
        node.put("/collections/c/points?wait=true", json={"points": points}).raise_for_status()
        ledger.update(p["id"] for p in points)
        deadline = time.monotonic() + 120
        while (info := node.get("/collections/c").json()["result"])["status"] != "green":
            assert time.monotonic() < deadline, info
            time.sleep(0.5)
        assert info["indexed_vectors_count"] >= 8000, info
        check_ledger(node, ledger)
    finally:
        node.kill()
