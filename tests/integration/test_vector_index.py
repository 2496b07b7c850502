"""The vector index through the real server: HNSW graphs built by the optimizer in the
background while searches and writes go on, quantized codes with rescoring, PATCH of the
quantization, and graphs reloaded from their files after a crash."""

import random
import threading
import time

import pytest
import requests
from qdrant_client import models

from test_segments import wait_green

DIM = 32


def client_for(node):
    return node.client(timeout=30)


def clustered(n, seed):
    rng = random.Random(seed)
    centres = [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(30)]
    return [[c + rng.uniform(-0.25, 0.25) for c in centres[rng.randrange(30)]] for _ in range(n)]


def create(client, **extra):
    # 100 KB of 32-d float32 vectors is 800 points: the upload below seals several segments.
    client.create_collection(
        "c", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=100, default_segment_number=2),
        hnsw_config=models.HnswConfigDiff(m=16, ef_construct=64), **extra)


def upload(client, vectors):
    for start in range(0, len(vectors), 500):
        client.upsert("c", wait=True, points=[
            models.PointStruct(id=i, vector=vectors[i], payload={"cat": f"c{i % 10}"})
            for i in range(start, min(len(vectors), start + 500))])


def recall(client, queries, **params):
    found = wanted = 0
    for q in queries:
        exact = {p.id for p in client.query_points("c", query=q, limit=10, search_params=models.SearchParams(exact=True)).points}
        approximate = client.query_points("c", query=q, limit=10, search_params=models.SearchParams(**params)).points
        found += len(exact & {p.id for p in approximate})
        wanted += len(exact)
    return found / wanted


def index_files(node, prefix):
    return sorted(p.name for p in (node.workdir / "storage").rglob(f"{prefix}-*.bin"))


@pytest.mark.qdrant_client
def test_graphs_are_built_in_the_background_while_searches_go_on(node):
    client = client_for(node)
    create(client)
    vectors = clustered(6000, seed=1)
    queries = clustered(30, seed=2)
    errors, searched = [], [0]
    done = threading.Event()

    def search_meanwhile():
        other = client_for(node)
        while not done.is_set():
            try:
                query = queries[searched[0] % 30]
                hits = other.query_points("c", query=query, limit=5).points
                # Euclid scores are distances, ascending, each the distance to that point.
                assert len(hits) <= 5 and [h.score for h in hits] == sorted(h.score for h in hits)
                for h in hits:
                    distance = sum((a - b) ** 2 for a, b in zip(query, vectors[h.id])) ** 0.5
                    assert abs(h.score - distance) <= 1e-4 * max(1.0, distance), (h.id, h.score, distance)
                searched[0] += 1
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)
                return

    reader = threading.Thread(target=search_meanwhile)
    reader.start()
    try:
        upload(client, vectors)
        info = wait_green(client, timeout=120)
    finally:
        done.set()
        reader.join()
    assert not errors, errors
    assert searched[0] > 0
    assert info.points_count == 6000
    assert index_files(node, "hnsw"), "the optimizer wrote graph files"
    # The points in graphs: all but those of the appendable segment (under 800 points).
    assert 6000 - 800 < info.indexed_vectors_count <= 6000, info.indexed_vectors_count
    # Clustered 32-d points with noise are close together: the default beam (ef_construct 64)
    # finds most, a wider one nearly all.
    assert recall(client, queries) >= 0.8
    assert recall(client, queries, hnsw_ef=256) >= 0.95
    # A filter on an indexed keyword walks the graph (10% of each segment is above a
    # full_scan_threshold of 10 KB = 80 points) and returns only matches.
    client.create_payload_index("c", "cat", models.PayloadSchemaType.KEYWORD, wait=True)
    client.update_collection("c", hnsw_config=models.HnswConfigDiff(full_scan_threshold=10))
    flt = models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="c3"))])
    for q in queries[:10]:
        exact = client.query_points("c", query=q, query_filter=flt, limit=10, with_payload=True,
                                    search_params=models.SearchParams(exact=True)).points
        approximate = client.query_points("c", query=q, query_filter=flt, limit=10, with_payload=True).points
        assert all(p.payload["cat"] == "c3" for p in approximate)
        assert len({p.id for p in exact} & {p.id for p in approximate}) >= 9
    # Writes during and after indexing are searchable at once.
    client.upsert("c", wait=True, points=[models.PointStruct(id=99_999, vector=queries[0], payload={"cat": "new"})])
    assert client.query_points("c", query=queries[0], limit=1).points[0].id == 99_999


