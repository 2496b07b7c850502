"""Strict mode: every `strict_mode_config` limit refuses a request over it with a 400 and Qdrant's
message, lets one under it through, does nothing while `enabled` is false, and survives `PATCH`
and a restart."""

import pytest

VECTORS = {"size": 4, "distance": "Dot"}


def make(node, name="s", **strict):
    r = node.put(f"/collections/{name}", json={"vectors": VECTORS, "strict_mode_config": {"enabled": True, **strict}})
    assert r.status_code == 200, r.text


def upsert(node, ids, name="s", **extra):
    points = [{"id": i, "vector": [1, 0, 0, 0], "payload": {"kw": "a", "n": i, "arr": [{"x": i}]}} for i in ids]
    return node.put(f"/collections/{name}/points?wait=true", json={"points": points, **extra})


def refused(response, message):
    assert response.status_code == 400, response.text
    assert response.json()["status"]["error"] == f"Bad request: {message}"


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()["result"]


def help_limit(value, limit, name):
    return f'Limit exceeded {value} > {limit} for "{name}". Help: Reduce the "{name}" parameter to or below {limit}.'


def test_query_limit_and_timeout(node):
    make(node, max_query_limit=4, max_timeout=3)
    ok(upsert(node, range(10)))
    for path, body in [("points/query", {"query": [1, 0, 0, 0], "limit": 5}),
                       ("points/search", {"vector": [1, 0, 0, 0], "limit": 5}),
                       ("points/search", {"vector": [1, 0, 0, 0], "top": 5}),
                       ("points/scroll", {"limit": 5})]:
        refused(node.post(f"/collections/s/{path}", json=body), help_limit(5, 4, "limit"))
        body = {k: (4 if k in ("limit", "top") else v) for k, v in body.items()}
        ok(node.post(f"/collections/s/{path}", json=body))
    # The offset is not added to the limit, as in Qdrant.
    ok(node.post("/collections/s/points/query", json={"query": [1, 0, 0, 0], "limit": 4, "offset": 3}))
    ok(node.put("/collections/s/index?wait=true", json={"field_name": "kw", "field_schema": "keyword"}))
    refused(node.post("/collections/s/facet", json={"key": "kw", "limit": 5}), help_limit(5, 4, "limit"))
    ok(node.post("/collections/s/facet", json={"key": "kw"}))  # the default limit is not checked
    refused(node.post("/collections/s/points/query?timeout=5", json={"query": [1, 0, 0, 0], "limit": 2}), help_limit(5, 3, "timeout"))
    refused(node.put("/collections/s/points?wait=true&timeout=4", json={"points": [{"id": 1, "vector": [1, 0, 0, 0]}]}),
            help_limit(4, 3, "timeout"))
    ok(node.post("/collections/s/points/count?timeout=3", json={}))
    refused(node.put("/collections/s/index?wait=true&timeout=9", json={"field_name": "n", "field_schema": "integer"}),
            help_limit(9, 3, "timeout"))
    ok(node.put("/collections/s/index?wait=true&timeout=2", json={"field_name": "n", "field_schema": "integer"}))


def test_unindexed_filters(node):
    make(node, unindexed_filtering_retrieve=False, unindexed_filtering_update=False)
    ok(upsert(node, range(10)))
    message = ('Index required but not found for "{}" of one of the following types: [{}]. '
               "Help: Create an index for this key or use a different filter.")
    match_kw = {"must": [{"key": "kw", "match": {"value": "a"}}]}
    refused(node.post("/collections/s/points/count", json={"filter": match_kw, "exact": True}), message.format("kw", "keyword"))
    refused(node.post("/collections/s/points/scroll", json={"filter": {"should": [{"has_id": [1]}, match_kw]}}),
            message.format("kw", "keyword"))
    refused(node.post("/collections/s/points/query", json={"query": [1, 0, 0, 0], "filter": {"must": [{"key": "n", "range": {"gt": 3}}]}}),
            message.format("n", "float, integer"))
    nested = {"must": [{"nested": {"key": "arr", "filter": {"must": [{"key": "x", "match": {"value": 3}}]}}}]}
    refused(node.post("/collections/s/points/scroll", json={"filter": nested}), message.format("arr[].x", "integer"))
    refused(node.post("/collections/s/points/delete?wait=true", json={"filter": match_kw}), message.format("kw", "keyword"))
    refused(node.post("/collections/s/points/payload?wait=true", json={"payload": {"q": 1}, "filter": match_kw}), message.format("kw", "keyword"))
    # Conditions that need no index, and update_filter (which Qdrant does not check), go through.
    ok(node.post("/collections/s/points/scroll", json={"filter": {"must": [{"has_id": [1, 2]}]}}))
    ok(upsert(node, [1], update_filter=match_kw))
    # With the indexes, everything goes through.
    for field, schema in [("kw", "keyword"), ("n", "integer"), ("arr[].x", "integer")]:
        ok(node.put("/collections/s/index?wait=true", json={"field_name": field, "field_schema": schema}))
    assert ok(node.post("/collections/s/points/count", json={"filter": match_kw}))["count"] == 10
    assert len(ok(node.post("/collections/s/points/scroll", json={"filter": nested}))["points"]) == 1
    ok(node.post("/collections/s/points/query", json={"query": [1, 0, 0, 0], "filter": {"must": [{"key": "n", "range": {"gt": 3}}]}}))
    ok(node.post("/collections/s/points/delete?wait=true", json={"filter": match_kw}))
    # A keyword index without `prefix: true` cannot serve a prefix match.
    refused(node.post("/collections/s/points/count", json={"filter": {"must": [{"key": "kw", "match": {"prefix": "a"}}]}}),
            message.format("kw", "keyword (with prefix: true)"))


