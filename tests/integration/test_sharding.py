"""Sharding (issue 7): shards placed over real peers, requests routed to them from any peer.

Three peers on loopback, each its own process and storage directory. Points are written through one
peer and read through every peer; the local shard API shows where each point landed.
"""

import random
import time

import pytest

from test_cluster import Cluster, wait_for

DIM = 8
MASK = (1 << 64) - 1


def shard_of(point_id: int, shard_count: int) -> int:
    """The documented routing function: jump consistent hashing of MurmurHash3's fmix64 of the id."""
    h = point_id
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    h ^= h >> 33
    bucket, j = -1, 0
    while j < shard_count:
        bucket = j
        h = (h * 2862933555777941757 + 1) & MASK
        j = int((bucket + 1) * (float(1 << 31) / float((h >> 33) + 1)))
    return bucket


def vector(rng):
    return [round(rng.uniform(-1, 1), 4) for _ in range(DIM)]


def make_points(count, seed=7):
    rng = random.Random(seed)
    return [{"id": i, "vector": vector(rng), "payload": {"group": f"g{i % 7}", "n": i}} for i in range(count)]


def upsert(node, collection, points, batch=1000, **extra):
    for start in range(0, len(points), batch):
        r = node.put(f"/collections/{collection}/points?wait=true",
                     json={"points": points[start:start + batch], **extra}, timeout=60)
        assert r.status_code == 200, r.text


def scroll_all(node, collection, limit=1000, path=None, **body):
    path = path or f"/collections/{collection}/points/scroll"
    ids, offset = [], None
    while True:
        r = node.post(path, json={"limit": limit, "offset": offset, "with_payload": False, **body}, timeout=30)
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        ids += [p["id"] for p in result["points"]]
        offset = result["next_page_offset"]
        if offset is None:
            return ids
        # The next page starts after this one: numbers before UUIDs, each kind in order.
        assert isinstance(offset, str) > isinstance(ids[-1], str) or (type(offset) is type(ids[-1]) and offset > ids[-1])


def peer_id(node):
    return Cluster.info(node)["peer_id"]


@pytest.fixture
def three(make_node):
    cluster = Cluster(make_node)
    return cluster.start(3)


