"""Service endpoints: /, health probes, /metrics, /telemetry, and the client's version check."""

import importlib.metadata
import resource
import time
import warnings
from pathlib import Path

import pytest
from qdrant_client.common.version_check import get_server_version, is_compatible
from qdrant_client.qdrant_remote import QdrantRemote


def test_root_reports_the_qdrant_api_version(node, openapi):
    r = openapi.validate(node.get("/"))
    assert r.status_code == 200
    assert r.json()["version"] == "1.19.0"
    assert r.json()["title"]


@pytest.mark.qdrant_client
def test_client_connects_without_compatibility_warning(node):
    client_version = importlib.metadata.version("qdrant-client")
    assert client_version.startswith("1.20")
    server_version = get_server_version(node.url, {}, None, 10)
    assert is_compatible(client_version, server_version)
    # The client runs this check on a background thread at construction; run it here, in this
    # thread, so a warning cannot escape the test.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        QdrantRemote._check_compatibility(node.url, {}, None, 10)
    assert [str(w.message) for w in caught] == []
    client = node.client(timeout=10)
    assert client.get_collections().collections == []


def test_health_probes(node, openapi):
    for path, body in [("/healthz", "healthz check passed"), ("/livez", "healthz check passed"),
                       ("/readyz", "all shards are ready")]:
        r = openapi.validate(node.get(path))
        assert (r.status_code, r.text) == (200, body)


def test_metrics_are_prometheus_text(node):
    node.put("/collections/a", json={})
    node.get("/collections/missing")
    text = node.get("/metrics").text
    assert 'app_info{name="quiver",version="1.19.0"} 1' in text
    assert "collections_total 1" in text
    assert 'rest_responses_total{method="PUT",endpoint="/collections/{collection_name}",status="200"} 1' in text
    assert 'rest_responses_total{method="GET",endpoint="/collections/{collection_name}",status="404"} 1' in text
    assert "rest_responses_duration_seconds_count{" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2, line


def test_telemetry_validates(node, openapi):
    node.put("/collections/a", json={"vectors": {"x": {"size": 2, "distance": "Dot"}, "y": {"size": 3, "distance": "Cosine"}}})
    points = [{"id": i, "vector": {"x": [1, i], "y": [i, 1, 0]}, "payload": {"city": f"c{i % 2}"}} for i in range(3)]
    points.append({"id": 3, "vector": {"x": [1, 1]}})
    assert node.put("/collections/a/points?wait=true", json={"points": points}).status_code == 200
    assert node.put("/collections/a/index?wait=true", json={"field_name": "city", "field_schema": "keyword"}).status_code == 200
    node.get("/collections/missing")

    # Level 0: counts only, and the REST responses so far by route pattern and status.
    result = openapi.validate(node.get("/telemetry")).json()["result"]
    assert result["collections"] == {"number_of_collections": 1}
    assert result["cluster"] == {"enabled": False, "resharding_enabled": False}
    assert "features" not in result["app"] and "system" not in result["app"]
    rest = result["requests"]["rest"]["responses"]
    assert rest["PUT /collections/{collection_name}/points"]["200"]["count"] == 1
    assert rest["GET /collections/{collection_name}"]["404"]["count"] == 1
    assert "avg_duration_micros" in rest["PUT /collections/{collection_name}"]["200"]
    assert "min_duration_micros" not in rest["PUT /collections/{collection_name}"]["200"]
    assert result["requests"]["grpc"] == {"responses": {}}

    # Level 1: features, system, one aggregated entry per collection counting its stored vectors.
    result = openapi.validate(node.get("/telemetry?details_level=1")).json()["result"]
    assert result["app"]["features"] == {"debug": False, "service_debug_feature": False, "recovery_mode": False,
                                         "gpu": False, "rocksdb": False, "staging": False}
    assert result["app"]["system"]["cores"] >= 1 and result["app"]["system"]["ram_size"] > 0
    [entry] = result["collections"]["collections"]
    assert entry["vectors"] == 7 and entry["optimizers_status"] == "ok" and set(entry["params"]["vectors"]) == {"x", "y"}
    assert result["collections"]["snapshots"] == []
    stats = result["requests"]["rest"]["responses"]["PUT /collections/{collection_name}/points"]["200"]
    assert stats["min_duration_micros"] <= stats["avg_duration_micros"] <= stats["max_duration_micros"]
    assert stats["total_duration_micros"] >= stats["max_duration_micros"] and stats["last_responded"]
    assert result["cluster"] == {"enabled": False, "resharding_enabled": False}

    # Level 2: named entries with their configuration, no shards yet.
    result = openapi.validate(node.get("/telemetry?details_level=2")).json()["result"]
    [entry] = result["collections"]["collections"]
    assert entry["id"] == "a" and entry["init_time_ms"] >= 0 and "shards" not in entry
    assert set(entry["config"]) >= {"params", "hnsw_config", "optimizer_config", "wal_config", "quantization_config", "uuid"}
    assert entry["config"]["params"]["vectors"]["x"]["size"] == 2
    assert result["collections"]["snapshots"][0]["id"] == "a"

    # Level 3: shards, this peer's replica with its figures and update queue.
    result = openapi.validate(node.get("/telemetry?details_level=3")).json()["result"]
    [entry] = result["collections"]["collections"]
    [shard] = entry["shards"]
    assert shard["id"] == 0 and shard["remote"] == [] and list(shard["replicate_states"].values()) == ["Active"]
    local = shard["local"]
    assert local["variant_name"] == "local shard" and local["status"] == "green"
    assert (local["num_points"], local["num_vectors"], local["num_vectors_by_name"]) == (4, 7, {"x": 4, "y": 3})
    assert local["vectors_size_bytes"] == 4 * 2 * 4 + 3 * 3 * 4 and local["payloads_size_bytes"] > 0
    assert local["update_queue"]["length"] == 0 and local["update_queue"]["op_num"] >= 1
    assert local["optimizations"]["status"] == "ok" and "segments" not in local
    assert entry["transfers"] == [] and entry["resharding"] == []

    # Level 4 (and anything above): the segments, with the payload index.
    for level in [4, 99]:
        result = openapi.validate(node.get(f"/telemetry?details_level={level}")).json()["result"]
        segments = result["collections"]["collections"][0]["shards"][0]["local"]["segments"]
        assert sum(s["info"]["num_points"] for s in segments) == 4
        assert sum(s["info"]["num_vectors"] for s in segments) == 7
        indexed = [s for s in segments if s["info"]["index_schema"]]
        assert indexed and all(s["info"]["index_schema"]["city"]["data_type"] == "keyword" for s in indexed)
        fields = [f for s in segments for f in s["payload_field_indices"]]
        assert sum(f["points_count"] for f in fields) == 3 and all(f["field_name"] == "city" for f in fields)
        assert all(s["config"]["vector_data"]["x"]["index"]["type"] == "plain" for s in segments)
    assert node.get("/telemetry?details_level=-1").status_code == 400


