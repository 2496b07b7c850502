"""Node-wide quotas (`GET`/`PUT /quotas`): the configuration's shape and validation, its
persistence (a single node's `quota.json`, a cluster's catalogue), and its enforcement against the
real resources: disk usage on a tmpfs the test fills with a ballast file, and resident memory under
a memory cgroup the test creates (both skipped, saying why, where that is not allowed). Updates that
add data get Qdrant's 507 while a resource is at its limit and until it falls the release margin
below; deletes always pass. Strict mode's per-collection `max_resident_memory_percent` is a 400.
Also: the per-request memory limit, and `on_disk` vectors and payloads outgrowing the memory of a
cgroup.
"""

import json
import os
import uuid
from pathlib import Path

import grpc
import pytest
from qdrant_client import QdrantClient, models

from conftest import Node
from test_cluster import Cluster, wait_for

POINTS = [{"id": i, "vector": [0.1 * i, 1.0, 0.5, 0.2], "payload": {"n": i}} for i in range(1, 11)]


def create(node, name="c", **extra):
    response = node.put(f"/collections/{name}", json={"vectors": {"size": 4, "distance": "Dot"}, **extra})
    assert response.status_code == 200, response.text
    assert node.put(f"/collections/{name}/points?wait=true", json={"points": POINTS}).status_code == 200


def upsert(node, ids, name="c"):
    return node.put(f"/collections/{name}/points?wait=true",
                    json={"points": [{"id": i, "vector": [1.0, 0.0, 0.0, float(i)]} for i in ids]})


def quotas(node):
    response = node.get("/quotas")
    assert response.status_code == 200, response.text
    return response.json()["result"]


def set_quotas(node, config):
    response = node.put("/quotas?wait=true", json=config)
    assert response.status_code == 200, response.text
    assert response.json()["result"] is True


def test_quota_configuration_is_validated_kept_and_reported(node, openapi):
    status = quotas(node)
    openapi.validate(node.get("/quotas"))
    assert status["config"] == {"enabled": False}
    assert "peers" not in status
    assert 0 <= status["usage"]["disk_usage_percent"] <= 100
    assert 0 <= status["usage"]["resident_memory_percent"] <= 100

    # Out of range: Qdrant's 422 naming each field; out of a byte: a 400 format error.
    response = openapi.validate(node.put("/quotas", json={"enabled": True, "max_disk_usage_percent": 0, "release_margin_percent": 101}))
    assert response.status_code == 422
    assert response.json()["status"]["error"] == ("Validation error in JSON body: [max_disk_usage_percent: value 0 invalid, must be from 1 to 100; "
                                                  "release_margin_percent: value 101 invalid, must be 100 or smaller]")
    response = openapi.validate(node.put("/quotas", json={"max_resident_memory_percent": 300}))
    assert response.status_code == 400
    assert response.json()["status"]["error"].startswith("Format error in JSON body: max_resident_memory_percent")
    assert quotas(node)["config"] == {"enabled": False}

    # A body replaces the whole configuration; fields Qdrant does not know are ignored.
    set_quotas(node, {"enabled": True, "max_disk_usage_percent": 100, "release_margin_percent": 0, "other": 1})
    config = {"enabled": True, "max_resident_memory_percent": 100, "max_disk_usage_percent": 100}
    openapi.validate(node.put("/quotas", json=config))
    assert quotas(node)["config"] == config

    telemetry = node.get("/telemetry").json()["result"]
    assert telemetry["quota"] == {"config": config, "exceeded": {"resident_memory": False, "disk_usage": False}}
    metrics = node.get("/metrics").text
    assert 'quota_exceeded{resource="memory"} 0' in metrics and 'quota_exceeded{resource="disk"} 0' in metrics

    create(node)
    assert upsert(node, [100]).status_code == 200

    # Kept across a crash.
    node.restart()
    assert quotas(node)["config"] == config
    assert (node.workdir / "storage" / "quota.json").exists()
    set_quotas(node, {"enabled": False})
    assert "quota_exceeded" not in node.get("/metrics").text
    assert node.get("/telemetry").json()["result"]["quota"]["exceeded"] == {"resident_memory": None, "disk_usage": None}