def test_points_spread_over_six_shards_and_every_peer_answers_alike(three, make_node, openapi):
    peers = three
    r = peers[0].put("/collections/spread", json={"vectors": {"size": DIM, "distance": "Euclid"}, "shard_number": 6})
    assert r.status_code == 200, r.text

    # Placement: 6 shards, 2 local on every peer, the other 4 remote; every peer sees the same map.
    owners = {}
    for p in peers:
        r = p.get("/collections/spread/cluster")
        openapi.validate(r)
        info = r.json()["result"]
        assert info["peer_id"] == peer_id(p)
        assert info["shard_count"] == 6
        assert len(info["local_shards"]) == 2 and len(info["remote_shards"]) == 4
        assert info["shard_transfers"] == []
        assert all(s["state"] == "Active" for s in info["local_shards"] + info["remote_shards"])
        for s in info["local_shards"]:
            owners[s["shard_id"]] = info["peer_id"]
        for s in info["remote_shards"]:
            assert s["peer_id"] != info["peer_id"]
    assert sorted(owners) == list(range(6))
    for p in peers:
        for s in p.get("/collections/spread/cluster").json()["result"]["remote_shards"]:
            assert owners[s["shard_id"]] == s["peer_id"]

    # 10,000 points through one peer.
    points = make_points(10_000)
    upsert(peers[1], "spread", points)

    # Counted, scrolled and found identically through every peer.
    for p in peers:
        r = p.post("/collections/spread/points/count", json={"exact": True})
        openapi.validate(r)
        assert r.json()["result"]["count"] == 10_000
        assert p.get("/collections/spread").json()["result"]["points_count"] == 10_000
        assert p.post("/collections/spread/points/count",
                      json={"filter": {"must": [{"key": "group", "match": {"value": "g3"}}]}}).json()["result"]["count"] == \
            sum(1 for x in points if x["payload"]["group"] == "g3")
        assert scroll_all(p, "spread") == list(range(10_000))
        page = p.post("/collections/spread/points/scroll", json={"limit": 3, "offset": 4998}).json()["result"]
        assert [x["id"] for x in page["points"]] == [4998, 4999, 5000] and page["next_page_offset"] == 5001
        got = p.post("/collections/spread/points", json={"ids": [9999, 0, 4242, 123456], "with_vector": True}).json()["result"]
        assert [x["id"] for x in got] == [9999, 0, 4242]
        assert got[2]["payload"] == points[4242]["payload"] and got[2]["vector"] == points[4242]["vector"]
        assert p.get("/collections/spread/points/77").json()["result"]["payload"] == {"group": "g0", "n": 77}

    # Every point is on the shard its id hashes to, and nowhere else (local shard API on each owner).
    seen = {}
    by_node = {peer_id(p): p for p in peers}
    for shard, owner in owners.items():
        node = by_node[owner]
        ids = scroll_all(node, "spread", path=f"/collections/spread/shards/{shard}/points/scroll")
        assert ids, f"shard {shard} is empty"
        assert all(shard_of(i, 6) == shard for i in ids)
        for i in ids:
            assert i not in seen
            seen[i] = shard
        r = node.post(f"/collections/spread/shards/{shard}/points/count", json={})
        assert r.json()["result"]["count"] == len(ids)
        assert node.post(f"/collections/spread/shards/{shard}/points", json={"ids": ids[:2]}).json()["result"][0]["id"] == ids[0]
    assert len(seen) == 10_000
    # A shard this peer does not hold is a 404 on the local shard API.
    other = next(s for s, o in owners.items() if o != peer_id(peers[0]))
    assert peers[0].post(f"/collections/spread/shards/{other}/points/count", json={}).status_code == 404

    # Exact search from every peer equals a single node holding the same data.
    single = make_node(subdir="single")
    assert single.put("/collections/spread", json={"vectors": {"size": DIM, "distance": "Euclid"}}).status_code == 200
    upsert(single, "spread", points)
    rng = random.Random(99)
    queries = [
        {"query": vector(rng), "limit": 10, "params": {"exact": True}},
        {"query": vector(rng), "limit": 5, "offset": 7, "params": {"exact": True}, "with_payload": True},
        {"query": vector(rng), "limit": 8, "params": {"exact": True},
         "filter": {"must": [{"key": "group", "match": {"any": ["g1", "g5"]}}]}},
        {"query": 4321, "limit": 6, "params": {"exact": True}},
    ]
    for q in queries:
        expected = single.post("/collections/spread/points/query", json=q).json()["result"]["points"]
        assert len(expected) == q["limit"]
        for p in peers:
            r = p.post("/collections/spread/points/query", json=q)
            openapi.validate(r)
            got = r.json()["result"]["points"]
            assert [(x["id"], x["score"], x.get("payload")) for x in got] == \
                [(x["id"], x["score"], x.get("payload")) for x in expected]
    legacy = {"vector": vector(rng), "limit": 4, "params": {"exact": True}}
    assert [x["id"] for x in peers[2].post("/collections/spread/points/search", json=legacy).json()["result"]] == \
        [x["id"] for x in single.post("/collections/spread/points/search", json=legacy).json()["result"]]

    # Payload indexes reach every peer (through consensus): facets and order_by work through any.
    r = peers[2].put("/collections/spread/index?wait=true", json={"field_name": "group", "field_schema": "keyword"})
    assert r.status_code == 200, r.text
    r = peers[2].put("/collections/spread/index?wait=true", json={"field_name": "n", "field_schema": "integer"})
    assert r.status_code == 200, r.text
    for p in peers:
        wait_for(lambda: set(p.get("/collections/spread").json()["result"]["payload_schema"]) == {"group", "n"},
                 message="indexes on every peer")
        facet = p.post("/collections/spread/facet", json={"key": "group", "limit": 3}).json()["result"]["hits"]
        assert facet == [{"value": "g0", "count": 1429}, {"value": "g1", "count": 1429}, {"value": "g2", "count": 1429}]
        ordered = p.post("/collections/spread/points/scroll",
                         json={"limit": 4, "order_by": {"key": "n", "direction": "desc"}}).json()["result"]["points"]
        assert [x["id"] for x in ordered] == [9999, 9998, 9997, 9996]

    # Updates by id and by filter through another peer reach the right shards.
    assert peers[0].post("/collections/spread/points/delete?wait=true", json={"points": [0, 1, 2]}).status_code == 200
    r = peers[2].post("/collections/spread/points/payload?wait=true",
                      json={"payload": {"tag": "x"}, "filter": {"must": [{"key": "group", "match": {"value": "g6"}}]}})
    assert r.status_code == 200, r.text
    r = peers[1].post("/collections/spread/points/payload?wait=true", json={"payload": {"tag": "y"}, "points": [123456]})
    assert r.status_code == 404, r.text
    for p in peers:
        assert p.post("/collections/spread/points/count", json={}).json()["result"]["count"] == 9_997
        tagged = p.post("/collections/spread/points/count",
                        json={"filter": {"must": [{"key": "tag", "match": {"value": "x"}}]}}).json()["result"]["count"]
        assert tagged == sum(1 for x in points if x["payload"]["group"] == "g6")


