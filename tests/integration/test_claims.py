"""Behaviours the README states that no other test exercises through the running server: query
forms (`nearest`, `order_by`, `lookup_from`), the `uuid` payload index, geo-polygon interiors,
`m: 0`, `indexing_threshold: 0`, product and turbo quantization, `completed_limit`, PATCH of
storage modes without rewriting segments, the multilingual tokenizer, and damaged files at
start-up."""

import json
import os
import random
import uuid

from qdrant_client import models

from test_segments import wait_green
from test_vector_index import client_for


def test_query_forms_and_lookup_from(node):
    client = client_for(node)
    for name in ("a", "b"):
        client.create_collection(name, vectors_config={"v": models.VectorParams(size=3, distance=models.Distance.DOT)})
    client.upsert("a", points=[models.PointStruct(id=i, vector={"v": [1, i, 0]}, payload={"rank": 10 - i}) for i in range(10)])
    client.upsert("b", points=[models.PointStruct(id=100, vector={"v": [0, 1, 0]})])
    plain = node.post("/collections/a/points/query", json={"query": [0, 1, 0], "using": "v", "limit": 3}).json()["result"]["points"]
    nearest = node.post("/collections/a/points/query", json={"query": {"nearest": [0, 1, 0]}, "using": "v", "limit": 3}).json()["result"]["points"]
    assert [p["id"] for p in nearest] == [p["id"] for p in plain] == [9, 8, 7]
    # By a point of another collection: that point's vector, and no point is left out.
    looked_up = node.post("/collections/a/points/query", json={"query": 100, "using": "v", "limit": 3,
                                                                "lookup_from": {"collection": "b", "vector": "v"}}).json()["result"]["points"]
    assert [p["id"] for p in looked_up] == [9, 8, 7]
    # By a point of this collection: that point is left out.
    own = node.post("/collections/a/points/query", json={"query": 9, "using": "v", "limit": 2}).json()["result"]["points"]
    assert [p["id"] for p in own] == [8, 7]
    r = node.post("/collections/a/points/query", json={"query": 100, "using": "v", "lookup_from": {"collection": "missing"}})
    assert r.status_code == 404
    node.put("/collections/a/index?wait=true", json={"field_name": "rank", "field_schema": "integer"})
    ordered = node.post("/collections/a/points/query", json={"query": {"order_by": {"key": "rank", "direction": "desc"}},
                                                              "limit": 3, "with_payload": True}).json()["result"]["points"]
    assert [p["payload"]["rank"] for p in ordered] == [10, 9, 8]