def test_search_parameters_and_batches(node):
    make(node, search_max_hnsw_ef=10, search_allow_exact=False, search_max_oversampling=2.0, search_max_batchsize=2)
    ok(upsert(node, range(10)))
    query = {"query": [1, 0, 0, 0]}
    refused(node.post("/collections/s/points/query", json={**query, "params": {"hnsw_ef": 11}}), help_limit(11, 10, "hnsw_ef"))
    ok(node.post("/collections/s/points/query", json={**query, "params": {"hnsw_ef": 10}}))
    refused(node.post("/collections/s/points/query", json={**query, "params": {"exact": True}}), "Exact search disabled!. Help: Set exact=false.")
    refused(node.post("/collections/s/points/query", json={**query, "params": {"quantization": {"oversampling": 3}}}),
            help_limit(3, 2, "oversampling"))
    ok(node.post("/collections/s/points/query", json={**query, "params": {"quantization": {"oversampling": 1.5}}}))
    # Count is exact unless it says otherwise, so it needs `exact: false` here (as in Qdrant).
    refused(node.post("/collections/s/points/count", json={}), "Exact search disabled!. Help: Set exact=false.")
    assert ok(node.post("/collections/s/points/count", json={"exact": False}))["count"] == 10
    refused(node.post("/collections/s/points/query/batch", json={"searches": [query] * 3}), help_limit(3, 2, "search batch size"))
    assert len(ok(node.post("/collections/s/points/query/batch", json={"searches": [query] * 2}))) == 2
    refused(node.post("/collections/s/points/search/batch", json={"searches": [{"vector": [1, 0, 0, 0], "limit": 1}] * 3}),
            help_limit(3, 2, "search batch size"))


def test_batch_sizes_and_collection_size(node):
    make(node, upsert_max_batchsize=3, max_points_count=5, max_payload_index_count=1)
    refused(upsert(node, range(4)), help_limit(4, 3, "upsert limit"))
    refused(node.put("/collections/s/points?wait=true", json={"batch": {"ids": [1, 2, 3, 4], "vectors": [[1, 0, 0, 0]] * 4}}),
            help_limit(4, 3, "upsert limit"))
    refused(node.post("/collections/s/points/batch?wait=true", json={"operations": [
        {"upsert": {"points": [{"id": i, "vector": [1, 0, 0, 0]} for i in range(4)]}}]}), help_limit(4, 3, "upsert limit"))
    # A batch is checked whole before any operation applies: the first one is not written either.
    refused(node.post("/collections/s/points/batch?wait=true", json={"operations": [
        {"upsert": {"points": [{"id": 9, "vector": [1, 0, 0, 0]}]}},
        {"upsert": {"points": [{"id": i, "vector": [1, 0, 0, 0]} for i in range(4)]}}]}), help_limit(4, 3, "upsert limit"))
    assert ok(node.post("/collections/s/points/count", json={}))["count"] == 0
    ok(upsert(node, range(3)))
    refused(node.put("/collections/s/points/vectors?wait=true", json={"points": [{"id": i, "vector": [0, 1, 0, 0]} for i in range(4)]}),
            help_limit(4, 3, "update limit"))
    ok(upsert(node, [3, 4]))
    refused(upsert(node, [5]), "Max points count limit of 5 reached!")
    assert ok(node.post("/collections/s/points/count", json={}))["count"] == 5
    ok(node.post("/collections/s/points/delete?wait=true", json={"points": [4]}))
    ok(upsert(node, [5]))
    ok(node.put("/collections/s/index?wait=true", json={"field_name": "kw", "field_schema": "keyword"}))
    refused(node.put("/collections/s/index?wait=true", json={"field_name": "n", "field_schema": "integer"}),
            "Collection already has the maximum number of payload indices (1). "
            "Help: Please delete an existing index before creating a new one.")


