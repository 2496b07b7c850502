"""Collections through the official qdrant-client and raw HTTP, every response checked against the
OpenAPI document."""

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse


@pytest.fixture
def client(node):
    return node.client(timeout=10)


@pytest.mark.qdrant_client
def test_create_list_inspect_delete(client, node, openapi):
    assert client.create_collection("docs", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
    assert [c.name for c in client.get_collections().collections] == ["docs"]
    assert client.collection_exists("docs")
    assert not client.collection_exists("other")

    info = client.get_collection("docs")
    assert info.status == models.CollectionStatus.GREEN
    assert info.points_count == 0
    assert info.config.params.vectors.size == 384
    assert info.config.params.vectors.distance == models.Distance.COSINE
    assert info.config.params.shard_number == 1
    assert info.config.hnsw_config.m == 16
    assert info.config.hnsw_config.ef_construct == 100
    assert info.config.optimizer_config.deleted_threshold == 0.2
    assert info.config.wal_config.wal_capacity_mb == 32

    for path in ["/collections", "/collections/docs", "/collections/docs/exists", "/collections/missing/exists"]:
        openapi.validate(node.get(path))

    assert client.delete_collection("docs")
    assert not client.collection_exists("docs")
    assert client.get_collections().collections == []


@pytest.mark.qdrant_client
def test_full_create_body_round_trips(client, node, openapi):
    client.create_collection(
        "rich",
        vectors_config={
            "image": models.VectorParams(size=512, distance=models.Distance.DOT, on_disk=True,
                                         datatype=models.Datatype.FLOAT16,
                                         hnsw_config=models.HnswConfigDiff(m=32, payload_m=8),
                                         quantization_config=models.ScalarQuantization(
                                             scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True))),
            "text": models.VectorParams(size=128, distance=models.Distance.EUCLID, datatype=models.Datatype.UINT8,
                                        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)),
            "geo": models.VectorParams(size=2, distance=models.Distance.MANHATTAN),
        },
        sparse_vectors_config={"bm25": models.SparseVectorParams(index=models.SparseIndexParams(on_disk=True), modifier=models.Modifier.IDF)},
        shard_number=2,
        sharding_method=models.ShardingMethod.AUTO,
        replication_factor=1,
        write_consistency_factor=1,
        on_disk_payload=False,
        hnsw_config=models.HnswConfigDiff(ef_construct=128, full_scan_threshold=5000),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=0, default_segment_number=2),
        wal_config=models.WalConfigDiff(wal_capacity_mb=64, wal_segments_ahead=1),
        quantization_config=models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True)),
        strict_mode_config=models.StrictModeConfig(enabled=True, max_query_limit=100, search_max_hnsw_ef=256),
        metadata={"owner": "search-team", "schema": 3, "ratio": 1.0, "tags": ["a", "b"]},
    )
    config = client.get_collection("rich").config
    vectors = config.params.vectors
    assert vectors["image"].size == 512 and vectors["image"].on_disk is True
    assert vectors["image"].datatype == models.Datatype.FLOAT16
    assert vectors["image"].hnsw_config.m == 32
    assert vectors["image"].quantization_config.scalar.quantile == 0.99
    assert vectors["text"].multivector_config.comparator == models.MultiVectorComparator.MAX_SIM
    assert vectors["geo"].distance == models.Distance.MANHATTAN
    assert config.params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert config.params.shard_number == 2
    assert config.params.on_disk_payload is False
    assert config.hnsw_config.ef_construct == 128 and config.hnsw_config.full_scan_threshold == 5000
    assert config.optimizer_config.indexing_threshold == 0
    assert config.optimizer_config.default_segment_number == 2
    assert config.wal_config.wal_capacity_mb == 64 and config.wal_config.wal_segments_ahead == 1
    assert config.quantization_config.binary.always_ram is True
    assert config.strict_mode_config.enabled is True and config.strict_mode_config.max_query_limit == 100
    assert config.metadata == {"owner": "search-team", "schema": 3, "ratio": 1.0, "tags": ["a", "b"]}
    openapi.validate(node.get("/collections/rich"))
    # Numbers in metadata keep their written form: 3 stays 3 and 1.0 stays 1.0.
    assert '"metadata":{"owner":"search-team","schema":3,"ratio":1.0,"tags":["a","b"]}' in node.get("/collections/rich").text