def test_a_disk_quota_refuses_updates_until_usage_falls_a_margin_below(workdir, mount_disk, openapi):
    disk = mount_disk(64)
    node = Node(workdir, env={"QDRANT__STORAGE__STORAGE_PATH": str(disk / "storage"),
                              "QDRANT__STORAGE__SNAPSHOTS_PATH": str(disk / "snapshots"),
                              "QDRANT__STORAGE__DISK_RESERVE_MB": "0"}).start()
    try:
        create(node, wal_config={"wal_capacity_mb": 1})
        capacity = os.statvfs(disk).f_blocks * os.statvfs(disk).f_frsize
        ballast = disk / "ballast"

        def fill_to(percent):
            """Makes the disk `percent`% used (half a point above, as usage rounds down)."""
            stat = os.statvfs(disk)
            used = capacity - stat.f_bavail * stat.f_frsize
            current = ballast.stat().st_size if ballast.exists() else 0
            size = current + int(capacity * (percent + 0.5) / 100) - used
            with open(ballast, "wb") as f:
                f.write(b"\0" * max(size, 0))
            assert quotas(node)["usage"]["disk_usage_percent"] == percent

        fill_to(30)
        set_quotas(node, {"enabled": True, "max_disk_usage_percent": 50})
        assert upsert(node, [11]).status_code == 200

        fill_to(57)
        refused = openapi.validate(upsert(node, [12]))
        assert refused.status_code == 507
        assert refused.json()["status"]["error"].startswith(
            "Insufficient storage: Disk usage is at 57% of total capacity, exceeding the configured limit of 50%. Help: ")
        for path, body in [("/collections/c/points/payload?wait=true", {"payload": {"x": 1}, "points": [1]}),
                           ("/collections/c/points/vectors/delete?wait=true", {"points": [1], "vector": [""]})]:
            assert node.post(path, json=body).status_code == 507, path
        assert node.put("/collections/c/index?wait=true", json={"field_name": "n", "field_schema": "integer"}).status_code == 507
        # gRPC: RESOURCE_EXHAUSTED, told from a rate limit by its trailer.
        client = QdrantClient(url=node.url, grpc_port=node.grpc_port, prefer_grpc=True, check_compatibility=False)
        with pytest.raises(Exception) as raised:
            client.upsert("c", [models.PointStruct(id=13, vector=[1, 0, 0, 0])])
        error = raised.value
        assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert ("qdrant-insufficient-storage", "1") in (error.trailing_metadata() or ())
        # Reads and deletes go on.
        assert len(node.post("/collections/c/points/scroll", json={"limit": 100}).json()["result"]["points"]) == 11
        assert node.post("/collections/c/points/delete?wait=true", json={"points": [10]}).status_code == 200
        status = quotas(node)
        assert status["usage"]["disk_usage_percent"] == 57
        assert node.get("/telemetry").json()["result"]["quota"]["exceeded"]["disk_usage"] is True
        assert 'quota_exceeded{resource="disk"} 1' in node.get("/metrics").text

        # Back under the limit but within the margin (5 points by default): still refused.
        fill_to(47)
        refused = upsert(node, [12])
        assert refused.status_code == 507
        assert "is at 47% of total capacity. It reached the configured limit of 50% and must fall below 45%" in refused.json()["status"]["error"]
        fill_to(41)
        assert upsert(node, [12]).status_code == 200
        assert node.get("/telemetry").json()["result"]["quota"]["exceeded"]["disk_usage"] is False

        # Over the limit again, then the limit is raised: taken at once, without a restart.
        fill_to(60)
        assert upsert(node, [14]).status_code == 507
        set_quotas(node, {"enabled": True, "max_disk_usage_percent": 90})
        assert upsert(node, [14]).status_code == 200
        count = node.post("/collections/c/points/count", json={"exact": True}).json()["result"]["count"]
        assert count == 12  # 1..9, 11, 12, 14
    finally:
        node.kill()