def test_uuid_index_and_polygon_interiors(node):
    client = client_for(node)
    client.create_collection("u", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    ids = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(50)]
    client.upsert("u", points=[models.PointStruct(id=i, vector=[1, 0], payload={"ref": ids[i], "at": {"lon": i % 10, "lat": i // 10}})
                               for i in range(50)])
    assert node.put("/collections/u/index?wait=true", json={"field_name": "ref", "field_schema": "uuid"}).status_code == 200
    assert node.put("/collections/u/index?wait=true", json={"field_name": "at", "field_schema": "geo"}).status_code == 200
    info = client.get_collection("u")
    assert info.payload_schema["ref"].data_type == models.PayloadSchemaType.UUID and info.payload_schema["ref"].points == 50
    match = models.Filter(must=[models.FieldCondition(key="ref", match=models.MatchAny(any=[ids[3], ids[7], ids[7].upper()]))])
    assert sorted(p.id for p in client.scroll("u", scroll_filter=match, limit=100)[0]) == [3, 7]
    square = [models.GeoPoint(lon=lon, lat=lat) for lon, lat in [(-0.5, -0.5), (9.5, -0.5), (9.5, 4.5), (-0.5, 4.5), (-0.5, -0.5)]]
    hole = [models.GeoPoint(lon=lon, lat=lat) for lon, lat in [(2.5, 0.5), (5.5, 0.5), (5.5, 2.5), (2.5, 2.5), (2.5, 0.5)]]
    polygon = models.Filter(must=[models.FieldCondition(key="at", geo_polygon=models.GeoPolygon(
        exterior=models.GeoLineString(points=square), interiors=[models.GeoLineString(points=hole)]))])
    inside = {p.id for p in client.scroll("u", scroll_filter=polygon, limit=100)[0]}
    in_hole = {i for i in range(50) if 3 <= i % 10 <= 5 and 1 <= i // 10 <= 2}
    assert inside == set(range(50)) - in_hole and len(in_hole) == 6


def test_m_zero_builds_no_graph_and_quantization_methods_through_the_server(node):
    client = client_for(node)
    rng = random.Random(5)
    vectors = [[rng.uniform(-1, 1) for _ in range(16)] for _ in range(1500)]
    queries = vectors[:20]
    configs = {
        "nograph": dict(hnsw_config=models.HnswConfigDiff(m=0)),
        "product": dict(quantization_config=models.ProductQuantization(product=models.ProductQuantizationConfig(
            compression=models.CompressionRatio.X4))),
        "turbo": dict(quantization_config={"turbo": {"bits": "bits4"}}),
    }
    for name, extra in configs.items():
        if name == "turbo":
            r = node.put(f"/collections/{name}", json={"vectors": {"size": 16, "distance": "Euclid"},
                                                         "optimizers_config": {"indexing_threshold": 20}, **extra})
            assert r.status_code == 200, r.text
        else:
            client.create_collection(name, vectors_config=models.VectorParams(size=16, distance=models.Distance.EUCLID),
                                     optimizers_config=models.OptimizersConfigDiff(indexing_threshold=20), **extra)
        for start in range(0, 1500, 500):
            client.upsert(name, points=[models.PointStruct(id=i, vector=vectors[i]) for i in range(start, start + 500)])
        wait_green(client, name, timeout=120)
    files = {name: sorted(p.name for p in (node.workdir / "storage" / "collections" / name).rglob("*.bin")
                          if p.name.startswith(("hnsw-", "quant-"))) for name in configs}
    manifests = [p.read_text() for p in (node.workdir / "storage" / "collections" / "nograph").rglob("manifest.json")]
    assert any('"immutable"' in m for m in manifests), "no segment was sealed, so the absence of a graph means nothing"
    assert not any(f.startswith("hnsw-") for f in files["nograph"]), files["nograph"]
    assert any(f.startswith("quant-0-pq-") for f in files["product"]), files["product"]
    assert any(f.startswith("quant-0-scalar-") for f in files["turbo"]), files["turbo"]
    for name in configs:
        found = wanted = 0
        for q in queries:
            exact = {p.id for p in client.query_points(name, query=q, limit=10, search_params=models.SearchParams(exact=True)).points}
            got = client.query_points(name, query=q, limit=10, search_params=models.SearchParams(
                hnsw_ef=128, quantization=models.QuantizationSearchParams(rescore=True, oversampling=4.0))).points
            found += len(exact & {p.id for p in got})
            wanted += len(exact)
        assert found / wanted >= 0.9, (name, found / wanted)


def test_indexing_threshold_zero_seals_at_max_segment_size_without_a_graph(node):
    client = client_for(node)
    # 8-d float32 vectors are 32 bytes: a 10 KB segment holds 320 of them.
    client.create_collection("z", vectors_config=models.VectorParams(size=8, distance=models.Distance.EUCLID),
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=0, max_segment_size=10,
                                                                           default_segment_number=8))
    rng = random.Random(3)
    vectors = [[rng.uniform(-1, 1) for _ in range(8)] for _ in range(1000)]

    def segments():
        telemetry = node.get("/telemetry?details_level=4").json()["result"]
        return [s["info"] for s in telemetry["collections"]["collections"][0]["shards"][0]["local"]["segments"]]

    for start in range(0, 1000, 250):
        client.upsert("z", points=[models.PointStruct(id=i, vector=vectors[i]) for i in range(start, start + 250)])
        wait_green(client, "z", timeout=120)
        sealed = [s for s in segments() if not s["is_appendable"]]
        if start == 0:
            assert sealed == [], "8 KB of vectors were sealed below max_segment_size"
    assert sealed, "no segment was sealed at max_segment_size"
    assert all(s["segment_type"] == "plain" and s["num_indexed_vectors"] == 0 for s in sealed), sealed
    assert sum(s["num_points"] for s in segments()) == 1000
    files = [p.name for p in (node.workdir / "storage" / "collections" / "z").rglob("hnsw-*")]
    assert files == []
    q = vectors[7]
    exact = [p.id for p in client.query_points("z", query=q, limit=5, search_params=models.SearchParams(exact=True)).points]
    assert [p.id for p in client.query_points("z", query=q, limit=5).points] == exact and exact[0] == 7


def test_multilingual_text_index_through_the_server(node):
    node.put("/collections/t", json={"vectors": {"size": 2, "distance": "Dot"}})
    docs = {1: "我爱北京天安门", 2: "Café au lait, s'il vous plaît", 3: "これはテストです", 4: "มาทำงานกันเถอะ", 5: "data-driven e-mail"}
    points = [{"id": i, "vector": [1, i], "payload": {"text": t}} for i, t in docs.items()]
    assert node.put("/collections/t/points?wait=true", json={"points": points}).status_code == 200
    r = node.put("/collections/t/index?wait=true", json={"field_name": "text", "field_schema": {"type": "text", "tokenizer": "multilingual"}})
    assert r.status_code == 200, r.text

    def found(condition):
        body = {"filter": {"must": [{"key": "text", "match": condition}]}, "limit": 10}
        return sorted(p["id"] for p in node.post("/collections/t/points/scroll", json=body).json()["result"]["points"])

    assert found({"text": "北京"}) == [1]          # a word inside unspaced Chinese
    assert found({"text": "cafe"}) == [2]          # diacritics dropped, lowercase
    assert found({"text": "テスト"}) == [3]
    assert found({"text": "ทำงาน"}) == [4]          # normalised the same way on both sides
    assert found({"text": "driven mail"}) == [5]
    assert found({"text": "天安"}) == []             # not a word of its own
    # The word tokenizer, by contrast, sees the Chinese sentence as one token.
    node.put("/collections/w", json={"vectors": {"size": 2, "distance": "Dot"}})
    node.put("/collections/w/points?wait=true", json={"points": points})
    node.put("/collections/w/index?wait=true", json={"field_name": "text", "field_schema": {"type": "text", "tokenizer": "word"}})
    body = {"filter": {"must": [{"key": "text", "match": {"text": "北京"}}]}, "limit": 10}
    assert node.post("/collections/w/points/scroll", json=body).json()["result"]["points"] == []


def test_completed_limit_and_patch_without_rewriting(node):
    client = client_for(node)
    client.create_collection("p", vectors_config=models.VectorParams(size=8, distance=models.Distance.DOT, on_disk=False),
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10, default_segment_number=1))
    rng = random.Random(9)
    for start in range(0, 3000, 1000):
        client.upsert("p", points=[models.PointStruct(id=i, vector=[rng.uniform(-1, 1) for _ in range(8)], payload={"i": i})
                                   for i in range(start, start + 1000)])
        wait_green(client, "p", timeout=120)  # each batch is sealed on its own, then merged
    everything = node.get("/collections/p/optimizations?with=completed").json()["result"]
    assert len(everything["completed"]) >= 2
    one = node.get("/collections/p/optimizations?with=completed&completed_limit=1").json()["result"]
    assert len(one["completed"]) == 1
    segment_files = sorted(p for p in (node.workdir / "storage" / "collections" / "p").rglob("*") if p.is_file() and "segments" in p.parts)
    before = {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in segment_files if "wal" not in p.parts}
    results = client.query_points("p", query=[1] * 8, limit=5, with_payload=True).points
    r = node.patch("/collections/p", json={"on_disk_payload": True, "hnsw_config": {"on_disk": True}})
    assert r.status_code == 200, r.text
    config = wait_green(client, "p", timeout=120).config  # anything the PATCH started has finished
    assert config.params.on_disk_payload is True and config.hnsw_config.on_disk is True
    # The immutable segments' files are reopened in the new mode, not rewritten.
    after = {name: value for name, value in ((str(p), (p.stat().st_ino, p.stat().st_mtime_ns)) for p in segment_files if p.exists())}
    immutable = [name for name in before if name.endswith(("payload.bin", "payload-index.bin")) or os.path.basename(name).startswith("hnsw-")]
    assert immutable, "no immutable segment files to check"
    assert all(after.get(name) == before[name] for name in immutable)
    assert client.query_points("p", query=[1] * 8, limit=5, with_payload=True).points == results


def test_damaged_files_stop_start_up_with_a_message(make_node):
    node = make_node()
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}, "optimizers_config": {"flush_interval_sec": 3600}})
    for start in range(0, 300, 100):
        r = node.put("/collections/c/points?wait=true", json={"points": [{"id": i, "vector": [i, 1]} for i in range(start, start + 100)]})
        assert r.status_code == 200
    node.kill()
    # A damaged WAL record before the last one: start-up stops and names the file.
    wal_files = sorted(p for p in (node.workdir / "storage" / "collections" / "c").rglob("*") if p.is_file() and "wal" in p.parts)
    damaged = max(wal_files, key=lambda p: p.stat().st_size)
    data = bytearray(damaged.read_bytes())
    data[64] ^= 0xFF
    damaged.write_bytes(bytes(data))
    proc = node.spawn()
    assert proc.wait(timeout=60) != 0
    assert damaged.name in node.log()
    # A damaged collection config.json, likewise.
    other = make_node(subdir="second")
    other.put("/collections/d", json={"vectors": {"size": 2, "distance": "Dot"}})
    assert other.stop() == 0
    config = other.workdir / "storage" / "collections" / "d" / "config.json"
    config.write_text("{ not json")
    proc = other.spawn()
    assert proc.wait(timeout=60) != 0
    assert "config.json" in other.log() and "damaged" in other.log()


