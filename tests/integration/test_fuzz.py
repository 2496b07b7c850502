"""Hostile input: random and mutated requests to every REST route and gRPC method of one node, for a
bounded time with a fixed seed. The server must never crash or hang, must answer REST with a status
below 500 in Qdrant's error shape, gRPC with a status (INTERNAL only for bytes that are not the
message), and must keep the data it stored before, also across a restart.

`QUIVER_FUZZ_SECONDS` (default 40) and `QUIVER_FUZZ_SEED` (default 1) set the run; a longer one with
a new seed each time: `QUIVER_FUZZ_SECONDS=600 QUIVER_FUZZ_SEED=$RANDOM pytest tests/integration/test_fuzz.py`.
"""

import json
import os
import random
import time
from collections import Counter

import grpc
import requests

from test_grpc import pool  # noqa: F401 (the fixture: the messages of Protos/)

SECONDS = float(os.environ.get("QUIVER_FUZZ_SECONDS", "40"))
SEED = int(os.environ.get("QUIVER_FUZZ_SEED", "1"))
V = [0.1, 0.2, 0.3, 0.4]
F = {"must": [{"key": "g", "match": {"value": "x"}}], "should": [{"key": "n", "range": {"gte": 1, "lt": 9}}]}

# Reads go to the collection KEPT, whose points are checked at the end; writes to `f`, which the
# fuzzer may change. KEPT's name is long so that no mutation of a write turns `f` into it.
KEPT = "kept_by_the_fuzzer_0123456789"
ROUTES = [
    ("GET", "/collections", None),
    ("GET", "/collections/{c}", None),
    ("GET", "/collections/{c}/exists", None),
    ("GET", "/collections/{c}/aliases", None),
    ("GET", "/aliases", None),
    ("GET", "/collections/{c}/optimizations", None),
    ("GET", "/collections/{c}/cluster", None),
    ("GET", "/collections/{c}/snapshots", None),
    ("GET", "/telemetry?details_level=3", None),
    ("GET", "/metrics", None),
    ("GET", "/collections/{c}/points/{id}", None),
    ("POST", "/collections/{c}/points", {"ids": [1, 2], "with_payload": True, "with_vector": True}),
    ("POST", "/collections/{c}/points/scroll", {"filter": F, "limit": 5, "order_by": "n", "with_payload": ["g"]}),
    ("POST", "/collections/{c}/points/count", {"filter": F, "exact": True}),
    ("POST", "/collections/{c}/points/search", {"vector": V, "limit": 3, "filter": F, "params": {"hnsw_ef": 16}}),
    ("POST", "/collections/{c}/points/search/batch", {"searches": [{"vector": V, "limit": 1}]}),
    ("POST", "/collections/{c}/points/search/groups", {"vector": V, "group_by": "g", "limit": 2, "group_size": 2}),
    ("POST", "/collections/{c}/points/query", {"query": {"nearest": V}, "prefetch": [{"query": V, "limit": 5}], "limit": 3}),
    ("POST", "/collections/{c}/points/query", {"query": {"fusion": "rrf"}, "prefetch": [{"query": V}, {"query": [0.4, 0.3, 0.2, 0.1]}]}),
    ("POST", "/collections/{c}/points/query", {"query": {"order_by": {"key": "n", "direction": "desc"}}, "filter": F}),
    ("POST", "/collections/{c}/points/query", {"query": {"recommend": {"positive": [1], "negative": [2]}}, "limit": 2}),
    ("POST", "/collections/{c}/points/query/batch", {"searches": [{"query": V}, {"query": 3}]}),
    ("POST", "/collections/{c}/points/query/groups", {"query": V, "group_by": "g"}),
    ("POST", "/collections/{c}/points/recommend", {"positive": [1], "limit": 2}),
    ("POST", "/collections/{c}/points/discover", {"target": 1, "context": [{"positive": 2, "negative": 3}], "limit": 2}),
    ("POST", "/collections/{c}/points/search/matrix/pairs", {"sample": 5, "limit": 2}),
    ("POST", "/collections/{c}/points/search/matrix/offsets", {"sample": 5, "limit": 2}),
    ("POST", "/collections/{c}/facet", {"key": "g", "limit": 3}),
    ("PUT", "/collections/{f}/points?wait=true", {"points": [{"id": 7, "vector": V, "payload": {"g": "y", "n": 3}}]}),
    ("PUT", "/collections/{f}/points?wait=true", {"batch": {"ids": [8, "6f1c0d5e-0d1f-4c25-9c1a-5d1f6f7e8a9b"], "vectors": [V, V]}}),
    ("POST", "/collections/{f}/points/delete?wait=true", {"filter": F}),
    ("POST", "/collections/{f}/points/batch?wait=true", {"operations": [{"upsert": {"points": [{"id": 9, "vector": V}]}},
                                                                       {"set_payload": {"payload": {"a": [1, {"b": None}]}, "points": [9]}}]}),
    ("PUT", "/collections/{f}/points/vectors?wait=true", {"points": [{"id": 7, "vector": V}]}),
    ("POST", "/collections/{f}/points/payload?wait=true", {"payload": {"t": "2024-01-02T03:04:05Z"}, "filter": F}),
    ("PUT", "/collections/{f}/points/payload?wait=true", {"payload": {"n": 1.5}, "points": [7], "key": "x.y[0]"}),
    ("POST", "/collections/{f}/points/payload/delete?wait=true", {"keys": ["g", "a[].b"], "points": [7, 9]}),
    ("POST", "/collections/{f}/points/payload/clear?wait=true", {"points": [8]}),
    ("PUT", "/collections/{f}/index?wait=true", {"field_name": "g", "field_schema": {"type": "keyword", "is_tenant": True}}),
    ("PUT", "/collections/{f}/index?wait=true", {"field_name": "n", "field_schema": {"type": "integer", "range": True, "lookup": False}}),
    ("PATCH", "/collections/{f}", {"optimizers_config": {"indexing_threshold": 10}, "hnsw_config": {"m": 8}}),
    ("PUT", "/collections/{n}", {"vectors": {"size": 4, "distance": "Dot"}, "sparse_vectors": {"s": {}}, "shard_number": 1}),
    ("POST", "/collections/aliases", {"actions": [{"create_alias": {"collection_name": "f", "alias_name": "fa"}}]}),
]