def test_default_shard_number_is_one_per_peer(three):
    peers = three
    assert peers[2].put("/collections/d", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
    for p in peers:
        info = p.get("/collections/d/cluster").json()["result"]
        assert info["shard_count"] == 3 and len(info["local_shards"]) == 1
    assert peers[0].get("/collections/d").json()["result"]["config"]["params"]["shard_number"] == 3
    # With replication_factor 2 every shard has two replicas on distinct peers; writes reach both.
    r = peers[0].put("/collections/r", json={"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3, "replication_factor": 2})
    assert r.status_code == 200, r.text
    replicas = {}
    for p in peers:
        info = p.get("/collections/r/cluster").json()["result"]
        assert len(info["local_shards"]) == 2
        for s in info["local_shards"]:
            replicas.setdefault(s["shard_id"], set()).add(info["peer_id"])
    assert all(len(v) == 2 for v in replicas.values()) and len(replicas) == 3
    upsert(peers[1], "r", [{"id": i, "vector": [1, 0, 0, i]} for i in range(300)], batch=300)
    total = 0
    for p in peers:
        for s in p.get("/collections/r/cluster").json()["result"]["local_shards"]:
            total += s["points_count"]
        assert p.post("/collections/r/points/count", json={}).json()["result"]["count"] == 300
    assert total == 600


def test_shard_number_per_node_sets_the_default_shard_number(make_node):
    peers = Cluster(make_node, extra_env={"QDRANT__STORAGE__COLLECTION__SHARD_NUMBER_PER_NODE": "2"}).start(3)
    assert peers[0].put("/collections/d", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
    assert peers[1].get("/collections/d").json()["result"]["config"]["params"]["shard_number"] == 6
    for p in peers:
        wait_for(lambda: len(p.get("/collections/d/cluster").json()["result"]["local_shards"]) == 2,
                 message="two shards on every peer")


def test_custom_sharding_routes_by_key_and_drops_a_key_with_its_data(three, openapi):
    peers = three
    ids = [peer_id(p) for p in peers]
    r = peers[0].put("/collections/tenants", json={"vectors": {"size": 4, "distance": "Dot"}, "sharding_method": "custom",
                                                     "shard_number": 2})
    assert r.status_code == 200, r.text
    assert peers[1].get("/collections/tenants/shards").json()["result"] == {"shard_keys": []}
    r = peers[1].put("/collections/tenants/shards", json={"shard_key": "eu"})
    openapi.validate(r)
    assert r.json()["result"] is True
    r = peers[2].put("/collections/tenants/shards", json={"shard_key": 7, "shards_number": 1, "placement": [ids[2]]})
    assert r.status_code == 200, r.text
    r = peers[0].put("/collections/tenants/shards", json={"shard_key": "eu"})
    assert r.status_code == 400 and "already exists" in r.json()["status"]["error"]
    for p in peers:
        r = p.get("/collections/tenants/shards")
        openapi.validate(r)
        assert r.json()["result"] == {"shard_keys": [{"key": "eu"}, {"key": 7}]} or \
            r.json()["result"] == {"shard_keys": [{"key": 7}, {"key": "eu"}]}
        info = p.get("/collections/tenants/cluster").json()["result"]
        assert info["shard_count"] == 3
        keyed = {s["shard_id"]: s.get("shard_key") for s in info["local_shards"] + info["remote_shards"]}
        assert sorted(keyed.values(), key=str) == sorted(["eu", "eu", 7], key=str)
    seven = [s for s in peers[2].get("/collections/tenants/cluster").json()["result"]["local_shards"] if s["shard_key"] == 7]
    assert len(seven) == 1

    # Writes must name a key; unknown keys are refused.
    r = peers[1].put("/collections/tenants/points?wait=true", json={"points": [{"id": 1, "vector": [1, 0, 0, 0]}]})
    assert r.status_code == 400 and "Shard key not specified" in r.json()["status"]["error"]
    openapi.validate(r)
    r = peers[1].put("/collections/tenants/points?wait=true",
                     json={"points": [{"id": 1, "vector": [1, 0, 0, 0]}], "shard_key": "moon"})
    assert r.status_code == 400 and "moon" in r.json()["status"]["error"]

    eu = [{"id": i, "vector": [1, 0, 0, i / 100], "payload": {"k": "eu"}} for i in range(100)]
    seven_points = [{"id": i, "vector": [0, 1, 0, i / 100], "payload": {"k": 7}} for i in range(100, 160)]
    upsert(peers[0], "tenants", eu, shard_key="eu")
    upsert(peers[1], "tenants", seven_points, shard_key=7)
    for p in peers:
        count = lambda body: p.post("/collections/tenants/points/count", json=body).json()["result"]["count"]
        assert count({}) == 160
        assert count({"shard_key": "eu"}) == 100
        assert count({"shard_key": 7}) == 60
        assert count({"shard_key": ["eu", 7]}) == 160
        assert count({"shard_key": {"target": "asia", "fallback": 7}}) == 60
        hits = p.post("/collections/tenants/points/query", json={"query": [1, 1, 0, 0], "limit": 200, "shard_key": 7}).json()["result"]["points"]
        assert sorted(x["id"] for x in hits) == list(range(100, 160))
        assert scroll_all(p, "tenants", limit=50, shard_key="eu") == list(range(100))
        got = p.post("/collections/tenants/points", json={"ids": [5, 150], "shard_key": "eu"}).json()["result"]
        assert [x["id"] for x in got] == [5]
    # The key-7 shard holds exactly its 60 points.
    shard = seven[0]["shard_id"]
    assert peers[2].post(f"/collections/tenants/shards/{shard}/points/count", json={}).json()["result"]["count"] == 60

    # Dropping a key drops its shards and their points on every peer.
    r = peers[2].post("/collections/tenants/shards/delete", json={"shard_key": "eu"})
    openapi.validate(r)
    assert r.json()["result"] is True
    assert peers[0].post("/collections/tenants/shards/delete", json={"shard_key": "eu"}).status_code == 400
    for p in peers:
        assert p.get("/collections/tenants/shards").json()["result"] == {"shard_keys": [{"key": 7}]}
        assert p.post("/collections/tenants/points/count", json={}).json()["result"]["count"] == 60
        assert p.get("/collections/tenants/cluster").json()["result"]["shard_count"] == 1
    # A new key under the old name starts empty.
    assert peers[0].put("/collections/tenants/shards", json={"shard_key": "eu"}).status_code == 200
    assert peers[1].post("/collections/tenants/points/count", json={"shard_key": "eu"}).json()["result"]["count"] == 0

    # Shard keys on an automatically sharded collection are refused.
    assert peers[0].put("/collections/auto", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
    r = peers[0].put("/collections/auto/shards", json={"shard_key": "eu"})
    assert r.status_code == 400 and "Auto sharding" in r.json()["status"]["error"]
    r = peers[0].post("/collections/auto/points/count", json={"shard_key": "eu"})
    assert r.status_code == 400


def test_custom_sharding_on_a_single_node_survives_restart(node, openapi):
    r = node.put("/collections/t", json={"vectors": {"size": 2, "distance": "Dot"}, "sharding_method": "custom"})
    assert r.status_code == 200
    assert node.put("/collections/t/shards", json={"shard_key": "a", "shards_number": 3}).json()["result"] is True
    assert node.put("/collections/t/shards", json={"shard_key": "b"}).json()["result"] is True
    upsert(node, "t", [{"id": i, "vector": [1, i]} for i in range(30)], shard_key="a")
    upsert(node, "t", [{"id": i, "vector": [2, i]} for i in range(30, 40)], shard_key="b")
    info = node.get("/collections/t/cluster").json()["result"]
    openapi.validate(node.get("/collections/t/cluster"))
    assert info["shard_count"] == 4 and len(info["local_shards"]) == 4 and info["remote_shards"] == []
    per_shard = {s["shard_id"]: s["points_count"] for s in info["local_shards"]}
    a_shards = [s["shard_id"] for s in info["local_shards"] if s["shard_key"] == "a"]
    assert sum(per_shard[s] for s in a_shards) == 30 and all(per_shard[s] > 0 for s in a_shards)
    node.restart()
    assert node.post("/collections/t/points/count", json={"shard_key": "a"}).json()["result"]["count"] == 30
    assert node.post("/collections/t/points/count", json={}).json()["result"]["count"] == 40
    assert node.post("/collections/t/shards/delete", json={"shard_key": "a"}).json()["result"] is True
    node.restart()
    assert node.get("/collections/t/shards").json()["result"] == {"shard_keys": [{"key": "b"}]}
    assert node.post("/collections/t/points/count", json={}).json()["result"]["count"] == 10


def test_a_peer_down_leaves_reads_and_writes_working_and_its_replicas_dead(three):
    # Every shard has two replicas on distinct peers. With one peer killed, reads through the
    # survivors answer in full from the other replicas, and writes succeed on the live replica
    # (write_consistency_factor 1) once the dead peer's replicas are marked Dead. After it
    # restarts its reads come from the live replicas while its own are brought up to date by
    # transfers, after which they are Active and hold every point.
    peers = three
    r = peers[0].put("/collections/rep", json={"vectors": {"size": DIM, "distance": "Dot"}, "shard_number": 3,
                                               "replication_factor": 2})
    assert r.status_code == 200, r.text
    points = make_points(600, seed=11)
    upsert(peers[0], "rep", points)
    query = {"query": points[42]["vector"], "limit": 5, "params": {"exact": True}}
    expected = [x["id"] for x in peers[0].post("/collections/rep/points/query", json=query).json()["result"]["points"]]
    for p in peers:
        wait_for(lambda: p.post("/collections/rep/points/count", json={}).json()["result"]["count"] == 600,
                 message="every replica applied the writes")
    dead_peer = peer_id(peers[2])
    held = {s["shard_id"] for s in peers[2].get("/collections/rep/cluster").json()["result"]["local_shards"]}
    assert len(held) == 2

    peers[2].kill()
    started = time.monotonic()
    extra = [{"id": 1000 + i, "vector": [0.5] * DIM, "payload": {"group": "new", "n": i}} for i in range(60)]
    for i in range(0, 60, 10):
        r = peers[i // 10 % 2].put("/collections/rep/points?wait=true", json={"points": extra[i:i + 10]}, timeout=60)
        assert r.status_code == 200, r.text
    print(f"six writes with a peer down took {time.monotonic() - started:.2f}s")
    for p in peers[:2]:
        assert p.post("/collections/rep/points/count", json={}).json()["result"]["count"] == 660
        assert sorted(scroll_all(p, "rep")) == list(range(600)) + list(range(1000, 1060))
        got = [x["id"] for x in p.post("/collections/rep/points/query", json=query).json()["result"]["points"]]
        assert got == expected
        # Read consistency counts the dead replica: `all` cannot be met, a factor of 1 can.
        r = p.post("/collections/rep/points/count?consistency=all", json={})
        assert r.status_code == 503 and "does not have enough active replicas" in r.json()["status"]["error"], r.text
        assert p.post("/collections/rep/points/count?consistency=1", json={}).json()["result"]["count"] == 660
        remote = p.get("/collections/rep/cluster").json()["result"]["remote_shards"]
        assert {s["shard_id"] for s in remote if s["peer_id"] == dead_peer and s["state"] == "Dead"} == held

    peers[2].start()
    wait_for(lambda: peers[2].post("/collections/rep/points/count", json={}).json()["result"]["count"] == 660,
             timeout=60, message="the restarted peer answers from the live replicas")
    assert sorted(scroll_all(peers[2], "rep")) == list(range(600)) + list(range(1000, 1060))
    wait_for(lambda: {s["state"] for s in peers[2].get("/collections/rep/cluster").json()["result"]["local_shards"]} == {"Active"},
             timeout=60, message="the restarted peer's replicas recovered")
    for shard in held:
        local = scroll_all(peers[2], "rep", path=f"/collections/rep/shards/{shard}/points/scroll")
        other = next(p for p in peers[:2] if shard in {s["shard_id"] for s in
                                                      p.get("/collections/rep/cluster").json()["result"]["local_shards"]})
        assert sorted(local) == sorted(scroll_all(other, "rep", path=f"/collections/rep/shards/{shard}/points/scroll"))