def test_small_promises_of_the_feature_table(node):
    def error(r):
        return r.json()["status"]["error"]

    node.put("/collections/s", json={"vectors": {"size": 2, "distance": "Dot"}})
    points = [{"id": i, "vector": [1, 0], "payload": {"kw": f"k{i % 3}", "flag": i % 2 == 0, "n": i, "txt": "a b",
                                                      "u": str(uuid.UUID(int=i % 2 + 1)), "geo": {"lon": 1, "lat": 1}}}
              for i in range(1, 7)]
    assert node.put("/collections/s/points?wait=true", json={"points": points}).status_code == 200
    for field, schema in [("kw", "keyword"), ("flag", "bool"), ("u", "uuid"), ("geo", "geo"), ("txt", "text"),
                          ("n", {"type": "integer", "lookup": True, "range": False, "is_principal": True, "on_disk": True})]:
        r = node.put("/collections/s/index?wait=true", json={"field_name": field, "field_schema": schema})
        assert r.status_code == 200, (field, r.text)
    r = node.put("/collections/s/index?wait=true", json={"field_name": "t2", "field_schema": {"type": "keyword", "is_tenant": True,
                                                                                             "on_disk": True}})
    assert r.status_code == 200, r.text

    # Ties go to the smaller id (every point has the same vector).
    hits = node.post("/collections/s/points/query", json={"query": [1, 0], "limit": 4}).json()["result"]["points"]
    assert [h["id"] for h in hits] == [1, 2, 3, 4]
    # A ring that is not closed, and conditions an index cannot serve, are 400s naming the field.
    ring = {"exterior": {"points": [{"lon": 0, "lat": 0}, {"lon": 1, "lat": 0}, {"lon": 1, "lat": 1}, {"lon": 0, "lat": 1}]}}
    r = node.post("/collections/s/points/scroll", json={"filter": {"must": [{"key": "geo", "geo_polygon": ring}]}})
    assert r.status_code == 400 and "geo_polygon" in error(r), r.text
    for field in ["kw", "flag", "u", "geo", "txt"]:
        r = node.post("/collections/s/points/count", json={"filter": {"must": [{"key": field, "range": {"gt": 1}}]}})
        assert r.status_code == 400 and field in error(r), (field, r.text)
    r = node.post("/collections/s/points/count", json={"filter": {"must": [{"key": "kw", "geo_radius": {
        "center": {"lon": 0, "lat": 0}, "radius": 10}}]}})
    assert r.status_code == 400 and "kw" in error(r), r.text
    # order_by needs a range-capable index; facets count bool and uuid values exactly.
    r = node.post("/collections/s/points/scroll", json={"order_by": "n"})
    assert r.status_code == 400 and "n" in error(r), r.text
    facet = node.post("/collections/s/facet", json={"key": "flag"}).json()["result"]["hits"]
    assert sorted((h["value"], h["count"]) for h in facet) == [(False, 3), (True, 3)]
    facet = node.post("/collections/s/facet", json={"key": "u"}).json()["result"]["hits"]
    assert sorted(h["count"] for h in facet) == [3, 3]
    # Stopword and stemmer languages Quiver has no list or stemmer for are refused naming the language.
    r = node.put("/collections/s/index", json={"field_name": "x", "field_schema": {"type": "text", "stopwords": "romanian"}})
    assert r.status_code in (400, 422) and "romanian" in error(r), r.text
    r = node.put("/collections/s/index", json={"field_name": "x", "field_schema": {
        "type": "text", "stemmer": {"type": "snowball", "language": "armenian"}}})
    assert r.status_code in (400, 422) and "armenian" in error(r), r.text

    # Consistency and ordering parameters are accepted; indexed_only and acorn too.
    for ordering in ["weak", "medium", "strong"]:
        r = node.put(f"/collections/s/points?wait=true&ordering={ordering}", json={"points": points[:1]})
        assert r.status_code == 200, r.text
    for consistency in ["all", "majority", "quorum", "2"]:
        r = node.post(f"/collections/s/points/count?consistency={consistency}", json={})
        assert r.status_code == 200 and r.json()["result"]["count"] == 6, r.text
    for bad in ["most", "0", "-1"]:
        r = node.post(f"/collections/s/points/count?consistency={bad}", json={})
        assert r.status_code == 400 and "consistency" in error(r), r.text
    r = node.post("/collections/s/points/query", json={"query": [1, 0], "params": {"indexed_only": True, "acorn": {"enable": True}}})
    assert r.status_code == 200, r.text

    # A formula needs prefetches to rescore; every other query kind works on its own, and vector
    # kinds the collection lacks are clear 400s.
    r = node.post("/collections/s/points/query", json={"query": {"formula": {"sum": ["$score"]}}})
    assert r.status_code == 400 and "prefetch" in error(r), r.text
    for query in [{"discover": {"target": [1, 0], "context": []}}, {"context": []}, {"recommend": {"positive": [[1, 0]]}},
                  {"sample": "random"}, {"nearest": [1, 0], "mmr": {"diversity": 0.5}}]:
        r = node.post("/collections/s/points/query", json={"query": query})
        assert r.status_code == 200 and r.json()["result"]["points"], (query, r.text)
    r = node.post("/collections/s/points/query", json={"prefetch": [{"query": [1, 0]}, {"query": [0, 1]}], "query": {"fusion": "rrf"}})
    assert r.status_code == 200 and r.json()["result"]["points"], r.text
    r = node.put("/collections/s/points", json={"points": [{"id": 9, "vector": {"sp": {"indices": [1], "values": [0.5]}}}]})
    assert r.status_code == 400, r.text
    r = node.put("/collections/s/points", json={"points": [{"id": 9, "vector": [[1, 0], [0, 1]]}]})
    assert r.status_code == 400 and "Conversion between multi and regular vectors failed" in error(r), r.text
    assert node.post("/collections/s/points/count", json={}).json()["result"]["count"] == 6

    # Every point, search and index endpoint accepts an alias.
    node.post("/collections/aliases", json={"actions": [{"create_alias": {"collection_name": "s", "alias_name": "sa"}}]})
    assert node.put("/collections/sa/points?wait=true", json={"points": [{"id": 50, "vector": [0, 1]}]}).status_code == 200
    assert node.get("/collections/sa/points/50").json()["result"]["id"] == 50
    assert node.post("/collections/sa/points/search", json={"vector": [0, 1], "limit": 1}).json()["result"][0]["id"] == 50
    assert node.put("/collections/sa/index?wait=true", json={"field_name": "z", "field_schema": "keyword"}).status_code == 200
    assert "z" in node.get("/collections/s").json()["result"]["payload_schema"]
    assert node.post("/collections/sa/points/delete?wait=true", json={"points": [50]}).status_code == 200

    # The files the README names: where the shards are, the payload indexes, compact JSON payloads.
    directory = node.workdir / "storage" / "collections" / "s"
    layout = json.loads((directory / "shards.json").read_text())
    assert [shard["id"] for shard in layout] == [0]
    assert {"kw", "flag", "u", "geo", "txt", "n", "t2", "z"} <= set(json.loads((directory / "payload_index.json").read_text()))

    # Failures (5xx) are counted apart from other responses; client errors are not failures.
    metrics = node.get("/metrics").text
    line = 'rest_responses_fail_total{method="POST",endpoint="/collections/{collection_name}/points/count",status="400"} 0'
    assert line in metrics