@pytest.mark.qdrant_client
def test_quantization_rescoring_and_patch(node, openapi):
    client = client_for(node)
    create(client, quantization_config=models.ScalarQuantization(
        scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)))
    vectors = clustered(4000, seed=3)
    queries = clustered(30, seed=4)
    upload(client, vectors)
    wait_green(client, timeout=120)
    assert any(name.startswith("quant-0-scalar") for name in index_files(node, "quant"))
    rescored = models.QuantizationSearchParams(rescore=True, oversampling=2.0)
    assert recall(client, queries, hnsw_ef=256, quantization=rescored) >= 0.95
    assert recall(client, queries, hnsw_ef=256, quantization=models.QuantizationSearchParams(ignore=True)) >= 0.95
    # A bad oversampling is a 400 in Qdrant's error shape.
    r = requests.post(f"{node.url}/collections/c/points/query",
                      json={"query": queries[0], "params": {"quantization": {"oversampling": 0.5}}})
    assert r.status_code == 400
    openapi.validate(r)
    assert "oversampling" in r.json()["status"]["error"]
    # Another method: the segments are re-indexed with binary codes and the collection is green again.
    client.update_collection("c", quantization_config=models.BinaryQuantization(binary=models.BinaryQuantizationConfig()))
    assert client.get_collection("c").config.quantization_config.binary is not None
    wait_green(client, timeout=120)
    names = index_files(node, "quant")
    assert names and all(name.startswith("quant-0-binary") for name in names)
    # One bit per element of 32-d points says little (Qdrant advises binary codes for high
    # dimensions): the points of one cluster (about 130) mostly share their codes, so a plain
    # walk on the codes finds few true neighbours, and rescoring more candidates by the original
    # vectors finds more (measured: 0.06 plain, 0.61 with 300 candidates, 0.84 with 1,000); scores
    # are always the original vectors' distances. `ignore` walks the graph on the original vectors.
    def binary(oversampling, rescore=True):
        params = models.QuantizationSearchParams(oversampling=oversampling, rescore=rescore)
        return recall(client, queries, hnsw_ef=512, quantization=params)
    plain, rescored, more = binary(1.0, rescore=False), binary(30.0), binary(100.0)
    print(f"binary codes: recall {plain:.3f} without rescoring, {rescored:.3f} rescoring 300 candidates, {more:.3f} rescoring 1000")
    assert plain < 0.3 and rescored >= 0.5 and more >= 0.75 and plain < rescored < more, (plain, rescored, more)
    for q in queries[:5]:
        hits = client.query_points("c", query=q, limit=10, search_params=models.SearchParams(
            hnsw_ef=512, quantization=models.QuantizationSearchParams(oversampling=30.0)), with_vectors=True).points
        assert [p.score for p in hits] == sorted(p.score for p in hits)
        for p in hits:
            distance = sum((a - b) ** 2 for a, b in zip(q, p.vector)) ** 0.5
            assert abs(p.score - distance) <= 1e-4 * max(1.0, distance)
    assert recall(client, queries, hnsw_ef=256, quantization=models.QuantizationSearchParams(ignore=True)) >= 0.95
    client.update_collection("c", quantization_config=models.Disabled.DISABLED)
    wait_green(client, timeout=120)
    assert index_files(node, "quant") == []


@pytest.mark.qdrant_client
def test_graphs_are_reloaded_after_a_crash(node):
    client = client_for(node)
    create(client)
    vectors = clustered(3000, seed=5)
    queries = clustered(10, seed=6)
    upload(client, vectors)
    wait_green(client, timeout=120)
    before = [[p.id for p in client.query_points("c", query=q, limit=10).points] for q in queries]
    files = index_files(node, "hnsw")
    node.kill()
    node.start()
    client = client_for(node)
    # The graphs come from their files: nothing is planned, and searches answer the same.
    assert client.get_collection("c").status == models.CollectionStatus.GREEN
    assert index_files(node, "hnsw") == files
    assert [[p.id for p in client.query_points("c", query=q, limit=10).points] for q in queries] == before


