"""API keys: `service.api_key`, `alt_api_key` and `read_only_api_key` on REST and gRPC, with Qdrant's
statuses and bodies, endpoint by endpoint; and the start-up warning for an open node."""

import grpc
import pytest
import requests
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from conftest import _TRANSPORT

MANAGE, ROTATED, READER = "manage-key-0123456789", "rotated-key-0123456789", "reader-key-0123456789"
KEYS = {"QDRANT__SERVICE__API_KEY": MANAGE, "QDRANT__SERVICE__ALT_API_KEY": ROTATED,
        "QDRANT__SERVICE__READ_ONLY_API_KEY": READER}
MISSING = "Must provide an API key or an Authorization bearer token"
INVALID = "Invalid API key or JWT"
FORBIDDEN = "Forbidden: Global manage access is required"

# qdrant-client warns when a key travels over plain HTTP, as it does in these tests.
pytestmark = pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")

V = [0.1, 0.2, 0.3, 0.4]

# Every REST route but the open ones: (method, path, body, whether it changes anything). A search
# sent with POST is a read, as in Qdrant: what counts is the operation, not the HTTP method.
ROUTES = [
    ("GET", "/collections", None, False),
    ("GET", "/collections/c", None, False),
    ("GET", "/collections/c/exists", None, False),
    ("GET", "/collections/c/aliases", None, False),
    ("GET", "/aliases", None, False),
    ("GET", "/collections/c/optimizations", None, False),
    ("GET", "/collections/c/cluster", None, False),
    ("GET", "/collections/c/shards", None, False),
    ("GET", "/collections/c/snapshots", None, False),
    ("GET", "/collections/c/shards/0/snapshots", None, False),
    ("GET", "/snapshots", None, False),
    ("GET", "/cluster", None, False),
    ("GET", "/cluster/metadata/keys", None, False),
    ("GET", "/telemetry", None, False),
    ("GET", "/metrics", None, False),
    ("GET", "/collections/c/points/1", None, False),
    ("POST", "/collections/c/points", {"ids": [1]}, False),
    ("POST", "/collections/c/points/scroll", {}, False),
    ("POST", "/collections/c/points/count", {}, False),
    ("POST", "/collections/c/points/search", {"vector": V, "limit": 1}, False),
    ("POST", "/collections/c/points/search/batch", {"searches": [{"vector": V, "limit": 1}]}, False),
    ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "g", "limit": 1, "group_size": 1}, False),
    ("POST", "/collections/c/points/query", {"query": V}, False),
    ("POST", "/collections/c/points/query/batch", {"searches": [{"query": V}]}, False),
    ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "g"}, False),
    ("POST", "/collections/c/points/recommend", {"positive": [1], "limit": 1}, False),
    ("POST", "/collections/c/points/recommend/batch", {"searches": [{"positive": [1], "limit": 1}]}, False),
    ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "g", "limit": 1, "group_size": 1}, False),
    ("POST", "/collections/c/points/discover", {"target": 1, "limit": 1}, False),
    ("POST", "/collections/c/points/discover/batch", {"searches": [{"target": 1, "limit": 1}]}, False),
    ("POST", "/collections/c/points/search/matrix/pairs", {"sample": 2, "limit": 1}, False),
    ("POST", "/collections/c/points/search/matrix/offsets", {"sample": 2, "limit": 1}, False),
    ("POST", "/collections/c/facet", {"key": "g"}, False),
    ("POST", "/collections/c/shards/0/points/scroll", {}, False),
    ("POST", "/collections/c/shards/0/points/count", {}, False),
    ("POST", "/collections/c/shards/0/points", {"ids": [1]}, False),
    ("PUT", "/collections/d", {"vectors": {"size": 4, "distance": "Dot"}}, True),
    ("PATCH", "/collections/c", {"optimizers_config": {"indexing_threshold": 1000}}, True),
    ("DELETE", "/collections/c", None, True),
    ("POST", "/collections/aliases", {"actions": [{"create_alias": {"collection_name": "c", "alias_name": "a"}}]}, True),
    ("PUT", "/collections/c/points", {"points": [{"id": 9, "vector": V}]}, True),
    ("POST", "/collections/c/points/delete", {"points": [1]}, True),
    ("POST", "/collections/c/points/batch", {"operations": [{"delete": {"points": [1]}}]}, True),
    ("PUT", "/collections/c/points/vectors", {"points": [{"id": 1, "vector": V}]}, True),
    ("POST", "/collections/c/points/vectors/delete", {"points": [1], "vector": [""]}, True),
    ("POST", "/collections/c/points/payload", {"payload": {"a": 1}, "points": [1]}, True),
    ("PUT", "/collections/c/points/payload", {"payload": {"a": 1}, "points": [1]}, True),
    ("POST", "/collections/c/points/payload/delete", {"keys": ["g"], "points": [1]}, True),
    ("POST", "/collections/c/points/payload/clear", {"points": [1]}, True),
    ("PUT", "/collections/c/index", {"field_name": "h", "field_schema": "keyword"}, True),
    ("DELETE", "/collections/c/index/g", None, True),
    ("PUT", "/collections/c/vectors/extra", {"dense": {"size": 4, "distance": "Dot"}}, True),
    ("DELETE", "/collections/c/vectors/extra", None, True),
    ("POST", "/collections/c/snapshots", None, True),
    ("DELETE", "/collections/c/snapshots/none.snapshot", None, True),
    ("PUT", "/collections/c/snapshots/recover", {"location": "file:///nonexistent.snapshot"}, True),
    ("POST", "/collections/c/snapshots/upload", None, True),
    ("POST", "/collections/c/shards/0/snapshots", None, True),
    ("DELETE", "/collections/c/shards/0/snapshots/none.snapshot", None, True),
    ("PUT", "/collections/c/shards/0/snapshots/recover", {"location": "file:///nonexistent.snapshot"}, True),
    ("POST", "/collections/c/shards/0/snapshots/upload", None, True),
    ("POST", "/snapshots", None, True),
    ("DELETE", "/snapshots/none.snapshot", None, True),
    ("PUT", "/collections/c/shards", {"shard_key": "k"}, True),
    ("POST", "/collections/c/shards/delete", {"shard_key": "k"}, True),
    ("POST", "/collections/c/cluster", {"drop_replica": {"shard_id": 0, "peer_id": 1}}, True),
    ("PUT", "/cluster/metadata/keys/k", {"v": 1}, True),
    ("DELETE", "/cluster/metadata/keys/k", None, True),
    ("POST", "/cluster/recover", None, True),
    ("DELETE", "/cluster/peer/1", None, True),
]