JSON_ATOMS = [None, True, False, 0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 1e308, -1e-308, 0.5, "", "x", "NaN", "-Infinity",
              "é\u0000\ud7ff", "a" * 1000, "2024-13-45T99:99:99Z", "6f1c0d5e-0d1f-4c25-9c1a-5d1f6f7e8a9b", "g", "n", "c", [], {}]


def random_json(rng, depth=0):
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(JSON_ATOMS)
    if roll < 0.75:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["vector", "limit", "filter", "key", "points", "ids", "query", "must", "match", "range", "payload", "k"]):
            random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def mutate_json(rng, value, depth=0):
    """The value with one random change somewhere inside it."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.2:
            del out[key]
        elif roll < 0.3:
            out[rng.choice(["extra", "limit", "offset", "with_vector", "shard_key", "timeout"])] = random_json(rng)
        else:
            out[key] = mutate_json(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        out = list(value)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.2:
            del out[i]
        elif roll < 0.3:
            out.insert(i, random_json(rng))
        elif roll < 0.35:
            out = out * rng.choice([2, 50])
        else:
            out[i] = mutate_json(rng, out[i], depth + 1)
        return out
    roll = rng.random()
    if roll < 0.1:  # deep nesting, past the parser's limit at times
        inner = random_json(rng)
        for _ in range(rng.choice([10, 127, 129, 300])):
            inner = [inner] if rng.random() < 0.5 else {"must": [inner]}
        return inner
    return random_json(rng)


def mutate_bytes(rng, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        roll = rng.random()
        if not data or roll < 0.2:
            data[rng.randrange(len(data) + 1):rng.randrange(len(data) + 1)] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif roll < 0.5:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif roll < 0.7:
            del data[rng.randrange(len(data)):][:rng.randrange(1, 8)]
        elif roll < 0.8:
            data = data[:rng.randrange(len(data))]
        else:
            i = rng.randrange(len(data))
            data[i:i] = data[i:i + rng.randrange(1, 32)] * rng.randrange(1, 4)
    return bytes(data)


def random_path(rng, template):
    values = {"c": KEPT, "f": "f", "n": rng.choice(["n", "n2", "", "%00", "a" * 300, "../c", "c%2Fx"]),
              "id": rng.choice(["1", "0", "-1", "18446744073709551616", "abc", "6f1c0d5e-0d1f-4c25-9c1a-5d1f6f7e8a9b", "%ff"])}
    if rng.random() < 0.1:
        values["c"] = rng.choice(["nope", "f", "%20"])
    path = template.format(**values)
    if rng.random() < 0.15:
        path += ("&" if "?" in path else "?") + rng.choice(["wait=maybe", "timeout=-1", "timeout=0", "consistency=xyz",
                                                            "consistency=0", "ordering=strong", "timeout=99999999999999999999"])
    return path


def check_rest(response):
    request = f"{response.request.method} {response.request.url} {(response.request.body or b'')[:300]!r}"
    assert response.status_code < 500, (request, response.status_code, response.text[:500])
    if response.status_code == 404 and not response.content:
        return  # no route has the path: an empty 404, as Qdrant's server answers it
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            raise AssertionError((request, response.status_code, response.text[:500], dict(response.headers)))
        assert isinstance(body["status"]["error"], str) and body["status"]["error"], body
        assert isinstance(body["time"], (int, float)), body


def snapshot_of_kept(node):
    points = node.post(f"/collections/{KEPT}/points/scroll", json={"limit": 1000, "with_payload": True, "with_vector": True}).json()["result"]["points"]
    info = node.get(f"/collections/{KEPT}").json()["result"]
    return sorted(points, key=lambda p: p["id"]), info["points_count"], sorted(info["payload_schema"])


GRPC_CALLS = [
    ("/qdrant.Points/Search", "qdrant.SearchPoints", {"collection_name": KEPT, "vector": V, "limit": 3}),
    ("/qdrant.Points/Query", "qdrant.QueryPoints", {"collection_name": KEPT, "limit": 3}),
    ("/qdrant.Points/Scroll", "qdrant.ScrollPoints", {"collection_name": KEPT, "limit": 3}),
    ("/qdrant.Points/Count", "qdrant.CountPoints", {"collection_name": KEPT, "exact": True}),
    ("/qdrant.Points/Get", "qdrant.GetPoints", {"collection_name": KEPT}),
    ("/qdrant.Points/Upsert", "qdrant.UpsertPoints", {"collection_name": "f", "wait": True}),
    ("/qdrant.Points/Delete", "qdrant.DeletePoints", {"collection_name": "f", "wait": True}),
    ("/qdrant.Points/SetPayload", "qdrant.SetPayloadPoints", {"collection_name": "f", "wait": True}),
    ("/qdrant.Points/Facet", "qdrant.FacetCounts", {"collection_name": KEPT, "key": "g"}),
    ("/qdrant.Collections/Get", "qdrant.GetCollectionInfoRequest", {"collection_name": KEPT}),
    ("/qdrant.Collections/Create", "qdrant.CreateCollection", {"collection_name": "n"}),
    ("/qdrant.Collections/Update", "qdrant.UpdateCollection", {"collection_name": "f"}),
]


def grpc_messages(pool):
    """A valid message for each call, with the fields a real client sets."""
    messages = []
    for method, name, fields in GRPC_CALLS:
        message = pool(name)(**fields)
        if name == "qdrant.QueryPoints":
            message.query.nearest.dense.data.extend(V)
            message.filter.must.add().field.key = "g"
            message.filter.must[0].field.match.keyword = "x"
        elif name == "qdrant.GetPoints":
            message.ids.add().num = 1
            message.with_vectors.enable = True
        elif name == "qdrant.UpsertPoints":
            point = message.points.add()
            point.id.num = 7
            point.vectors.vector.dense.data.extend(V)
            point.payload["g"].string_value = "y"
        elif name == "qdrant.DeletePoints":
            message.points.points.ids.add().num = 7
        elif name == "qdrant.SetPayloadPoints":
            message.payload["n"].integer_value = 4
            message.points_selector.points.ids.add().num = 7
        elif name == "qdrant.CreateCollection":
            message.vectors_config.params.size = 4
            message.vectors_config.params.distance = 3
        messages.append((method, message.SerializeToString()))
    return messages


def test_random_and_mutated_requests_never_crash_hang_or_corrupt(make_node, pool):
    node = make_node()
    rng = random.Random(SEED)
    for name in (KEPT, "f"):
        node.put(f"/collections/{name}", json={"vectors": {"size": 4, "distance": "Dot"}}).raise_for_status()
        node.put(f"/collections/{name}/points?wait=true", json={"points": [
            {"id": i, "vector": [float(i % 5), 1.0, 0.5, float(i % 3)], "payload": {"g": "xyz"[i % 3], "n": i, "t": f"2024-01-{1 + i % 28:02d}"}}
            for i in range(1, 60)]}).raise_for_status()
        node.put(f"/collections/{name}/index?wait=true", json={"field_name": "n", "field_schema": "integer"}).raise_for_status()
        node.put(f"/collections/{name}/index?wait=true", json={"field_name": "g", "field_schema": "keyword"}).raise_for_status()
    before = snapshot_of_kept(node)
    messages = grpc_messages(pool)
    channel = grpc.insecure_channel(f"127.0.0.1:{node.grpc_port}")
    statuses = Counter()
    tried = 0
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        tried += 1
        if rng.random() < 0.75:
            method, template, body = rng.choice(ROUTES)
            path = random_path(rng, template)
            roll = rng.random()
            if body is None or roll < 0.6:
                data = json.dumps(mutate_json(rng, body) if body is not None and rng.random() < 0.9 else random_json(rng)).encode()
            elif roll < 0.95:
                data = mutate_bytes(rng, json.dumps(body).encode())
            else:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            headers = {"content-type": rng.choice(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"])}
            try:
                response = requests.request(method, node.url + path, data=data, headers=headers, timeout=15)
            except requests.Timeout:
                raise AssertionError(f"no answer in 15 s to {method} {path} {data[:300]!r}")
            statuses[f"REST {response.status_code}"] += 1
            check_rest(response)
        else:
            method, valid = rng.choice(messages)
            data = mutate_bytes(rng, valid) if rng.random() < 0.9 else bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            try:
                channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)(data, timeout=15)
                statuses["gRPC OK"] += 1
            except grpc.RpcError as e:
                statuses[f"gRPC {e.code().name}"] += 1
                assert e.code() != grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer in 15 s to {method} {data[:300]!r}"
                assert e.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE), (method, e.code(), e.details())
                if e.code() == grpc.StatusCode.INTERNAL:
                    assert e.details().startswith(("failed to decode Protobuf message", "Error decompressing")), (method, e.details())
        assert node.proc.poll() is None, f"the server exited ({node.proc.returncode}) after {tried} requests"
    print(f"\nfuzz: seed {SEED}, {SECONDS:.0f} s, {tried} requests, {dict(sorted(statuses.items()))}")
    assert tried > 100
    assert snapshot_of_kept(node) == before
    assert node.stop() == 0
    node.start()
    assert snapshot_of_kept(node) == before
    log = node.log()
    assert "Fatal error" not in log and "Segmentation fault" not in log