@pytest.mark.qdrant_client
def test_write_segment_below_the_threshold_is_indexed_once_writes_pause(node):
    client = client_for(node)
    create(client)
    vectors = clustered(600, seed=9)
    queries = clustered(20, seed=10)
    # 600 points are 75 KB, under the 100 KB threshold but over a tenth of it: once writes pause,
    # the optimizer indexes them all the same, so no search scans them.
    upload(client, vectors)
    deadline = time.time() + 60
    while (info := client.get_collection("c")).indexed_vectors_count < 600 and time.time() < deadline:
        time.sleep(0.2)
    info = wait_green(client, timeout=60)
    assert info.points_count == 600 and info.indexed_vectors_count == 600, info
    assert index_files(node, "hnsw")
    assert recall(client, queries, hnsw_ef=128) >= 0.95


@pytest.mark.qdrant_client
def test_indexed_only_leaves_out_large_unindexed_segments(node, openapi):
    client = client_for(node)
    # Optimizations off: the 2,000 points (250 KB) stay in the appendable segment, unindexed and
    # larger than both thresholds (100 KB indexing, 10 KB full scan).
    create(client)
    client.update_collection("c", optimizers_config=models.OptimizersConfigDiff(max_optimization_threads=0),
                             hnsw_config=models.HnswConfigDiff(full_scan_threshold=10))
    vectors = clustered(2000, seed=11)
    upload(client, vectors)
    client.create_payload_index("c", "cat", models.PayloadSchemaType.KEYWORD, wait=True)
    query = vectors[7]
    assert client.query_points("c", query=query, limit=3).points[0].id == 7
    only = models.SearchParams(indexed_only=True)
    assert client.query_points("c", query=query, limit=3, search_params=only).points == []
    r = requests.post(f"{node.url}/collections/c/points/search",
                      json={"vector": query, "limit": 3, "params": {"indexed_only": True}})
    assert r.status_code == 200 and r.json()["result"] == []
    openapi.validate(r)
    # A filter whose indexed candidates (200 points, 25 KB) are cheap to scan searches the segment.
    flt = models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="c7"))])
    hits = client.query_points("c", query=query, query_filter=flt, limit=3, search_params=only).points
    assert [h.id for h in hits][:1] == [7]


@pytest.mark.qdrant_client
def test_acorn_search_params(node, openapi):
    client = client_for(node)
    create(client)
    # No payload links, and a full_scan_threshold of 10 KB (80 points): a filter passing 20% of
    # a segment's points (160 of 800) walks the graphs, by ACORN under a max_selectivity of 0.5.
    client.update_collection("c", hnsw_config=models.HnswConfigDiff(full_scan_threshold=10, payload_m=0))
    vectors = clustered(4000, seed=12)
    upload(client, vectors)
    client.create_payload_index("c", "cat", models.PayloadSchemaType.KEYWORD, wait=True)
    wait_green(client, timeout=120)
    flt = models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchAny(any=["c3", "c4"]))])
    acorn = models.SearchParams(hnsw_ef=128, acorn=models.AcornSearchParams(enable=True, max_selectivity=0.5))
    found = wanted = 0
    for q in clustered(10, seed=13):
        exact = {p.id for p in client.query_points("c", query=q, query_filter=flt, limit=10,
                                                    search_params=models.SearchParams(exact=True)).points}
        hits = client.query_points("c", query=q, query_filter=flt, limit=10, with_payload=True, search_params=acorn).points
        assert len(hits) == 10 and all(h.payload["cat"] in ("c3", "c4") for h in hits)
        found += len(exact & {h.id for h in hits})
        wanted += len(exact)
    assert found / wanted >= 0.9
    # Qdrant's bounds on max_selectivity, and its error shape.
    r = requests.post(f"{node.url}/collections/c/points/query",
                      json={"query": vectors[0], "params": {"acorn": {"enable": True, "max_selectivity": 2}}})
    assert r.status_code == 422, r.text
    openapi.validate(r)
    assert "acorn.max_selectivity" in r.json()["status"]["error"]
    r = requests.post(f"{node.url}/collections/c/points/query",
                      json={"query": vectors[0], "params": {"acorn": {"enable": "yes"}}})
    assert r.status_code in (400, 422), r.text