def test_telemetry_reports_optimizations_and_indexed_segments(node, openapi):
    node.put("/collections/o", json={"vectors": {"size": 4, "distance": "Euclid"},
                                     "optimizers_config": {"indexing_threshold": 1, "default_segment_number": 1},
                                     "hnsw_config": {"m": 8, "ef_construct": 16}})
    points = [{"id": i, "vector": [i, i % 7, i % 3, 1]} for i in range(300)]
    assert node.put("/collections/o/points?wait=true", json={"points": points}).status_code == 200
    deadline = time.monotonic() + 60
    while node.get("/collections/o").json()["result"]["status"] != "green":
        assert time.monotonic() < deadline, "the collection never became green"
        time.sleep(0.1)
    local = openapi.validate(node.get("/telemetry?details_level=4")).json()["result"]["collections"]["collections"][0]["shards"][0]["local"]
    assert local["total_optimized_points"] >= 300
    assert local["optimizations"]["optimizations"]["count"] >= 1
    [segment] = local["segments"]
    assert segment["info"]["segment_type"] == "indexed" and segment["info"]["num_indexed_vectors"] == 300
    assert segment["config"]["vector_data"][""]["index"] == {"type": "hnsw", "options": segment["config"]["vector_data"][""]["index"]["options"]}
    assert segment["config"]["vector_data"][""]["index"]["options"]["m"] == 8
    assert not segment["info"]["is_appendable"]


def test_unknown_route_is_404_and_server_keeps_serving(node):
    assert node.get("/no/such/route").status_code == 404
    assert node.get("/").status_code == 200


def test_the_soft_limit_on_open_files_is_raised_to_the_hard_one(make_node):
    """Every shard keeps files open: a node started under a low soft limit raises it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"the hard limit on open files here ({hard}) leaves nothing to raise")
    node = make_node(start=False)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        node.spawn()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    def limits():
        line = next(line for line in Path(f"/proc/{node.proc.pid}/limits").read_text().splitlines() if line.startswith("Max open files"))
        return line.split()[3:5]

    deadline = time.monotonic() + 30
    while limits() != [str(hard), str(hard)] and time.monotonic() < deadline:
        assert node.proc.poll() is None, node.log()
        time.sleep(0.05)
    assert limits() == [str(hard), str(hard)]

