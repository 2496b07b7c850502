"""Snapshots in a three-peer cluster: a shard snapshot taken on one peer replaces another peer's
replica of the shard; a collection snapshot recovered with each priority decides which replicas
are the source of truth, and the others are brought to the same data; and the seed's "Recover
from snapshot" procedure brings back a shard whose only replica was on a peer that is gone for
good."""

import pytest
import requests

from test_cluster import Cluster, wait_for
from test_replication import states_of
from test_sharding import DIM, make_points, peer_id, scroll_all, shard_of, upsert

COLLECTION = "snap"


def create(node, **params):
    body = {"vectors": {"size": DIM, "distance": "Dot"}, **params}
    r = node.put(f"/collections/{COLLECTION}", json=body)
    assert r.status_code == 200, r.text


def replica_states(node, collection):
    """Shard id → {peer id: state} of `collection`, as `node` sees it."""
    info = node.get(f"/collections/{collection}/cluster").json()["result"]
    holders = {}
    for s in info["local_shards"]:
        holders.setdefault(s["shard_id"], {})[info["peer_id"]] = s["state"]
    for s in info["remote_shards"]:
        holders.setdefault(s["shard_id"], {})[s["peer_id"]] = s["state"]
    return holders


def layout(node):
    return replica_states(node, COLLECTION)


def snapshot_bytes(node, path):
    """Creates a snapshot at `path` (collection or shard) on `node` and downloads it."""
    r = node.post(f"{path}/snapshots?wait=true", timeout=60)
    assert r.status_code == 200, r.text
    name = r.json()["result"]["name"]
    r = requests.get(f"{node.url}{path}/snapshots/{name}", timeout=60)
    assert r.status_code == 200
    return r.content


def upload(node, path, data, priority):
    r = requests.post(f"{node.url}{path}/snapshots/upload?wait=true&priority={priority}",
                      files={"snapshot": ("s.snapshot", data)}, timeout=120)
    assert r.status_code == 200, f"{r.text}\n{node.log()[-3000:]}"
    assert r.json()["result"] is True


def local_ids(node, shard):
    """The ids in `node`'s own replica of `shard`."""
    return sorted(scroll_all(node, COLLECTION, path=f"/collections/{COLLECTION}/shards/{shard}/points/scroll"))


def ids_everywhere(peers, **body):
    """The ids each peer answers a full scroll with; all equal."""
    answers = [sorted(scroll_all(p, COLLECTION, **body)) for p in peers]
    assert all(a == answers[0] for a in answers), [len(a) for a in answers]
    return answers[0]


@pytest.fixture
def three(make_node):
    return Cluster(make_node).start(3)


def test_a_shard_snapshot_from_one_peer_replaces_another_peers_replica(three):
    peers = three
    create(peers[0], shard_number=2, replication_factor=2)
    holders = layout(peers[0])[0]
    by_id = {peer_id(p): p for p in peers}
    source, target = (by_id[p] for p in sorted(holders))
    upsert(peers[0], COLLECTION, make_points(200))
    data = snapshot_bytes(source, f"/collections/{COLLECTION}/shards/0")
    # Written after the cut: shard 0 points 200..299 and 0..49 deleted are not in the snapshot.
    upsert(peers[0], COLLECTION, make_points(300)[200:])
    r = peers[0].post(f"/collections/{COLLECTION}/points/delete?wait=true", json={"points": list(range(50))})
    assert r.status_code == 200, r.text

    # A peer without a replica of the shard has nothing to recover it into.
    outsider = next(p for p in peers if peer_id(p) not in holders)
    r = requests.post(f"{outsider.url}/collections/{COLLECTION}/shards/0/snapshots/upload",
                      files={"snapshot": ("s.snapshot", data)}, timeout=60)
    assert r.status_code == 404, r.text

    # priority `snapshot`: the recovered replica is the source of truth; the other one turns Dead
    # and is brought up to date from it by a transfer.
    upload(target, f"/collections/{COLLECTION}/shards/0", data, "snapshot")
    expected = sorted([i for i in range(200) if shard_of(i, 2) == 0]
                      + [i for i in range(50, 300) if shard_of(i, 2) == 1])
    assert ids_everywhere(peers) == expected
    for p in peers:
        wait_for(lambda: layout(p)[0] == {peer_id(target): "Active", peer_id(source): "Active"}, timeout=60,
                 message="both replicas Active again")
    assert local_ids(source, 0) == local_ids(target, 0) == [i for i in range(200) if shard_of(i, 2) == 0]
    # The shard answers writes again, on its Active replica.
    upsert(peers[2], COLLECTION, make_points(301)[300:])
    assert 300 in ids_everywhere(peers)