@pytest.mark.qdrant_client
def test_collection_without_dense_vectors(client):
    client.create_collection("sparse-only", vectors_config={},
                             sparse_vectors_config={"s": models.SparseVectorParams()})
    config = client.get_collection("sparse-only").config
    assert config.params.vectors == {}
    assert "s" in config.params.sparse_vectors


@pytest.mark.qdrant_client
def test_update_collection(client, node, openapi):
    client.create_collection(
        "c",
        vectors_config={"a": models.VectorParams(size=4, distance=models.Distance.DOT)},
        sparse_vectors_config={"s": models.SparseVectorParams()},
        quantization_config=models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)),
        metadata={"keep": 1, "drop": 2},
    )
    assert client.update_collection(
        "c",
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1234, max_optimization_threads=2),
        collection_params=models.CollectionParamsDiff(write_consistency_factor=1, on_disk_payload=False),
        vectors_config={"a": models.VectorParamsDiff(on_disk=True, hnsw_config=models.HnswConfigDiff(m=8))},
        hnsw_config=models.HnswConfigDiff(ef_construct=300),
        quantization_config=models.Disabled.DISABLED,
        sparse_vectors_config={"s": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        strict_mode_config=models.StrictModeConfig(max_timeout=30),
        metadata={"drop": None, "added": "x"},
    )
    config = client.get_collection("c").config
    assert config.optimizer_config.indexing_threshold == 1234
    assert config.optimizer_config.max_optimization_threads == 2
    assert config.params.on_disk_payload is False
    assert config.params.vectors["a"].on_disk is True
    assert config.params.vectors["a"].hnsw_config.m == 8
    assert config.hnsw_config.ef_construct == 300
    assert config.quantization_config is None
    assert config.params.sparse_vectors["s"].modifier == models.Modifier.IDF
    assert config.strict_mode_config.max_timeout == 30
    assert config.metadata == {"keep": 1, "added": "x"}
    assert openapi.validate(node.patch("/collections/c", json={"optimizers_config": {"deleted_threshold": 0.3}})).status_code == 200
    r = openapi.validate(node.get("/collections/c"))
    assert r.status_code == 200 and r.json()["result"]["config"]["optimizer_config"]["deleted_threshold"] == 0.3

    with pytest.raises(UnexpectedResponse) as err:
        client.update_collection("c", vectors_config={"nope": models.VectorParamsDiff(on_disk=True)})
    assert err.value.status_code == 400
    assert "nope" in err.value.content.decode()


@pytest.mark.qdrant_client
def test_recreate_and_duplicate(client):
    client.create_collection("c", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    with pytest.raises(UnexpectedResponse) as err:
        client.create_collection("c", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    assert err.value.status_code == 409
    assert "already exists" in err.value.content.decode()
    # The idiom of many scripts: delete if present, then create.
    if client.collection_exists("c"):
        client.delete_collection("c")
    client.create_collection("c", vectors_config=models.VectorParams(size=8, distance=models.Distance.EUCLID))
    assert client.get_collection("c").config.params.vectors.size == 8


@pytest.mark.qdrant_client
def test_many_names_and_unicode(client, node):
    names = ["with space", "ünïcødé-名前", "dots.and_under-scores", "x" * 255]
    for name in names:
        client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    listed = {c.name for c in client.get_collections().collections}
    assert listed == set(names)
    for name in names:
        assert client.get_collection(name).config.params.vectors.size == 2


def test_info_reports_warnings_and_the_update_queue(node, openapi):
    inline = {"hnsw_config": {"inline_storage": True}}
    assert node.put("/collections/w", json={"vectors": {"a": {"size": 4, "distance": "Dot"},
                                                         "b": {"size": 4, "distance": "Dot", "quantization_config": {"scalar": {"type": "int8"}}}},
                                            **inline}).status_code == 200
    info = openapi.validate(node.get("/collections/w")).json()["result"]
    assert info["warnings"] == [{"message": "The `hnsw_config.inline_storage` option for vector 'a' requires quantization to be "
                                            "enabled. This option will be ignored."}]
    assert info["update_queue"] == {"length": 0}
    # With quantization for the whole collection, or without inline storage, there is nothing to warn about.
    assert node.put("/collections/q", json={"vectors": {"size": 4, "distance": "Dot"}, **inline,
                                            "quantization_config": {"scalar": {"type": "int8"}},
                                            "optimizers_config": {"prevent_unoptimized": True}}).status_code == 200
    info = openapi.validate(node.get("/collections/q")).json()["result"]
    assert "warnings" not in info
    assert info["update_queue"] == {"length": 0, "deferred_points": 0}