def memory_cgroup(limit_bytes):
    """A new memory cgroup (v2 or v1) limited to `limit_bytes`: its `cgroup.procs` path and a
    remover; skips the test where cgroups cannot be created."""
    name = f"quiver-test-{uuid.uuid4().hex[:8]}"
    candidates = [(Path("/sys/fs/cgroup"), "memory.max"), (Path("/sys/fs/cgroup/unified"), "memory.max"),
                  (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes")]
    for root, limit_file in candidates:
        if not (root / "cgroup.procs").exists() or not (root / limit_file).exists() and limit_file == "memory.limit_in_bytes":
            continue
        if limit_file == "memory.max" and "memory" not in (root / "cgroup.controllers").read_text(errors="replace").split():
            continue
        path = root / name
        try:
            path.mkdir()
            (path / limit_file).write_text(str(limit_bytes))
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            continue
        return path / "cgroup.procs", lambda: path.rmdir()
    pytest.skip("cannot create a memory cgroup here (needs root and a writable cgroup file system)")


def node_in(procs, node):
    """`node`, made to join the cgroup of `procs` every time it starts, before the binary runs (so
    the limits it reads at start are the cgroup's)."""
    node.preexec = lambda: procs.write_text(str(os.getpid()))
    return node


def test_memory_limits_under_a_cgroup(workdir):
    procs, remove = memory_cgroup(256 << 20)
    node = node_in(procs, Node(workdir))
    try:
        node.start()
        create(node)
        used = quotas(node)["usage"]["resident_memory_percent"]
        assert used is not None and used >= 1, "the idle process holds some of its 256 MiB"

        # Strict mode's per-collection limit: a 400, no margin, deletes pass.
        create(node, "strict", strict_mode_config={"enabled": True, "max_resident_memory_percent": 100})
        assert node.patch("/collections/strict", json={"strict_mode_config": {"max_resident_memory_percent": 1}}).status_code == 200
        refused = upsert(node, [20], name="strict")
        assert refused.status_code == 400
        assert refused.json()["status"]["error"].startswith("Bad request: Resident memory usage is at ")
        assert "exceeding the configured limit of 1%" in refused.json()["status"]["error"]
        assert node.post("/collections/strict/points/delete?wait=true", json={"points": [1]}).status_code == 200
        assert upsert(node, [20]).status_code == 200  # the other collection has no such limit

        # The node-wide quota: a 507 for every collection.
        set_quotas(node, {"enabled": True, "max_resident_memory_percent": 1})
        refused = upsert(node, [21])
        assert refused.status_code == 507
        assert refused.json()["status"]["error"].startswith("Insufficient storage: Resident memory usage is at ")
        assert node.get("/telemetry").json()["result"]["quota"]["exceeded"] == {"resident_memory": True, "disk_usage": None}
        assert node.post("/collections/c/points/delete?wait=true", json={"points": [2]}).status_code == 200
        set_quotas(node, {"enabled": True, "max_resident_memory_percent": 95})
        assert upsert(node, [21]).status_code == 200
    finally:
        node.kill()
        wait_for(lambda: not procs.read_text().strip(), timeout=10, message="the cgroup emptied")
        remove()


def test_a_clusters_quota_goes_through_consensus_and_every_peer_reports(make_node, openapi):
    cluster = Cluster(make_node)
    first, second, third = cluster.start(3)
    response = second.put("/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3, "replication_factor": 2})
    assert response.status_code == 200, response.text
    assert upsert(first, range(1, 31)).status_code == 200

    set_quotas(second, {"enabled": True, "max_disk_usage_percent": 100, "release_margin_percent": 0})
    status = quotas(third)
    openapi.validate(third.get("/quotas"))
    assert status["config"] == {"enabled": True, "max_disk_usage_percent": 100, "release_margin_percent": 0}
    ids = {str(cluster.info(p)["peer_id"]) for p in (first, second, third)}
    assert set(status["peers"]) == ids
    for usage in status["peers"].values():
        assert usage["exceeded"] is False and 0 <= usage["disk_usage_percent"] <= 100

    # A limit every peer's disk is over: writes are refused whichever peer takes them.
    assert status["usage"]["disk_usage_percent"] >= 1, "the test needs a disk that is not empty"
    set_quotas(first, {"enabled": True, "max_disk_usage_percent": 1})
    wait_for(lambda: all(quotas(p)["config"]["max_disk_usage_percent"] == 1 for p in (first, second, third)),
             message="every peer applied the quota")
    for peer in (first, second, third):
        refused = upsert(peer, [40])
        assert refused.status_code == 507, refused.text
        assert "Disk usage is at" in refused.json()["status"]["error"]
    assert first.post("/collections/c/points/delete?wait=true", json={"points": [1]}).status_code == 200

    # Kept in the catalogue: a peer killed and started again enforces it still.
    set_quotas(third, {"enabled": True, "max_resident_memory_percent": 99})
    third.restart()
    wait_for(lambda: quotas(third)["config"] == {"enabled": True, "max_resident_memory_percent": 99}, message="the quota after a restart")
    assert quotas(third)["peers"][str(cluster.info(third)["peer_id"])]["exceeded"] is False
    assert upsert(third, [40]).status_code == 200
    # A peer that does not answer is left out of the map.
    first.kill()
    status = quotas(second)
    assert str(cluster.info(second)["peer_id"]) in status["peers"] and len(status["peers"]) == 2


def test_a_read_whose_results_would_not_fit_in_memory_is_refused_before_it_runs(make_node):
    node = make_node(env={"QDRANT__SERVICE__MAX_REQUEST_MEMORY_MB": "1"})
    assert node.put("/collections/v", json={"vectors": {"size": 256, "distance": "Dot"}}).status_code == 200
    for start in range(0, 2000, 500):
        points = [{"id": i, "vector": [float(i % 7)] * 256, "payload": {"g": i % 50}} for i in range(start, start + 500)]
        assert node.put("/collections/v/points?wait=true", json={"points": points}).status_code == 200

    def refused(response, what):
        assert response.status_code == 400, response.text
        error = response.json()["status"]["error"]
        assert error.startswith(f"Bad request: The results of this {what} would need about "), error
        assert "more than the 1.0 MiB one request may use (service.max_request_memory_mb)" in error

    # Limits far above the collection's size are capped by it: 2,000 ids and scores fit.
    assert node.post("/collections/v/points/query", json={"query": [1.0] * 256, "limit": 10**9}).status_code == 200
    assert len(node.post("/collections/v/points/scroll", json={"limit": 10**9}).json()["result"]["points"]) == 2000
    # Their vectors do not, nor do many queries at once, nor a matrix of every pair.
    refused(node.post("/collections/v/points/scroll", json={"limit": 10**9, "with_vector": True}), "scroll")
    refused(node.post("/collections/v/points", json={"ids": list(range(2000)), "with_vector": True}), "retrieve")
    assert len(node.post("/collections/v/points", json={"ids": list(range(2000))}).json()["result"]) == 2000
    refused(node.post("/collections/v/points/query", json={"query": [1.0] * 256, "limit": 2000, "with_vector": True}), "query")
    refused(node.post("/collections/v/points/query/batch", json={"searches": [{"query": [1.0] * 256, "limit": 1000}] * 20}),
            "batch of 20 queries")
    refused(node.post("/collections/v/points/search/matrix/pairs", json={"sample": 2000, "limit": 2000}), "distance matrix")
    refused(node.post("/collections/v/points/query/groups", json={"query": [1.0] * 256, "group_by": "g", "limit": 50,
                                                                  "group_size": 40, "with_vector": True}), "query of groups")
    assert node.post("/collections/v/points/query/groups", json={"query": [1.0] * 256, "group_by": "g", "limit": 5,
                                                                 "group_size": 3, "with_vector": True}).status_code == 200
    # Payloads count as well: 100 points of 20 kB each are more than 1 MiB with their payloads.
    assert node.put("/collections/p", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
    points = [{"id": i, "vector": [1.0, 0.0, 0.0, float(i)], "payload": {"text": f"{i:05d}" * 4000}} for i in range(100)]
    assert node.put("/collections/p/points?wait=true", json={"points": points}).status_code == 200
    refused(node.post("/collections/p/points/scroll", json={"limit": 100}), "scroll")
    refused(node.post("/collections/p/points", json={"ids": list(range(100))}), "retrieve")
    refused(node.post("/collections/p/points/query", json={"query": [1.0] * 4, "limit": 100, "with_payload": True}), "query")
    assert len(node.post("/collections/p/points/scroll", json={"limit": 100, "with_payload": False}).json()["result"]["points"]) == 100
    assert len(node.post("/collections/p/points/query", json={"query": [1.0] * 4, "limit": 100}).json()["result"]["points"]) == 100
    page = node.post("/collections/p/points/scroll", json={"limit": 10}).json()["result"]["points"]
    assert len(page) == 10 and all(len(point["payload"]["text"]) == 20000 for point in page)
    # The same over gRPC: INVALID_ARGUMENT with the reason.
    client = QdrantClient(url=node.url, grpc_port=node.grpc_port, prefer_grpc=True, check_compatibility=False)
    with pytest.raises(grpc.RpcError) as raised:
        client.query_batch_points("v", [models.QueryRequest(query=[1.0] * 256, limit=1000)] * 20)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "service.max_request_memory_mb" in raised.value.details()
    assert len(client.query_batch_points("v", [models.QueryRequest(query=[1.0] * 256, limit=10)] * 20)) == 20


def grow_past_a_cgroup(workdir, what, create, bodies, check_served, check_segments):
    """Runs a node in a 128 MiB memory cgroup, creates collection `big` with `create`, and upserts
    each of `bodies` (encoded JSON) with `wait=true`, `what` being twice the limit. The node must not
    be killed and its anonymous memory must stay under half the limit; then `check_served(node)`
    must pass before and after a kill -9 and a restart, and `check_segments` on the segments that
    telemetry reports."""
    limit = 128 << 20
    procs, remove = memory_cgroup(limit)
    node = node_in(procs, Node(workdir, env={"SWIFT_BACKTRACE": "enable=no"}))

    def anonymous():
        for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
        return 0

    try:
        node.start()
        response = node.put("/collections/big", json=create)
        assert response.status_code == 200, response.text
        peak = 0
        for body in bodies:
            response = node.put("/collections/big/points?wait=true", data=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 200, response.text
            peak = max(peak, anonymous())
        assert node.proc.poll() is None
        print(f"{2 * limit >> 20} MiB of {what} taken with at most {peak >> 20} MiB of anonymous memory")
        assert peak < limit // 2, f"anonymous memory reached {peak >> 20} MiB for {2 * limit >> 20} MiB of {what}"
        check_served(node)
        telemetry = node.get("/telemetry?details_level=4").json()["result"]
        segments = telemetry["collections"]["collections"][0]["shards"][0]["local"]["segments"]
        check_segments(segments, limit)
        node.kill()
        node.start()
        check_served(node)
        assert anonymous() < limit // 2
    finally:
        node.kill()
        wait_for(lambda: not procs.read_text().strip(), timeout=10, message="the cgroup emptied")
        remove()


def test_on_disk_vectors_outgrow_the_memory_the_node_is_given(workdir):
    """A write segment of `on_disk` vectors keeps them in file-backed memory the kernel can drop:
    twice the cgroup's limit of vectors goes into one segment (indexing off, so nothing is sealed)
    without the node being killed, every point is served, and so it is after a kill -9 and a
    restart, which reads them all back into that memory."""
    dim, batch, total = 1024, 256, 2 * (128 << 20) // (1024 * 4)
    variants = [[round(((i * 7 + j * 3) % 17) / 16, 4) for j in range(dim)] for i in range(8)]
    texts = [str(v).replace(" ", "") for v in variants]
    bodies = ('{"points":[' + ",".join(f'{{"id":{i},"vector":{texts[i % 8]}}}' for i in range(first, first + batch)) + "]}"
              for first in range(0, total, batch))

    def check_served(node):
        assert node.post("/collections/big/points/count", json={"exact": True}).json()["result"]["count"] == total
        ids = [0, 1, 4097, total - 1]
        got = node.post("/collections/big/points", json={"ids": ids, "with_vector": True}).json()["result"]
        assert {p["id"]: p["vector"] for p in got} == {i: variants[i % 8] for i in ids}
        hits = node.post("/collections/big/points/query", json={"query": variants[3], "limit": 3}).json()["result"]["points"]
        assert len(hits) == 3 and all(h["id"] % 8 == 3 for h in hits)

    def check_segments(segments, limit):
        writing = [s for s in segments if s["info"]["is_appendable"]]
        assert writing and all(s["config"]["vector_data"][""]["storage_type"] == "ChunkedMmap" for s in writing)
        assert sum(s["info"]["ram_usage_bytes"] for s in writing) < limit // 2

    grow_past_a_cgroup(workdir, "vectors", {"vectors": {"size": dim, "distance": "Euclid", "on_disk": True},
                                            "optimizers_config": {"indexing_threshold": 0, "max_segment_size": 1_000_000}},
                       bodies, check_served, check_segments)


def test_on_disk_payloads_outgrow_the_memory_the_node_is_given(workdir):
    """The same for payloads (`on_disk_payload`, true by default): twice the cgroup's limit of
    16 kB payloads on 4-d vectors, which never fill a segment enough to seal it, all in one write
    segment; the node is not killed, and every payload is served and filtered on, before and after
    a kill -9 and a restart."""
    size, batch = 16 << 10, 64
    total = 2 * (128 << 20) // size
    filler = "".join(chr(ord("a") + i % 26) for i in range(size - 40))

    def payload(i):
        return {"k": i % 8, "text": f"{i:08d}{filler}"}

    bodies = (json.dumps({"points": [{"id": i, "vector": [1.0, 0.0, float(i % 5), 0.5], "payload": payload(i)}
                                     for i in range(first, first + batch)]}) for first in range(0, total, batch))

    def check_served(node):
        assert node.post("/collections/big/points/count", json={"exact": True}).json()["result"]["count"] == total
        ids = [0, 1, 4097, total - 1]
        got = node.post("/collections/big/points", json={"ids": ids}).json()["result"]
        assert {p["id"]: p["payload"] for p in got} == {i: payload(i) for i in ids}
        threes = node.post("/collections/big/points/count", json={"exact": True, "filter": {"must": [{"key": "k", "match": {"value": 3}}]}})
        assert threes.json()["result"]["count"] == total // 8

    def check_segments(segments, limit):
        assert len(segments) == 1 and segments[0]["info"]["is_appendable"]
        assert segments[0]["config"]["payload_storage_type"] == {"type": "mmap"}
        assert segments[0]["info"]["ram_usage_bytes"] < limit // 2

    grow_past_a_cgroup(workdir, "payloads", {"vectors": {"size": 4, "distance": "Dot"}}, bodies, check_served, check_segments)