def test_collection_snapshot_priorities_decide_the_source_of_truth(three):
    peers = three
    create(peers[0], shard_number=2, replication_factor=3)
    upsert(peers[0], COLLECTION, make_points(100))
    r = peers[0].put(f"/collections/{COLLECTION}/index?wait=true", json={"field_name": "group", "field_schema": "keyword"})
    assert r.status_code == 200, r.text
    data = snapshot_bytes(peers[0], f"/collections/{COLLECTION}")
    upsert(peers[0], COLLECTION, make_points(150)[100:])
    ids = [peer_id(p) for p in peers]

    def all_active():
        return all(state == "Active" for p in peers for shard in layout(p).values() for state in shard.values())

    def replicas_hold(ids):
        return all(sorted(local_ids(p, shard)) == sorted(i for i in ids if shard_of(i, 2) == shard)
                   for p in peers for shard in (0, 1))

    # `replica`: the other replicas keep the data; the recovered ones turn Dead and are brought up
    # to date from them.
    upload(peers[1], f"/collections/{COLLECTION}", data, "replica")
    assert ids_everywhere(peers) == list(range(150))
    wait_for(all_active, timeout=60, message="every replica Active again")
    assert replicas_hold(range(150))

    # `snapshot`: the recovered replicas are the source of truth; the others turn Dead and are
    # brought to the snapshot's data.
    upload(peers[2], f"/collections/{COLLECTION}", data, "snapshot")
    assert ids_everywhere(peers) == list(range(100))
    wait_for(all_active, timeout=60, message="every replica Active again")
    assert replicas_hold(range(100))
    assert ids_everywhere(peers, filter={"must": [{"key": "group", "match": {"value": "g3"}}]}) == \
        [i for i in range(100) if i % 7 == 3]

    # A snapshot of another collection's vectors is refused and changes nothing.
    r = peers[0].put("/collections/other", json={"vectors": {"size": DIM + 1, "distance": "Dot"}, "shard_number": 2})
    assert r.status_code == 200, r.text
    other = snapshot_bytes(peers[0], "/collections/other")
    r = requests.post(f"{peers[2].url}/collections/{COLLECTION}/snapshots/upload", files={"snapshot": ("s.snapshot", other)},
                      timeout=60)
    assert r.status_code == 400 and "not compatible" in r.json()["status"]["error"], r.text
    assert ids_everywhere(peers) == list(range(100))


def test_a_shard_whose_only_peer_is_gone_comes_back_from_its_snapshot_on_a_new_peer(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    create(peers[0], shard_number=3, replication_factor=1)
    points = make_points(300)
    upsert(peers[0], COLLECTION, points)
    lost = peers[2]
    lost_id = peer_id(lost)
    lost_shards = sorted(s for s, holders in layout(peers[0]).items() if lost_id in holders)
    assert lost_shards
    data = snapshot_bytes(lost, f"/collections/{COLLECTION}")
    lost.kill()
    r = peers[0].delete(f"/cluster/peer/{lost_id}?force=true", timeout=60)
    assert r.status_code == 200, r.text
    wait_for(lambda: all(layout(peers[0]).get(s, {}) == {} for s in lost_shards), message="the lost shards have no replica")

    # A new peer joins and recovers the collection snapshot: the shards without a replica are its.
    fresh = cluster.add(bootstrap=peers[0])
    cluster.wait_converged()
    upload(fresh, f"/collections/{COLLECTION}", data, "replica")
    fresh_id = peer_id(fresh)
    for p in [peers[0], peers[1], fresh]:
        wait_for(lambda: all(layout(p).get(s) == {fresh_id: "Active"} for s in lost_shards), message="the new peer holds the lost shards")
    assert ids_everywhere([peers[0], peers[1], fresh]) == list(range(300))
