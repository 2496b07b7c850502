"""API keys (`service.api_key`, `alt_api_key`, `read_only_api_key`) and JWT access control
(`service.jwt_rbac`) on REST and gRPC, with Qdrant's statuses and bodies, endpoint by endpoint and
access level by access level; and the start-up warning for an open node."""

import base64
import hashlib
import hmac
import json
import time

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

# Every REST route but the open ones: (method, path, body, what it needs). A search sent with POST is
# a read, as in Qdrant: what counts is the operation, not the HTTP method. What each needs:
# - "list": any credential (collections, aliases and telemetry show what the credential may read);
# - "global-read" / "global-manage": the whole node, reading / changing it;
# - "read", "read-extras": a collection's points or settings / its snapshots and placement;
# - "write", "write-extras": its points / its indexes, vectors and snapshots;
# - "manage": its placement.
WRITES = {"global-manage", "write", "write-extras", "manage"}
ROUTES = [
    ("GET", "/collections", None, "list"),
    ("GET", "/collections/c", None, "read"),
    ("GET", "/collections/c/exists", None, "read"),
    ("GET", "/collections/c/aliases", None, "read"),
    ("GET", "/aliases", None, "list"),
    ("GET", "/collections/c/optimizations", None, "read"),
    ("GET", "/collections/c/cluster", None, "read-extras"),
    ("GET", "/collections/c/shards", None, "read"),
    ("GET", "/collections/c/snapshots", None, "read-extras"),
    ("GET", "/collections/c/shards/0/snapshots", None, "read-extras"),
    ("GET", "/snapshots", None, "global-read"),
    ("GET", "/cluster", None, "global-read"),
    ("GET", "/cluster/metadata/keys", None, "global-read"),
    ("GET", "/quotas", None, "global-read"),
    ("GET", "/telemetry", None, "list"),
    ("GET", "/metrics", None, "global-read"),
    ("GET", "/collections/c/points/1", None, "read"),
    ("POST", "/collections/c/points", {"ids": [1]}, "read"),
    ("POST", "/collections/c/points/scroll", {}, "read"),
    ("POST", "/collections/c/points/count", {}, "read"),
    ("POST", "/collections/c/points/search", {"vector": V, "limit": 1}, "read"),
    ("POST", "/collections/c/points/search/batch", {"searches": [{"vector": V, "limit": 1}]}, "read"),
    ("POST", "/collections/c/points/search/groups", {"vector": V, "group_by": "g", "limit": 1, "group_size": 1}, "read"),
    ("POST", "/collections/c/points/query", {"query": V}, "read"),
    ("POST", "/collections/c/points/query/batch", {"searches": [{"query": V}]}, "read"),
    ("POST", "/collections/c/points/query/groups", {"query": V, "group_by": "g"}, "read"),
    ("POST", "/collections/c/points/recommend", {"positive": [1], "limit": 1}, "read"),
    ("POST", "/collections/c/points/recommend/batch", {"searches": [{"positive": [1], "limit": 1}]}, "read"),
    ("POST", "/collections/c/points/recommend/groups", {"positive": [1], "group_by": "g", "limit": 1, "group_size": 1}, "read"),
    ("POST", "/collections/c/points/discover", {"target": 1, "limit": 1}, "read"),
    ("POST", "/collections/c/points/discover/batch", {"searches": [{"target": 1, "limit": 1}]}, "read"),
    ("POST", "/collections/c/points/search/matrix/pairs", {"sample": 2, "limit": 1}, "read"),
    ("POST", "/collections/c/points/search/matrix/offsets", {"sample": 2, "limit": 1}, "read"),
    ("POST", "/collections/c/facet", {"key": "g"}, "read"),
    ("POST", "/collections/c/shards/0/points/scroll", {}, "read"),
    ("POST", "/collections/c/shards/0/points/count", {}, "read"),
    ("POST", "/collections/c/shards/0/points", {"ids": [1]}, "read"),
    ("PUT", "/collections/d", {"vectors": {"size": 4, "distance": "Dot"}}, "global-manage"),
    ("PATCH", "/collections/c", {"optimizers_config": {"indexing_threshold": 1000}}, "global-manage"),
    ("DELETE", "/collections/c", None, "global-manage"),
    ("POST", "/collections/aliases", {"actions": [{"create_alias": {"collection_name": "c", "alias_name": "a"}}]}, "global-manage"),
    ("PUT", "/collections/c/points", {"points": [{"id": 9, "vector": V}]}, "write"),
    ("POST", "/collections/c/points/delete", {"points": [1]}, "write"),
    ("POST", "/collections/c/points/batch", {"operations": [{"delete": {"points": [1]}}]}, "write"),
    ("PUT", "/collections/c/points/vectors", {"points": [{"id": 1, "vector": V}]}, "write"),
    ("POST", "/collections/c/points/vectors/delete", {"points": [1], "vector": [""]}, "write"),
    ("POST", "/collections/c/points/payload", {"payload": {"a": 1}, "points": [1]}, "write"),
    ("PUT", "/collections/c/points/payload", {"payload": {"a": 1}, "points": [1]}, "write"),
    ("POST", "/collections/c/points/payload/delete", {"keys": ["g"], "points": [1]}, "write"),
    ("POST", "/collections/c/points/payload/clear", {"points": [1]}, "write"),
    ("PUT", "/collections/c/index", {"field_name": "h", "field_schema": "keyword"}, "write-extras"),
    ("DELETE", "/collections/c/index/g", None, "write-extras"),
    ("PUT", "/collections/c/vectors/extra", {"dense": {"size": 4, "distance": "Dot"}}, "write-extras"),
    ("DELETE", "/collections/c/vectors/extra", None, "write-extras"),
    ("POST", "/collections/c/snapshots", None, "write-extras"),
    ("DELETE", "/collections/c/snapshots/none.snapshot", None, "write-extras"),
    ("PUT", "/collections/c/snapshots/recover", {"location": "file:///nonexistent.snapshot"}, "global-manage"),
    ("POST", "/collections/c/snapshots/upload", None, "global-manage"),
    ("POST", "/collections/c/shards/0/snapshots", None, "write-extras"),
    ("DELETE", "/collections/c/shards/0/snapshots/none.snapshot", None, "write-extras"),
    ("PUT", "/collections/c/shards/0/snapshots/recover", {"location": "file:///nonexistent.snapshot"}, "global-manage"),
    ("POST", "/collections/c/shards/0/snapshots/upload", None, "global-manage"),
    ("POST", "/snapshots", None, "global-manage"),
    ("DELETE", "/snapshots/none.snapshot", None, "global-manage"),
    ("PUT", "/collections/c/shards", {"shard_key": "k"}, "global-manage"),
    ("POST", "/collections/c/shards/delete", {"shard_key": "k"}, "global-manage"),
    ("POST", "/collections/c/cluster", {"drop_replica": {"shard_id": 0, "peer_id": 1}}, "manage"),
    ("PUT", "/cluster/metadata/keys/k", {"v": 1}, "global-manage"),
    ("PUT", "/quotas", {"enabled": False}, "global-manage"),
    ("DELETE", "/cluster/metadata/keys/k", None, "global-manage"),
    ("POST", "/cluster/recover", None, "global-manage"),
    ("DELETE", "/cluster/peer/1", None, "global-manage"),
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
    for method, path, body, needs in ROUTES:
        r = call(keyed, method, path, body, {"api-key": READER})
        if needs in WRITES:
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


# JWT access control (`service.jwt_rbac`): tokens signed (HS256) with the api key.

def token(claims: dict, secret: str = MANAGE, alg: str = "HS256") -> str:
    encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    signed = encode(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + encode(json.dumps(claims).encode())
    return signed + "." + encode(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest())


def refusal(needs: str, access) -> str | None:
    """What Qdrant answers a route needing `needs` for a token with `access`: "m" or "r" (global), the
    mode of a token naming only collection `c` ("cr", "rw", "prw"), or "other" for one naming only
    another collection. None when allowed, else the 403's description."""
    if access == "m" or needs == "list":
        return None
    if access == "r":
        return "Global manage access is required" if needs in WRITES else None
    if needs.startswith("global"):
        return "Global access is required"
    if access == "other":
        return "Access to collection c is required"
    if "extras" in needs or needs == "manage":
        if access == "prw":
            return "Only points access is allowed for collection c"
    if needs.startswith("write") or needs == "manage":
        if access == "cr":
            return "Write access to collection c is required"
    if needs == "manage":
        return "Manage access for this operation is required"
    return None


@pytest.fixture
def tokened(make_node):
    node = make_node(env={"QDRANT__SERVICE__API_KEY": MANAGE, "QDRANT__SERVICE__JWT_RBAC": "true"})
    manage = {"api-key": MANAGE}
    node.put("/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}}, headers=manage).raise_for_status()
    node.put("/collections/other", json={"vectors": {"size": 4, "distance": "Dot"}}, headers=manage).raise_for_status()
    node.put("/collections/c/points?wait=true", headers=manage,
             json={"points": [{"id": i, "vector": V, "payload": {"g": "x"}} for i in (1, 2, 3)]}).raise_for_status()
    node.put("/collections/c/index?wait=true", json={"field_name": "g", "field_schema": "keyword"}, headers=manage).raise_for_status()
    node.post("/collections/aliases", headers=manage,
              json={"actions": [{"create_alias": {"collection_name": "c", "alias_name": "ca"}}]}).raise_for_status()
    return node


ACCESS_CLAIMS = {
    "r": {"access": "r"},
    "other": {"access": [{"collection": "other", "access": "rw"}]},
    "cr": {"access": [{"collection": "c", "access": "r"}]},
    "prw": {"access": [{"collection": "c", "access": "prw"}]},
    "rw": {"access": [{"collection": "c", "access": "rw"}]},
    "m": {"access": "m"},
}


def test_every_route_for_every_token(tokened):
    """Endpoint × access level, against Qdrant's table. Writes a token may do are done (so later rows
    may meet a 404 or 400 instead of a 200); global changes are tried only where refused."""
    for access, claims in ACCESS_CLAIMS.items():
        headers = {"authorization": f"Bearer {token(claims)}"}
        for method, path, body, needs in ROUTES:
            expected = refusal(needs, access)
            if expected is None and needs == "global-manage":
                continue  # allowed, and it would change the node for the next rows
            r = call(tokened, method, path, body, headers)
            if expected is None:
                assert r.status_code not in (401, 403), (access, method, path, r.text)
            else:
                assert r.status_code == 403, (access, method, path, r.status_code, r.text)
                assert r.json()["status"] == {"error": f"Forbidden: {expected}"}, (access, method, path)
    manage = {"api-key": MANAGE}
    assert sorted(c["name"] for c in tokened.get("/collections", headers=manage).json()["result"]["collections"]) == ["c", "other"]


def test_lists_show_what_a_token_may_read_and_aliases_are_names_of_their_own(tokened):
    def get(path, claims):
        return requests.get(tokened.url + path, headers={"api-key": token(claims)}, timeout=10)

    only_c = {"access": [{"collection": "c", "access": "r"}]}
    assert [c["name"] for c in get("/collections", only_c).json()["result"]["collections"]] == ["c"]
    assert get("/aliases", only_c).json()["result"]["aliases"] == []
    telemetry = get("/telemetry?details_level=2", only_c).json()["result"]["collections"]
    assert [c["id"] for c in telemetry["collections"]] == ["c"] and telemetry["number_of_collections"] == 1
    # A token for the alias reaches the collection through the alias only.
    alias = {"access": [{"collection": "ca", "access": "r"}]}
    assert get("/collections/ca/points/1", alias).status_code == 200
    assert get("/collections/c/points/1", alias).json()["status"] == {"error": "Forbidden: Access to collection c is required"}
    assert get("/aliases", alias).json()["result"]["aliases"] == [{"alias_name": "ca", "collection_name": "c"}]


def test_tokens_refused_as_qdrant_refuses_them(tokened):
    def status(tok, path="/collections"):
        r = requests.get(tokened.url + path, headers={"authorization": f"Bearer {tok}"}, timeout=10)
        return r.status_code, r.text

    now = int(time.time())
    assert status(token({"access": "r", "exp": now + 60}))[0] == 200
    assert status(token({"access": "r", "exp": now - 3600})) == (403, "ExpiredSignature")
    assert status(token({"access": "r"}, secret="not-the-key")) == (403, "InvalidSignature")
    assert status(token({"access": "r"}, alg="HS512")) == (401, INVALID)
    assert status(token({"access": "x"})) == (401, INVALID)
    assert status(token({"access": [{"collection": "c", "access": "r", "payload": {"a": 1}}]})) == (
        401, "access[0].payload: The 'payload' constraint is deprecated and should not be used")
    # value_exists: valid while a point of the collection matches.
    bound = token({"access": [{"collection": "c", "access": "r"}], "value_exists": {"collection": "c", "matches": [{"key": "g", "value": "x"}]}})
    assert status(bound, "/collections/c")[0] == 200
    assert status(token({"value_exists": {"collection": "nope", "matches": [{"key": "g", "value": "x"}]}})) == (
        403, "Invalid JWT, stateful validation failed")
    tokened.post("/collections/c/points/payload/clear?wait=true", json={"points": [1, 2, 3]}, headers={"api-key": MANAGE}).raise_for_status()
    assert status(bound, "/collections/c") == (401, "Invalid JWT, stateful validation failed")


@pytest.mark.qdrant_client
def test_qdrant_client_with_a_token(tokened):
    grpc_transport = _TRANSPORT["name"] == "grpc"
    reader = tokened.client(api_key=token({"access": [{"collection": "c", "access": "r"}]}))
    assert [p.id for p in reader.query_points("c", query=V, limit=10).points] == [1, 2, 3]
    assert [c.name for c in reader.get_collections().collections] == ["c"]
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as e:
        reader.upsert("c", points=[models.PointStruct(id=6, vector=V)], wait=True)
    if grpc_transport:
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, "Forbidden: Write access to collection c is required")
    else:
        assert e.value.status_code == 403
    writer = tokened.client(api_key=token({"access": [{"collection": "c", "access": "rw"}]}))
    writer.upsert("c", points=[models.PointStruct(id=6, vector=V)], wait=True)
    assert writer.count("c", exact=True).count == 4
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as e:
        writer.create_collection("d", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    if grpc_transport:
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, "Forbidden: Global access is required")
    else:
        assert e.value.status_code == 403
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as e:
        tokened.client(api_key=token({"access": "m"}, secret="wrong")).get_collections()
    if grpc_transport:
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, "InvalidSignature")
    else:
        assert e.value.status_code == 403