@pytest.fixture
def keyed(make_node):
    node = make_node(env=KEYS)
    manage = {"api-key": MANAGE}
    node.put("/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}}, headers=manage).raise_for_status()
    node.put("/collections/c/points?wait=true", headers=manage,
             json={"points": [{"id": i, "vector": V, "payload": {"g": "x"}} for i in (1, 2, 3)]}).raise_for_status()
    node.put("/collections/c/index?wait=true", json={"field_name": "g", "field_schema": "keyword"}, headers=manage).raise_for_status()
    return node


def call(node, method, path, body, headers):
    if path.endswith("/upload"):
        return requests.request(method, node.url + path, files={"snapshot": ("s.snapshot", b"not a snapshot")}, headers=headers, timeout=30)
    return requests.request(method, node.url + path, json=body, headers=headers, timeout=30)


def test_every_route_asks_for_a_key_and_a_read_only_key_only_reads(keyed):
    for method, path, body, _ in ROUTES:
        r = call(keyed, method, path, body, {})
        assert (r.status_code, r.text) == (401, MISSING), (method, path)
        assert "content-type" not in r.headers, (method, path)
        r = call(keyed, method, path, body, {"api-key": "wrong"})
        assert (r.status_code, r.text) == (401, INVALID), (method, path)
    for method, path, body, writes in ROUTES:
        r = call(keyed, method, path, body, {"api-key": READER})
        if writes:
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["status"] == {"error": FORBIDDEN}, (method, path)
            assert isinstance(r.json()["time"], float)
        else:  # answered (the cluster metadata only in cluster mode: a 405 here)
            assert r.status_code in (200, 405), (method, path, r.text)
    # Nothing the reader tried changed anything.
    manage = {"api-key": MANAGE}
    assert keyed.get("/collections", headers=manage).json()["result"]["collections"] == [{"name": "c"}]
    assert keyed.post("/collections/c/points/count", json={"exact": True}, headers=manage).json()["result"]["count"] == 3
    assert list(keyed.get("/collections/c", headers=manage).json()["result"]["payload_schema"]) == ["g"]


def test_open_endpoints_and_the_forms_of_a_key(keyed):
    for path in ["/", "/healthz", "/livez", "/readyz", "/healthz/"]:
        assert requests.get(keyed.url + path, timeout=10).status_code == 200, path
    for headers, status in [
        ({"api-key": MANAGE}, 200),
        ({"Api-Key": ROTATED}, 200),  # the second key, for rotation; header names in any case
        ({"Authorization": f"Bearer {MANAGE}"}, 200),
        ({"Authorization": f"Bearer {READER}"}, 200),
        ({"Authorization": f"bearer {MANAGE}"}, 401),  # the scheme is matched exactly
        ({"Authorization": MANAGE}, 401),
        ({"api-key": "wrong", "Authorization": f"Bearer {MANAGE}"}, 401),  # api-key wins, even wrong
        ({"api-key": MANAGE[:-1]}, 401),
        ({"api-key": MANAGE + "x"}, 401),
        ({"api-key": ""}, 401),
    ]:
        assert requests.get(keyed.url + "/collections", headers=headers, timeout=10).status_code == status, headers
    # A path no route serves still needs a key first.
    assert requests.get(keyed.url + "/no/such/path", timeout=10).status_code == 401
    # The rotated key may write.
    r = requests.put(keyed.url + "/collections/c/points?wait=true", json={"points": [{"id": 4, "vector": V}]},
                     headers={"api-key": ROTATED}, timeout=10)
    assert r.status_code == 200


@pytest.mark.qdrant_client
def test_qdrant_client_with_each_key(keyed):
    grpc_transport = _TRANSPORT["name"] == "grpc"
    manage = keyed.client(api_key=MANAGE)
    manage.upsert("c", points=[models.PointStruct(id=5, vector=V)], wait=True)
    assert manage.count("c", exact=True).count == 4
    reader = keyed.client(api_key=READER)
    assert [p.id for p in reader.query_points("c", query=V, limit=10).points] == [1, 2, 3, 5]
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as e:
        reader.upsert("c", points=[models.PointStruct(id=6, vector=V)], wait=True)
    if grpc_transport:
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, FORBIDDEN)
    else:
        assert e.value.status_code == 403
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as e:
        keyed.client().get_collections()
    if grpc_transport:
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, MISSING)
    else:
        assert e.value.status_code == 401
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as e:
        keyed.client(api_key="wrong").get_collections()
    if grpc_transport:
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, INVALID)
    else:
        assert e.value.status_code == 401
    assert manage.count("c", exact=True).count == 4


def test_grpc_health_checks_are_open(keyed):
    channel = grpc.insecure_channel(f"127.0.0.1:{keyed.grpc_port}")
    raw = lambda method, metadata=None: channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)(
        b"", timeout=10, metadata=metadata)
    assert raw("/qdrant.Qdrant/HealthCheck") is not None
    assert raw("/grpc.health.v1.Health/Check") is not None
    for method in ["/qdrant.Collections/List", "/qdrant.Points/NoSuchMethod"]:
        with pytest.raises(grpc.RpcError) as e:
            raw(method)
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, MISSING)
    assert raw("/qdrant.Collections/List", metadata=[("authorization", f"Bearer {READER}")]) is not None


def test_a_node_open_to_the_network_without_a_key_warns(make_node):
    node = make_node(env={"QDRANT__SERVICE__HOST": "0.0.0.0"})
    assert "No API key is set" in node.log()
    keyed = make_node(env={"QDRANT__SERVICE__HOST": "0.0.0.0", "QDRANT__SERVICE__API_KEY": MANAGE}, subdir="keyed")
    assert "No API key is set" not in keyed.log()
    quiet = make_node(subdir="loopback")
    assert "No API key is set" not in quiet.log()
