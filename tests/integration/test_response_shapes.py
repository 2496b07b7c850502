"""Every route the REST server serves answers in the shape Qdrant's OpenAPI document gives it
(v1.19, and v1.18 for the legacy endpoints): one success and one error case per route, each with
the status it must have. The routes are read from the server's sources, so a new route without a
case here fails the test."""

import re
from pathlib import Path

import pytest

SOURCES = Path(__file__).resolve().parents[2] / "Sources" / "RESTServer"
ROUTE = re.compile(r'router\.(get|post|put|patch|delete)\("([^"]+)"|addUpdateRoute\(router, \.(get|post|put|patch|delete), "([^"]+)"')

# Routes Qdrant serves but does not publish in its OpenAPI document, and the local shard API,
# which is Quiver's own: their statuses are checked, their shapes are not in any document.
UNPUBLISHED = {"/cluster/metadata/keys", "/cluster/metadata/keys/{}", "/collections/{}/shards/{}/points",
               "/collections/{}/shards/{}/points/scroll", "/collections/{}/shards/{}/points/count"}

V = [1, 0, 0, 0]
# (method, route template, concrete path, body, status): a success and, where a route can fail, a
# failure for every route.
CASES = [
    ("GET", "/", "/", None, 200),
    ("GET", "/healthz", "/healthz", None, 200),
    ("GET", "/livez", "/livez", None, 200),
    ("GET", "/readyz", "/readyz", None, 200),
    ("GET", "/metrics", "/metrics", None, 200),
    ("GET", "/telemetry", "/telemetry?details_level=2", None, 200),
    ("GET", "/telemetry", "/telemetry?details_level=x", None, 400),
    ("GET", "/collections", "/collections", None, 200),
    ("PUT", "/collections/{}", "/collections/made", {"vectors": {"size": 4, "distance": "Dot"}}, 200),
    ("PUT", "/collections/{}", "/collections/s", {"vectors": {"size": 4, "distance": "Dot"}}, 409),
    ("GET", "/collections/{}", "/collections/s", None, 200),
    ("GET", "/collections/{}", "/collections/missing", None, 404),
    ("PATCH", "/collections/{}", "/collections/s", {"optimizers_config": {"indexing_threshold": 1000}}, 200),
    ("PATCH", "/collections/{}", "/collections/s", {"hnsw_config": {"m": "many"}}, 400),
    ("GET", "/collections/{}/exists", "/collections/s/exists", None, 200),
    ("GET", "/collections/{}/exists", "/collections/missing/exists", None, 200),
    ("POST", "/collections/aliases", "/collections/aliases",
     {"actions": [{"create_alias": {"collection_name": "s", "alias_name": "al"}}]}, 200),
    ("POST", "/collections/aliases", "/collections/aliases",
     {"actions": [{"create_alias": {"collection_name": "missing", "alias_name": "x"}}]}, 404),
    ("GET", "/aliases", "/aliases", None, 200),
    ("GET", "/collections/{}/aliases", "/collections/s/aliases", None, 200),
    ("GET", "/collections/{}/aliases", "/collections/missing/aliases", None, 404),
    ("GET", "/collections/{}/optimizations", "/collections/s/optimizations?with=queued,completed,idle_segments", None, 200),
    ("GET", "/collections/{}/optimizations", "/collections/missing/optimizations", None, 404),
    ("GET", "/collections/{}/cluster", "/collections/s/cluster", None, 200),
    ("GET", "/collections/{}/cluster", "/collections/missing/cluster", None, 404),
    ("PUT", "/collections/{}/points", "/collections/s/points?wait=true",
     {"points": [{"id": i, "vector": [1, i, 0, 0], "payload": {"kw": f"k{i % 3}", "n": i}} for i in range(20)]}, 200),
    ("PUT", "/collections/{}/points", "/collections/s/points", {"points": [{"id": 1, "vector": [1]}]}, 400),
    ("GET", "/collections/{}/points/{}", "/collections/s/points/3", None, 200),
    ("GET", "/collections/{}/points/{}", "/collections/s/points/999", None, 404),
    ("POST", "/collections/{}/points", "/collections/s/points", {"ids": [1, 2], "with_vector": True}, 200),
    ("POST", "/collections/{}/points", "/collections/s/points", {"ids": ["nope"]}, 400),
    ("POST", "/collections/{}/points/scroll", "/collections/s/points/scroll", {"limit": 5}, 200),
    ("POST", "/collections/{}/points/scroll", "/collections/s/points/scroll", {"limit": 0}, 422),
    ("POST", "/collections/{}/points/count", "/collections/s/points/count", {"filter": {"must": [{"key": "n", "range": {"lt": 5}}]}}, 200),
    ("POST", "/collections/{}/points/count", "/collections/missing/points/count", {}, 404),
    ("POST", "/collections/{}/points/query", "/collections/s/points/query", {"query": V, "limit": 3, "with_payload": True}, 200),
    ("POST", "/collections/{}/points/query", "/collections/s/points/query", {"query": [1, 0]}, 400),
    ("POST", "/collections/{}/points/query/batch", "/collections/s/points/query/batch", {"searches": [{"query": V}, {}]}, 200),
    ("POST", "/collections/{}/points/query/batch", "/collections/s/points/query/batch", {"searches": 1}, 400),
    ("POST", "/collections/{}/points/search", "/collections/s/points/search", {"vector": V, "limit": 2}, 200),
    ("POST", "/collections/{}/points/search", "/collections/s/points/search", {"vector": V}, 400),
    ("POST", "/collections/{}/points/search/batch", "/collections/s/points/search/batch", {"searches": [{"vector": V, "top": 2}]}, 200),
    ("POST", "/collections/{}/points/search/batch", "/collections/missing/points/search/batch", {"searches": []}, 404),
    ("POST", "/collections/{}/points/recommend", "/collections/s/points/recommend", {"positive": [V], "limit": 2}, 200),
    ("POST", "/collections/{}/points/recommend", "/collections/s/points/recommend", {"positive": [V]}, 400),
    ("POST", "/collections/{}/points/recommend/batch", "/collections/s/points/recommend/batch", {"searches": [{"positive": [V], "negative": [V], "strategy": "best_score", "limit": 2}]}, 200),
    ("POST", "/collections/{}/points/recommend/batch", "/collections/missing/points/recommend/batch", {"searches": []}, 404),
    ("POST", "/collections/{}/points/discover", "/collections/s/points/discover", {"target": V, "context": [{"positive": V, "negative": V}], "limit": 2}, 200),
    ("POST", "/collections/{}/points/discover", "/collections/missing/points/discover", {"target": V, "limit": 2}, 404),
    ("POST", "/collections/{}/points/discover/batch", "/collections/s/points/discover/batch", {"searches": [{"context": [{"positive": V, "negative": V}], "limit": 2}]}, 200),
    ("POST", "/collections/{}/points/discover/batch", "/collections/missing/points/discover/batch", {"searches": []}, 404),
    ("POST", "/collections/{}/points/query/groups", "/collections/s/points/query/groups", {"query": V, "group_by": "kw", "with_lookup": "s", "with_payload": True}, 200),
    ("POST", "/collections/{}/points/query/groups", "/collections/s/points/query/groups", {"query": V}, 400),
    ("POST", "/collections/{}/points/search/groups", "/collections/s/points/search/groups", {"vector": V, "group_by": "kw", "group_size": 2, "limit": 3}, 200),
    ("POST", "/collections/{}/points/search/groups", "/collections/s/points/search/groups", {"vector": V, "group_by": "kw", "limit": 3}, 400),
    ("POST", "/collections/{}/points/recommend/groups", "/collections/s/points/recommend/groups", {"positive": [V], "group_by": "kw", "group_size": 1, "limit": 2}, 200),
    ("POST", "/collections/{}/points/recommend/groups", "/collections/missing/points/recommend/groups", {"positive": [V], "group_by": "kw", "group_size": 1, "limit": 2}, 404),
    ("POST", "/collections/{}/points/search/matrix/pairs", "/collections/s/points/search/matrix/pairs", {"sample": 5, "limit": 2}, 200),
    ("POST", "/collections/{}/points/search/matrix/pairs", "/collections/s/points/search/matrix/pairs", {"sample": 1}, 422),
    ("POST", "/collections/{}/points/search/matrix/offsets", "/collections/s/points/search/matrix/offsets", {}, 200),
    ("POST", "/collections/{}/points/search/matrix/offsets", "/collections/missing/points/search/matrix/offsets", {}, 404),
    ("PUT", "/collections/{}/vectors/{}", "/collections/s/vectors/extra?wait=true", {"sparse": {"modifier": "idf"}}, 200),
    ("PUT", "/collections/{}/vectors/{}", "/collections/s/vectors/extra", {"dense": {"size": 4}}, 400),
    ("DELETE", "/collections/{}/vectors/{}", "/collections/s/vectors/extra?wait=true", None, 200),
    ("DELETE", "/collections/{}/vectors/{}", "/collections/missing/vectors/extra", None, 404),
    ("PUT", "/collections/{}/index", "/collections/s/index?wait=true", {"field_name": "kw", "field_schema": "keyword"}, 200),
    ("PUT", "/collections/{}/index", "/collections/s/index", {"field_name": "kw", "field_schema": "nope"}, 400),
    ("POST", "/collections/{}/facet", "/collections/s/facet", {"key": "kw"}, 200),
    ("POST", "/collections/{}/facet", "/collections/s/facet", {"key": "n"}, 400),
    ("DELETE", "/collections/{}/index/{}", "/collections/s/index/kw?wait=true", None, 200),
    ("DELETE", "/collections/{}/index/{}", "/collections/missing/index/kw", None, 404),
    ("PUT", "/collections/{}/points/vectors", "/collections/s/points/vectors?wait=true", {"points": [{"id": 1, "vector": [0, 1, 0, 0]}]}, 200),
    ("PUT", "/collections/{}/points/vectors", "/collections/s/points/vectors", {"points": [{"id": 999, "vector": V}]}, 404),
    ("POST", "/collections/{}/points/payload", "/collections/s/points/payload?wait=true", {"payload": {"x": 1}, "points": [1]}, 200),
    ("POST", "/collections/{}/points/payload", "/collections/s/points/payload", {"payload": 1, "points": [1]}, 400),
    ("PUT", "/collections/{}/points/payload", "/collections/s/points/payload?wait=true", {"payload": {"y": 1}, "points": [2]}, 200),
    ("PUT", "/collections/{}/points/payload", "/collections/s/points/payload", {"payload": {"y": 1}, "points": [999]}, 404),
    ("POST", "/collections/{}/points/payload/delete", "/collections/s/points/payload/delete?wait=true", {"keys": ["x"], "points": [1]}, 200),
    ("POST", "/collections/{}/points/payload/delete", "/collections/s/points/payload/delete", {"points": [1]}, 400),
    ("POST", "/collections/{}/points/payload/clear", "/collections/s/points/payload/clear?wait=true", {"points": [3]}, 200),
    ("POST", "/collections/{}/points/payload/clear", "/collections/s/points/payload/clear", {"points": [999]}, 404),
    ("POST", "/collections/{}/points/vectors/delete", "/collections/s/points/vectors/delete?wait=true", {"points": [4], "vector": [""]}, 200),
    ("POST", "/collections/{}/points/vectors/delete", "/collections/s/points/vectors/delete", {"points": [4], "vector": ["nope"]}, 400),
    ("POST", "/collections/{}/points/batch", "/collections/s/points/batch?wait=true", {"operations": [{"delete": {"points": [19]}}]}, 200),
    ("POST", "/collections/{}/points/batch", "/collections/s/points/batch", {"operations": [{"explode": {}}]}, 400),
    ("POST", "/collections/{}/points/delete", "/collections/s/points/delete?wait=true", {"points": [18]}, 200),
    ("POST", "/collections/{}/points/delete", "/collections/s/points/delete", {}, 400),
    ("GET", "/collections/{}/shards", "/collections/s/shards", None, 200),
    ("GET", "/collections/{}/shards", "/collections/missing/shards", None, 404),
    ("PUT", "/collections/{}/shards", "/collections/custom/shards", {"shard_key": "eu"}, 200),
    ("PUT", "/collections/{}/shards", "/collections/s/shards", {"shard_key": "eu"}, 400),
    ("POST", "/collections/{}/shards/delete", "/collections/custom/shards/delete", {"shard_key": "eu"}, 200),
    ("POST", "/collections/{}/shards/delete", "/collections/custom/shards/delete", {"shard_key": "eu"}, 400),
    ("POST", "/collections/{}/shards/{}/points", "/collections/s/shards/0/points", {"ids": [1]}, 200),
    ("POST", "/collections/{}/shards/{}/points", "/collections/s/shards/7/points", {"ids": [1]}, 404),
    ("POST", "/collections/{}/shards/{}/points/scroll", "/collections/s/shards/0/points/scroll", {"limit": 2}, 200),
    ("POST", "/collections/{}/shards/{}/points/scroll", "/collections/s/shards/7/points/scroll", {}, 404),
    ("POST", "/collections/{}/shards/{}/points/count", "/collections/s/shards/0/points/count", {}, 200),
    ("POST", "/collections/{}/shards/{}/points/count", "/collections/s/shards/7/points/count", {}, 404),
    ("GET", "/cluster", "/cluster", None, 200),
    # Cluster operations on a single node: Qdrant's standalone answers.
    ("POST", "/cluster/recover", "/cluster/recover", None, 405),
    ("DELETE", "/cluster/peer/{}", "/cluster/peer/1", None, 405),
    ("GET", "/quotas", "/quotas", None, 200),
    ("PUT", "/quotas", "/quotas", {"enabled": False}, 200),
    ("PUT", "/quotas", "/quotas", {"max_disk_usage_percent": 0}, 422),
    ("GET", "/cluster/metadata/keys", "/cluster/metadata/keys", None, 405),
    ("GET", "/cluster/metadata/keys/{}", "/cluster/metadata/keys/k", None, 405),
    ("PUT", "/cluster/metadata/keys/{}", "/cluster/metadata/keys/k", 1, 405),
    ("DELETE", "/cluster/metadata/keys/{}", "/cluster/metadata/keys/k", None, 405),
    ("POST", "/collections/{}/cluster", "/collections/s/cluster", {"drop_replica": {"shard_id": 0, "peer_id": 1}}, 405),
    ("POST", "/collections/{}/cluster", "/collections/s/cluster",
     {"move_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 1}}, 422),
    # Snapshots. `{snapshot}`, `{shard_snapshot}` and `{full}` stand for the newest snapshot of `s`,
    # of its shard 0 and of the storage; `{snapshots}` for the snapshots directory; UPLOAD sends
    # the newest snapshot of `s` as the multipart `snapshot` field.
    ("POST", "/collections/{}/snapshots", "/collections/s/snapshots", None, 200),
    ("POST", "/collections/{}/snapshots", "/collections/missing/snapshots", None, 404),
    ("GET", "/collections/{}/snapshots", "/collections/s/snapshots", None, 200),
    ("GET", "/collections/{}/snapshots", "/collections/missing/snapshots", None, 404),
    ("GET", "/collections/{}/snapshots/{}", "/collections/s/snapshots/{snapshot}", None, 200),
    ("GET", "/collections/{}/snapshots/{}", "/collections/s/snapshots/nope.snapshot", None, 404),
    ("PUT", "/collections/{}/snapshots/recover", "/collections/s/snapshots/recover", {"location": "file://{snapshots}/s/{snapshot}"}, 200),
    ("PUT", "/collections/{}/snapshots/recover", "/collections/s/snapshots/recover", {"location": "file:///nowhere.snapshot"}, 400),
    ("POST", "/collections/{}/snapshots/upload", "/collections/s/snapshots/upload", "UPLOAD", 200),
    ("POST", "/collections/{}/snapshots/upload", "/collections/s/snapshots/upload?priority=x", "UPLOAD", 400),
    ("DELETE", "/collections/{}/snapshots/{}", "/collections/s/snapshots/{snapshot}", None, 200),
    ("DELETE", "/collections/{}/snapshots/{}", "/collections/s/snapshots/nope.snapshot", None, 404),
    ("POST", "/collections/{}/shards/{}/snapshots", "/collections/s/shards/0/snapshots", None, 200),
    ("POST", "/collections/{}/shards/{}/snapshots", "/collections/s/shards/7/snapshots", None, 404),
    ("GET", "/collections/{}/shards/{}/snapshots", "/collections/s/shards/0/snapshots", None, 200),
    ("GET", "/collections/{}/shards/{}/snapshots", "/collections/s/shards/x/snapshots", None, 400),
    ("GET", "/collections/{}/shards/{}/snapshots/{}", "/collections/s/shards/0/snapshots/{shard_snapshot}", None, 200),
    ("GET", "/collections/{}/shards/{}/snapshots/{}", "/collections/s/shards/0/snapshots/nope.snapshot", None, 404),
    ("PUT", "/collections/{}/shards/{}/snapshots/recover", "/collections/s/shards/0/snapshots/recover",
     {"location": "{shard_snapshot}"}, 200),
    ("PUT", "/collections/{}/shards/{}/snapshots/recover", "/collections/s/shards/0/snapshots/recover", {"location": "ftp://x/y"}, 400),
    ("POST", "/collections/{}/shards/{}/snapshots/upload", "/collections/s/shards/0/snapshots/upload", "UPLOAD_SHARD", 200),
    ("POST", "/collections/{}/shards/{}/snapshots/upload", "/collections/s/shards/7/snapshots/upload", "UPLOAD_SHARD", 404),
    ("DELETE", "/collections/{}/shards/{}/snapshots/{}", "/collections/s/shards/0/snapshots/{shard_snapshot}", None, 200),
    ("DELETE", "/collections/{}/shards/{}/snapshots/{}", "/collections/s/shards/0/snapshots/nope.snapshot", None, 404),
    ("POST", "/snapshots", "/snapshots", None, 200),
    ("POST", "/snapshots", "/snapshots?wait=maybe", None, 400),
    ("GET", "/snapshots", "/snapshots", None, 200),
    ("GET", "/snapshots/{}", "/snapshots/{full}", None, 200),
    ("GET", "/snapshots/{}", "/snapshots/nope.snapshot", None, 404),
    ("DELETE", "/snapshots/{}", "/snapshots/{full}", None, 200),
    ("DELETE", "/snapshots/{}", "/snapshots/nope.snapshot", None, 404),
    ("DELETE", "/collections/{}", "/collections/made", None, 200),
    ("DELETE", "/collections/{}", "/collections/made?timeout=0", None, 422),
]


def served_routes() -> set[tuple[str, str]]:
    routes = set()
    for source in SOURCES.glob("*.swift"):
        for match in ROUTE.finditer(source.read_text()):
            method = (match.group(1) or match.group(3)).upper()
            path = re.sub(r":[a-z_]+", "{}", match.group(2) or match.group(4))
            routes.add((method, path))
    return routes


def test_every_served_route_has_cases():
    served = served_routes()
    assert len(served) > 40, "the route pattern no longer finds the server's routes"
    covered = {(method, route) for method, route, *_ in CASES}
    assert served - covered == set(), "routes without a shape case"
    assert covered - served == set(), "cases for routes the server does not serve"
    for method, route in served:
        statuses = {status for m, r, _, _, status in CASES if (m, r) == (method, route)}
        standalone = route.startswith("/cluster/") or (method, route) == ("POST", "/collections/{}/cluster")
        assert any(s < 300 for s in statuses) or standalone, f"{method} {route} has no success case"


def newest(node, listing: str) -> str:
    names = sorted(s["name"] for s in node.get(listing).json()["result"])
    return names[-1] if names else "none.snapshot"


def concrete(node, text: str) -> str:
    """`text` with the snapshot placeholders of CASES filled in."""
    if "{snapshot}" in text:
        text = text.replace("{snapshot}", newest(node, "/collections/s/snapshots"))
    if "{shard_snapshot}" in text:
        text = text.replace("{shard_snapshot}", newest(node, "/collections/s/shards/0/snapshots"))
    if "{full}" in text:
        text = text.replace("{full}", newest(node, "/snapshots"))
    return text.replace("{snapshots}", str(node.workdir / "snapshots"))


def request_arguments(node, body) -> dict:
    if body is None:
        return {}
    if body in ("UPLOAD", "UPLOAD_SHARD"):
        listing = "/collections/s/snapshots" if body == "UPLOAD" else "/collections/s/shards/0/snapshots"
        prefix = listing.removesuffix("/snapshots")
        archive = node.get(f"{prefix}/snapshots/{newest(node, listing)}").content
        return {"files": {"snapshot": ("s.snapshot", archive)}}
    if isinstance(body, dict) and "location" in body:
        return {"json": {**body, "location": concrete(node, body["location"])}}
    return {"json": body}


def test_every_response_matches_the_document(node, openapi):
    assert node.put("/collections/s", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
    assert node.put("/collections/custom", json={"vectors": {"size": 4, "distance": "Dot"}, "sharding_method": "custom"}).status_code == 200
    for method, route, path, body, status in CASES:
        path = concrete(node, path)
        kwargs = request_arguments(node, body)
        r = getattr(node, method.lower())(path, **kwargs)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text[:300]}"
        if route not in UNPUBLISHED:
            openapi.validate(r)
        if route != "/" and r.headers.get("content-type", "").startswith("application/json"):
            body = r.json()
            assert "time" in body and ("result" in body if status < 300 else "error" in body["status"]), f"{method} {path}: {body}"


@pytest.mark.parametrize("route", sorted(UNPUBLISHED))
def test_unpublished_routes_are_really_not_in_the_document(openapi, route):
    concrete = route.replace("{}", "x")
    with pytest.raises(AssertionError):
        openapi.template(concrete)