@pytest.mark.parametrize("kind", ["vector", "payload"])
def test_storage_size_limits(node, kind):
    # 16 bytes of vector per point; each payload is a little over 30 bytes of JSON.
    limit = 64 if kind == "vector" else 100
    make(node, **{f"max_collection_{kind}_size_bytes": limit})
    stored = 0
    for i in range(20):
        r = upsert(node, [i])
        if r.status_code != 200:
            megabytes = "0.000061035156" if kind == "vector" else "0.00009536743"
            refused(r, f"Max {kind} storage size limit of {megabytes}MB reached!")
            break
        stored += 1
    assert 0 < stored < 20
    if kind == "payload":
        refused(node.post("/collections/s/points/payload?wait=true", json={"payload": {"more": 1}, "points": [0]}),
                "Max payload storage size limit of 0.00009536743MB reached!")
    # Deletes are never refused.
    ok(node.post("/collections/s/points/delete?wait=true", json={"points": [0]}))


def test_filter_limits(node):
    make(node, filter_max_conditions=2, condition_max_size=3)
    ok(upsert(node, range(5)))
    three = {"must": [{"key": "n", "range": {"gte": 0}}, {"has_id": [1, 2]}], "should": [{"key": "kw", "match": {"value": "a"}}]}
    refused(node.post("/collections/s/points/scroll", json={"filter": three}),
            "Filter condition limit reached (3 > 2). Help: Reduce the amount of conditions of your filter.")
    refused(node.post("/collections/s/points/delete?wait=true", json={"filter": {"must": [{"has_id": [1, 2, 3, 4]}]}}),
            "Condition size limit reached (4 > 3). Help: Reduce the size of your condition.")
    assert len(ok(node.post("/collections/s/points/scroll", json={"filter": {"must": [{"key": "kw", "match": {"any": ["a", "b", "c"]}}]}}))["points"]) == 5


def test_disabled_changed_and_restarted(node):
    node.put("/collections/s", json={"vectors": VECTORS, "strict_mode_config": {"enabled": False, "max_query_limit": 1}})
    ok(upsert(node, range(5)))
    ok(node.post("/collections/s/points/scroll", json={"limit": 3}))
    ok(node.patch("/collections/s", json={"strict_mode_config": {"enabled": True}}))
    refused(node.post("/collections/s/points/scroll", json={"limit": 3}), help_limit(3, 1, "limit"))
    ok(node.patch("/collections/s", json={"strict_mode_config": {"max_query_limit": 2}}))
    refused(node.post("/collections/s/points/scroll", json={"limit": 3}), help_limit(3, 2, "limit"))
    node.restart()
    refused(node.post("/collections/s/points/scroll", json={"limit": 3}), help_limit(3, 2, "limit"))
    ok(node.post("/collections/s/points/scroll", json={"limit": 2}))
    config = ok(node.get("/collections/s"))["config"]["strict_mode_config"]
    assert config["enabled"] is True and config["max_query_limit"] == 2


def test_sparse_and_multivector_sizes(node):
    body = {"vectors": {"m": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}},
            "sparse_vectors": {"s": {}},
            "strict_mode_config": {"enabled": True, "sparse_config": {"s": {"max_length": 3}}, "multivector_config": {"m": {"max_vectors": 2}}}}
    ok(node.put("/collections/v", json=body))
    sparse = lambda n: {"indices": list(range(n)), "values": [1.0] * n}
    ok(node.put("/collections/v/points?wait=true", json={"points": [{"id": 1, "vector": {"s": sparse(3), "m": [[1, 0], [0, 1]]}}]}))
    refused(node.put("/collections/v/points?wait=true", json={"points": [{"id": 2, "vector": {"s": sparse(4)}}]}),
            "Sparse vector 's' has a limit of 3 indices, but 4 were provided!")
    refused(node.put("/collections/v/points?wait=true", json={"points": [{"id": 2, "vector": {"m": [[1, 0], [0, 1], [1, 1]]}}]}),
            "Multivector 'm' has a limit of 2 vectors, but 3 were provided!")
    refused(node.put("/collections/v/points/vectors?wait=true", json={"points": [{"id": 1, "vector": {"s": sparse(5)}}]}),
            "Sparse vector 's' has a limit of 3 indices, but 5 were provided!")
    # Queries are not limited, as in Qdrant; nothing refused was stored.
    ok(node.post("/collections/v/points/query", json={"query": {"indices": [0, 1, 2, 3, 4], "values": [1] * 5}, "using": "s"}))
    assert ok(node.post("/collections/v/points/count", json={}))["count"] == 1
