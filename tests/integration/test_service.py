"""Service endpoints: /, health probes, /metrics, /telemetry, and the client's version check."""

import importlib.metadata
import warnings

from qdrant_client import QdrantClient
from qdrant_client.common.version_check import get_server_version, is_compatible
from qdrant_client.qdrant_remote import QdrantRemote


def test_root_reports_the_qdrant_api_version(node, openapi):
    r = openapi.validate(node.get("/"))
    assert r.status_code == 200
    assert r.json()["version"] == "1.19.0"
    assert r.json()["title"]


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
    client = QdrantClient(url=node.url, check_compatibility=False, timeout=10)
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
    assert 'rest_responses_total{method="PUT",endpoint="/collections/{name}",status="200"} 1' in text
    assert 'rest_responses_total{method="GET",endpoint="/collections/{name}",status="404"} 1' in text
    assert "rest_responses_duration_seconds_count{" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2, line


def test_telemetry_validates(node, openapi):
    node.put("/collections/a", json={"vectors": {"x": {"size": 2, "distance": "Dot"}, "y": {"size": 3, "distance": "Cosine"}}})
    r = openapi.validate(node.get("/telemetry"))
    assert r.status_code == 200
    result = r.json()["result"]
    assert result["collections"] == {"number_of_collections": 1}
    assert result["cluster"] == {"enabled": False, "resharding_enabled": False}
    assert "features" not in result["app"]
    for level in [1, 2, 3, 4]:
        r = openapi.validate(node.get(f"/telemetry?details_level={level}"))
        assert r.status_code == 200
        result = r.json()["result"]
        assert result["app"]["features"] == {"debug": False, "service_debug_feature": False, "recovery_mode": False,
                                             "gpu": False, "rocksdb": False, "staging": False}
        [entry] = result["collections"]["collections"]
        assert entry["vectors"] == 2 and entry["optimizers_status"] == "ok" and set(entry["params"]["vectors"]) == {"x", "y"}
        assert result["cluster"] == {"enabled": False, "resharding_enabled": False}
    assert node.get("/telemetry?details_level=-1").status_code == 400


def test_unknown_route_is_404_and_server_keeps_serving(node):
    assert node.get("/no/such/route").status_code == 404
    assert node.get("/").status_code == 200
