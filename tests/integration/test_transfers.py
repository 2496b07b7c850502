"""Shard transfers on real peers: replicate and move a shard while clients write (streamed, or as a
snapshot with its graphs), Dead replicas
brought back by themselves after their peer was killed and restarted (by WAL delta, or streamed
when the WAL no longer reaches back), and the errors of `POST /collections/{c}/cluster`. Every
test keeps a ledger of acknowledged writes."""

import random
import threading
import time

import pytest
import requests

from test_cluster import Cluster, wait_for
from test_sharding import DIM, peer_id, scroll_all, shard_of
from test_snapshot_cluster import replica_states

COLLECTION = "moving"


def create(node, **params):
    body = {"vectors": {"size": DIM, "distance": "Dot"}, "optimizers_config": {"indexing_threshold": 100}, **params}
    r = node.put(f"/collections/{COLLECTION}", json=body)
    assert r.status_code == 200, r.text


def point(i, writer):
    return {"id": i, "vector": [((i * 7919 + k) % 17) / 17 for k in range(DIM)], "payload": {"writer": writer, "n": i}}


def layout(node):
    """Shard id → {peer id: state}, and the transfers, as `node` sees them."""
    return replica_states(node, COLLECTION), node.get(f"/collections/{COLLECTION}/cluster").json()["result"]["shard_transfers"]


def cluster_op(node, body, **params):
    return node.post(f"/collections/{COLLECTION}/cluster", params=params, json=body, timeout=30)


def all_points(node, shard=None):
    """id → payload of every point `node` answers with; with `shard`, of `node`'s own replica of it."""
    path = f"/collections/{COLLECTION}" + (f"/shards/{shard}" if shard is not None else "") + "/points/scroll"
    points, offset = {}, None
    while True:
        r = node.post(path, json={"limit": 1000, "offset": offset, "with_payload": True}, timeout=30)
        assert r.status_code == 200, r.text
        result = r.json()["result"]
        points.update({p["id"]: p["payload"] for p in result["points"]})
        offset = result["next_page_offset"]
        if offset is None:
            return points


class Writers:
    """Clients upserting distinct ids through the given peers until stopped; `acked` is the ledger."""

    def __init__(self, peers, count=2, start=100_000):
        self.acked, self.failed, self.errors = {}, 0, []
        self.acked_at = {}
        self.run_point = point
        self.body = {}
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(peers[i % len(peers)], start + i * 1_000_000, f"w{i}"))
                        for i in range(count)]

    def run(self, node, base, name):
        i = base
        while not self.stop_flag.is_set():
            batch = [self.run_point(i + k, name) for k in range(10)]
            try:
                r = requests.put(f"{node.url}/collections/{COLLECTION}/points?wait=true", json={"points": batch, **self.body}, timeout=30)
                ok, error = r.status_code == 200, f"{r.status_code} {r.text}"
            except requests.RequestException as e:
                ok, error = False, repr(e)
            with self.lock:
                if ok:
                    self.acked.update({p["id"]: p["payload"] for p in batch})
                    self.acked_at.update({p["id"]: time.monotonic() for p in batch})
                else:
                    self.failed += 1
                    self.errors.append(error)
            i += 10
            time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=60)


@pytest.fixture
def three(make_node):
    return Cluster(make_node).start(3)


def test_replicate_then_move_a_shard_while_clients_write(three):
    peers = three
    by_id = {peer_id(p): p for p in peers}
    create(peers[0], shard_number=2, replication_factor=1)
    r = requests.put(f"{peers[0].url}/collections/{COLLECTION}/points?wait=true",
                     json={"points": [point(i, "seed") for i in range(3000)]}, timeout=60)
    assert r.status_code == 200, r.text
    holders, _ = layout(peers[0])
    source = next(iter(holders[0]))
    others = sorted(p for p in by_id if p != source)

    with Writers(peers) as writers:
        time.sleep(0.5)
        r = cluster_op(peers[1], {"replicate_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": others[0]}})
        assert r.status_code == 200 and r.json()["result"] is True, r.text
        # The transfer is listed until it is done (the source reports its progress).
        _, transfers = layout(by_id[source])
        assert transfers == [] or transfers[0]["method"] == "stream_records"
        wait_for(lambda: layout(peers[2]) == ({0: {source: "Active", others[0]: "Active"}, 1: holders[1]}, []),
                 timeout=60, message="the new replica Active and the transfer gone")
        time.sleep(0.5)
    settled(peers[2])
    # Both replicas hold the same points and payloads: every point the source had, writes included.
    assert all_points(by_id[source], 0) == all_points(by_id[others[0]], 0)
    assert len(all_points(by_id[others[0]], 0)) > 1000

    with Writers(peers) as more:
        time.sleep(0.5)
        r = cluster_op(peers[0], {"move_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": others[1],
                                                 "method": "stream_records"}})
        assert r.status_code == 200, r.text
        wait_for(lambda: layout(peers[1]) == ({0: {others[0]: "Active", others[1]: "Active"}, 1: holders[1]}, []),
                 timeout=60, message="the shard moved: the source's replica gone")
        time.sleep(0.5)
    settled(peers[1])
    assert all_points(by_id[others[0]], 0) == all_points(by_id[others[1]], 0)
    r = by_id[source].post(f"/collections/{COLLECTION}/shards/0/points/scroll", json={"limit": 1})
    assert r.status_code == 404, r.text
    acked = {**writers.acked, **more.acked}
    assert len(acked) > 100
    for p in peers:
        stored = all_points(p)
        missing = [i for i in acked if i not in stored]
        assert not missing, f"{len(missing)} acknowledged points missing on {peer_id(p)}"
        assert all(stored[i] == payload for i, payload in acked.items())


def settled(node, timeout=120):
    """Waits until every replica is Active and no transfer runs, as `node` sees it: a replica that
    failed one of the last writes (and turned Dead) has been brought up to date again."""
    wait_for(lambda: layout(node)[1] == [] and all(state == "Active" for shard in layout(node)[0].values() for state in shard.values()),
             timeout=timeout, interval=0.1, message="every replica Active, no transfer running")


def segment_dirs(node, shard):
    """The segment directories of `node`'s replica of `shard`, and those of them holding a graph."""
    root = node.workdir / "storage" / "collections" / COLLECTION / str(shard) / "segments"
    names = {p.name for p in root.iterdir() if p.is_dir()} if root.exists() else set()
    return names, {n for n in names if any(f.name.startswith("hnsw-") for f in (root / n).iterdir())}


def test_a_shard_moves_by_snapshot_with_its_graphs_while_clients_write(three):
    peers = three
    by_id = {peer_id(p): p for p in peers}
    create(peers[0], shard_number=1, replication_factor=1, optimizers_config={"indexing_threshold": 10})
    r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(i, "seed") for i in range(3000)]}, timeout=60)
    assert r.status_code == 200, r.text
    holders, _ = layout(peers[0])
    source = by_id[next(iter(holders[0]))]
    target = next(p for p in peers if p is not source)
    wait_for(lambda: segment_dirs(source, 0)[1] and source.get(f"/collections/{COLLECTION}").json()["result"]["status"] == "green",
             timeout=120, message="the source's points indexed")

    with Writers(peers) as writers:
        time.sleep(0.5)
        r = cluster_op(peers[1], {"move_shard": {"shard_id": 0, "from_peer_id": peer_id(source), "to_peer_id": peer_id(target),
                                                 "method": "snapshot"}})
        assert r.status_code == 200, r.text
        wait_for(lambda: layout(peers[2]) == ({0: {peer_id(target): "Active"}}, []), timeout=90, interval=0.02,
                 message="the shard moved: the target Active, the source's replica gone")
        time.sleep(0.5)
    # The target took the source's segments as they were, graphs included: when it put them in
    # place, at least the 3000 first points were covered by a graph it did not build.
    recovered = [line for line in target.log().splitlines() if "Recovered a shard from a transfer's snapshot" in line]
    assert len(recovered) == 1, recovered
    assert int(recovered[0].split("indexed_vectors=")[1].split()[0]) >= 3000, recovered[0]
    assert transfer_log(peers)[0] == {"snapshot"}
    stored = all_points(target, 0)
    assert all(i in stored for i in range(3000))
    assert len(writers.acked) > 50
    for p in peers:
        stored = all_points(p)
        assert all(stored.get(i) == payload for i, payload in writers.acked.items()), f"acknowledged points missing on {peer_id(p)}"


def transfer_log(peers):
    """The methods of the transfers the peers started, and the WAL deltas that fell back to streaming."""
    text = "".join(p.log() for p in peers)
    started = [line for line in text.splitlines() if "Shard transfer started" in line]
    methods = {m for m in ("stream_records", "wal_delta", "snapshot") if any(m in line for line in started)}
    return methods, text.count("streaming every record instead")


def kill_write_restart(peers, victim, during, **create_params):
    """Creates the collection with a first batch of points on every peer, kills `victim`, runs
    `during()` while two clients write through the other peers, restarts it and waits until every
    replica is Active again; returns the writers' ledger."""
    create(peers[0], **create_params)
    r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(i, "seed") for i in range(500)]}, timeout=60)
    assert r.status_code == 200, r.text
    victim_id = peer_id(victim)
    victim.kill()
    others = [p for p in peers if p is not victim]
    with Writers(others) as writers:
        wait_for(lambda: all(s.get(victim_id) in (None, "Dead") for s in layout(others[0])[0].values()), timeout=30,
                 message="the killed peer's replicas Dead")
        during()
        victim.start()
        settled(others[0], timeout=90)
        time.sleep(0.5)
    settled(others[0])
    # Each replica on the restarted peer holds what the other replicas of its shard hold.
    holders, _ = layout(others[0])
    for shard, states in holders.items():
        if victim_id in states:
            for other in (p for p in others if peer_id(p) in states):
                assert all_points(victim, shard) == all_points(other, shard)
    stored = all_points(victim)
    assert len(writers.acked) > 50
    assert all(stored.get(i) == payload for i, payload in writers.acked.items())
    return writers


def test_a_killed_peer_comes_back_and_its_dead_replicas_recover_by_themselves(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    kill_write_restart(peers, peers[2], lambda: time.sleep(2), shard_number=3, replication_factor=2)
    # The replicas only missed what their WAL-holding peers still have: a WAL delta each.
    assert transfer_log(peers) == ({"wal_delta"}, 0), transfer_log(peers)


def test_a_dead_replica_whose_gap_the_wal_no_longer_holds_is_streamed_instead(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)

    def flood():
        # Megabytes of writes the victim misses: with 1 MB WAL segments flushed every second,
        # the other peers' WALs no longer reach back to where it stopped.
        big = "x" * 2000
        for b in range(8):
            batch = [{"id": 900_000 + b * 500 + k, "vector": [0.5] * DIM, "payload": {"pad": big}} for k in range(500)]
            r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": batch}, timeout=60)
            assert r.status_code == 200, r.text
        time.sleep(3)
    kill_write_restart(peers, peers[2], flood, shard_number=1, replication_factor=3,
                       wal_config={"wal_capacity_mb": 1, "wal_segments_ahead": 0},
                       optimizers_config={"indexing_threshold": 100, "flush_interval_sec": 1})
    methods, fallbacks = transfer_log(peers)
    assert methods == {"wal_delta", "stream_records"} and fallbacks >= 1, (methods, fallbacks)
    assert len(all_points(peers[2], 0)) >= 500 + 4000


def test_replicate_points_copies_the_matching_points_into_another_shard_key_while_clients_write(three):
    peers = three
    a, b, _ = [peer_id(p) for p in peers]
    create(peers[0], sharding_method="custom", replication_factor=1)
    for key, peer in (("src", a), ("dst", b), ("wide", a)):
        r = peers[0].put(f"/collections/{COLLECTION}/shards", json={"shard_key": key, "placement": [peer]})
        assert r.status_code == 200, r.text
    shard_of_key = {s["shard_key"]: s["shard_id"] for s in peers[0].get(f"/collections/{COLLECTION}/cluster").json()["result"]["local_shards"]}
    shard_of_key.update({s["shard_key"]: s["shard_id"] for s in peers[0].get(f"/collections/{COLLECTION}/cluster").json()["result"]["remote_shards"]})
    # The target key keeps the points it had.
    own = [{"id": 5_000_000 + i, "vector": [1.0] * DIM, "payload": {"writer": "dst", "n": i}} for i in range(300)]
    r = peers[1].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": own, "shard_key": "dst"}, timeout=60)
    assert r.status_code == 200, r.text
    for start in range(0, 20_000, 2000):
        r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", timeout=60,
                         json={"points": [point(i, "seed" if i % 2 else "other") for i in range(start, start + 2000)], "shard_key": "src"})
        assert r.status_code == 200, r.text
    wanted = {"should": [{"key": "writer", "match": {"value": "seed"}}, {"key": "writer", "match": {"value": "w0"}}]}

    # Refused: the same key twice, an unknown key, a filter on an index that cannot serve it.
    r = cluster_op(peers[0], {"replicate_points": {"from_shard_key": "src", "to_shard_key": "src"}})
    assert r.status_code == 422 and "must be different from from_shard_key" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"replicate_points": {"from_shard_key": "moon", "to_shard_key": "dst"}})
    assert r.status_code == 400 and "moon" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"replicate_points": {"from_shard_key": "src", "to_shard_key": "dst", "filter": {"must": [{"key": 5}]}}})
    assert r.status_code in (400, 422), r.text

    writers = Writers(peers)
    writers.body = {"shard_key": "src"}
    with writers:
        time.sleep(0.5)
        r = cluster_op(peers[2], {"replicate_points": {"from_shard_key": "src", "to_shard_key": "dst", "filter": wanted}})
        assert r.status_code == 200 and r.json()["result"] is True, r.text
        running_until = time.monotonic()
        while True:
            polled = time.monotonic()
            states, transfers = layout(peers[0])
            # The target replica serves throughout: its own points stay readable.
            assert states[shard_of_key["dst"]] == {b: "Active"}, states
            if not transfers:
                break
            # A delete by filter on the source key while it is copied: forwarded only to points
            # that matched the transfer's filter, never to the target's own.
            r = peers[0].post(f"/collections/{COLLECTION}/points/delete?wait=true",
                              json={"filter": {"must": [{"key": "writer", "match": {"value": "dst"}}]}, "shard_key": "src"})
            assert r.status_code == 200, r.text
            assert transfers == [{"shard_id": shard_of_key["src"], "to_shard_id": shard_of_key["dst"], "from": a, "to": b,
                                  "sync": True, "method": "stream_records", **({"comment": transfers[0]["comment"]} if "comment" in transfers[0] else {})}]
            running_until = polled
            time.sleep(0.05)
        time.sleep(0.5)
    settled(peers[1])
    assert len(writers.acked) > 100 and writers.failed == 0, writers.errors[:3]
    source = all_points(by_id(peers, a), shard_of_key["src"])
    copied = all_points(by_id(peers, b), shard_of_key["dst"])
    # The source keeps everything; the target got the matching points as the source holds them, and kept its own.
    assert all(source.get(i) == payload for i, payload in writers.acked.items())
    assert len(source) == 20_000 + len(writers.acked)
    assert {i: p for i, p in copied.items() if p["writer"] == "dst"} == {x["id"]: x["payload"] for x in own}
    assert not [i for i, p in copied.items() if p["writer"] in ("other", "w1")]
    assert all(source[i] == p for i, p in copied.items() if p["writer"] != "dst")
    assert sum(1 for p in copied.values() if p["writer"] == "seed") == 10_000
    # Every matching point acknowledged while the transfer was still listed is in the target.
    late = [i for i, p in writers.acked.items() if p["writer"] == "w0" and writers.acked_at[i] < running_until and i not in copied]
    assert not late, f"{len(late)} forwarded points missing"
    # Searches and counts by key see the copies (the target's replica is Active).
    for p in peers:
        count = p.post(f"/collections/{COLLECTION}/points/count", json={"shard_key": "dst"}).json()["result"]["count"]
        assert count == len(copied)
    # Only a key with one replica can receive.
    r = cluster_op(peers[0], {"replicate_shard": {"shard_id": shard_of_key["dst"], "from_peer_id": b, "to_peer_id": a}})
    assert r.status_code == 200, r.text
    wait_for(lambda: layout(peers[0]) == (layout(peers[0])[0] | {shard_of_key["dst"]: {a: "Active", b: "Active"}}, []), timeout=60,
             message="a second replica of the target key")
    r = cluster_op(peers[0], {"replicate_points": {"from_shard_key": "wide", "to_shard_key": "dst"}})
    assert r.status_code == 400 and "exactly one replica" in r.json()["status"]["error"], r.text


def by_id(peers, peer):
    return next(p for p in peers if peer_id(p) == peer)


def test_cluster_operations_are_checked(three):
    peers = three
    create(peers[0], shard_number=1, replication_factor=2)
    holders, _ = layout(peers[0])
    a, b = sorted(holders[0])
    c = next(peer_id(p) for p in peers if peer_id(p) not in (a, b))
    r = cluster_op(peers[0], {"move_shard": {"shard_id": 0, "from_peer_id": a, "to_peer_id": a}})
    assert r.status_code == 422 and "cannot transfer shard to itself" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"move_shard": {"shard_id": 7, "from_peer_id": a, "to_peer_id": c}})
    assert r.status_code == 400 and "Shard 7" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"move_shard": {"shard_id": 0, "from_peer_id": a, "to_peer_id": 12345}})
    assert r.status_code == 400 and "Peer 12345 does not exist" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"replicate_shard": {"shard_id": 0, "from_peer_id": a, "to_peer_id": b}})
    assert r.status_code == 400 and "already has an active replica" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"abort_transfer": {"shard_id": 0, "from_peer_id": a, "to_peer_id": c}})
    assert r.status_code == 404 and "does not exist" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"restart_transfer": {"shard_id": 0, "from_peer_id": a, "to_peer_id": c}})
    assert r.status_code == 400, r.text
    r = cluster_op(peers[0], {"teleport_shard": {"shard_id": 0}})
    assert r.status_code == 400, r.text
    # drop_replica: the last replica stays (a lower replication factor dropped the other one).
    r = cluster_op(peers[0], {"drop_replica": {"shard_id": 0, "peer_id": c}})
    assert r.status_code == 400 and "has no replica" in r.json()["status"]["error"], r.text
    assert peers[0].patch(f"/collections/{COLLECTION}", json={"params": {"replication_factor": 1}}).status_code == 200
    wait_for(lambda: len(layout(peers[2])[0][0]) == 1, message="one replica left everywhere")
    (last,) = layout(peers[2])[0][0]
    r = cluster_op(peers[0], {"drop_replica": {"shard_id": 0, "peer_id": last}})
    assert r.status_code == 400 and "at least one active replica" in r.json()["status"]["error"], r.text
    (gone,) = {a, b} - {last}
    r = cluster_op(peers[0], {"replicate_shard": {"shard_id": 0, "from_peer_id": c, "to_peer_id": gone}})
    assert r.status_code == 400 and "not active on peer" in r.json()["status"]["error"], r.text


def test_the_replication_factor_changes_in_place_under_writes(three):
    peers = three
    create(peers[0], shard_number=2, replication_factor=1)
    r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(i, "seed") for i in range(2000)]}, timeout=60)
    assert r.status_code == 200, r.text

    def replicas(count):
        states, transfers = layout(peers[1])
        return transfers == [] and all(len(s) == count and set(s.values()) == {"Active"} for s in states.values())
    with Writers(peers) as writers:
        time.sleep(0.3)
        assert peers[0].patch(f"/collections/{COLLECTION}", json={"params": {"replication_factor": 3}}).status_code == 200
        wait_for(lambda: replicas(3), timeout=90, message="three Active replicas of each shard")
        assert peers[1].patch(f"/collections/{COLLECTION}", json={"params": {"replication_factor": 2}}).status_code == 200
        wait_for(lambda: replicas(2), timeout=30, message="two replicas of each shard")
        # A replica dropped by hand below the factor comes back.
        states, _ = layout(peers[0])
        dropped = sorted(states[0])[0]
        assert cluster_op(peers[2], {"drop_replica": {"shard_id": 0, "peer_id": dropped}}).json()["result"] is True
        wait_for(lambda: len(layout(peers[0])[0][0]) == 1 or layout(peers[0])[1], timeout=30, message="the replica dropped")
        wait_for(lambda: replicas(2), timeout=90, message="two replicas of each shard again")
        time.sleep(0.5)
    settled(peers[0])
    by_id = {peer_id(p): p for p in peers}
    states, _ = layout(peers[0])
    for shard, holders in states.items():
        copies = [all_points(by_id[i], shard) for i in holders]
        assert all(c == copies[0] for c in copies), f"the replicas of shard {shard} differ"
    stored = all_points(peers[2])
    assert all(i in stored for i in range(2000))
    assert len(writers.acked) > 50
    assert all(stored.get(i) == payload for i, payload in writers.acked.items())


def replica_counts(node):
    """Peer id → replicas of the collection it holds, as `node` sees it."""
    counts = {}
    for shard in layout(node)[0].values():
        for peer in shard:
            counts[peer] = counts.get(peer, 0) + 1
    return counts


def test_a_joining_peer_gets_shards_and_a_drained_peer_leaves_while_clients_write(make_node):
    cluster = Cluster(make_node, extra_env={"QDRANT__CLUSTER__REBALANCE": "true"})
    peers = cluster.start(3)
    create(peers[0], shard_number=6, replication_factor=1)
    r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(i, "seed") for i in range(3000)]}, timeout=60)
    assert r.status_code == 200, r.text
    assert sorted(replica_counts(peers[0]).values()) == [2, 2, 2]
    with Writers([peers[0], peers[2]]) as writers:
        time.sleep(0.5)
        fourth = cluster.add(bootstrap=peers[0])
        cluster.wait_converged()
        # Shards move onto the new peer, one at a time, until every peer holds 1 or 2 of the 6.
        wait_for(lambda: layout(peers[0])[1] == [] and sorted(replica_counts(peers[0]).values()) == [1, 1, 2, 2]
                 and replica_counts(peers[0]).get(peer_id(fourth), 0) >= 1, timeout=120, interval=0.2,
                 message="the shards spread over four peers")
        settled(peers[0])
        # A drained peer's shards move to the others before it leaves.
        drained = peers[1]
        r = peers[0].delete(f"/cluster/peer/{peer_id(drained)}", params={"drain": "true", "timeout": 120}, timeout=130)
        assert r.status_code == 200, r.text
        time.sleep(0.5)
    assert peer_id(drained) not in replica_counts(peers[0])
    assert str(peer_id(drained)) not in peers[0].get("/cluster").json()["result"]["peers"]
    assert sorted(replica_counts(peers[0]).values()) == [2, 2, 2]
    settled(peers[0])
    assert writers.failed == 0, (f"{writers.failed} writes failed while shards moved", writers.errors[:5])
    assert len(writers.acked) > 50
    for p in (peers[0], peers[2], fourth):
        stored = all_points(p)
        assert all(i in stored for i in range(3000))
        assert all(stored.get(i) == payload for i, payload in writers.acked.items()), f"acknowledged points missing on {peer_id(p)}"


def test_a_single_node_refuses_cluster_operations(node):
    assert node.put(f"/collections/{COLLECTION}", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code == 200
    r = node.post(f"/collections/{COLLECTION}/cluster", json={"drop_replica": {"shard_id": 0, "peer_id": 1}})
    assert r.status_code == 405 and "standalone" in r.json()["status"]["error"], r.text


@pytest.mark.parametrize("method", ["stream_records", "snapshot", "wal_delta"])
@pytest.mark.parametrize("victim_role", ["source", "target"])
def test_a_transfer_whose_source_or_target_is_killed_ends_and_loses_nothing(make_node, method, victim_role):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    by_id = {peer_id(p): p for p in peers}
    create(peers[0], shard_number=1, replication_factor=2)
    for start in range(0, 20_000, 2_000):
        r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true",
                         json={"points": [point(i, "seed") for i in range(start, start + 2_000)]}, timeout=60)
        assert r.status_code == 200, r.text
    holders, _ = layout(peers[0])
    source, other = sorted(holders[0])
    target = next(i for i in by_id if i not in holders[0])
    victim = by_id[source if victim_role == "source" else target]
    survivors = [p for p in peers if p is not victim]
    with Writers(survivors) as writers:
        time.sleep(0.3)
        r = cluster_op(by_id[other], {"replicate_shard": {"shard_id": 0, "from_peer_id": source, "to_peer_id": target, "method": method}})
        assert r.status_code == 200, r.text
        wait_for(lambda: layout(by_id[other])[1] or layout(by_id[other])[0][0].get(target) == "Active", timeout=30, interval=0.02,
                 message="the transfer running")
        victim.kill()
        # Without its source or target the transfer ends (aborted, or done if it was that far),
        # and the shard keeps an Active replica throughout.
        def ended():
            states, transfers = layout(by_id[other])
            assert any(state == "Active" for state in states[0].values()), states
            return transfers == []
        wait_for(ended, timeout=60, message="the transfer ended")
        time.sleep(1)
        victim.start()
        wait_for(lambda: all(state == "Active" for state in layout(by_id[other])[0][0].values()) and layout(by_id[other])[1] == []
                 and layout(by_id[other])[0][0].keys() >= {source, other}, timeout=120, interval=0.1, message="every replica Active again")
        time.sleep(0.5)
    settled(by_id[other])
    states, _ = layout(by_id[other])
    replicas = [by_id[i] for i in states[0]]
    reference = all_points(replicas[0], 0)
    for replica in replicas[1:]:
        mine = all_points(replica, 0)
        diff = sorted(set(mine) ^ set(reference))
        assert mine == reference, (f"replica on {peer_id(replica)} differs", [(i, i in mine, i in writers.acked) for i in diff[:12]],
                                   {i: p is victim for i, p in by_id.items()}, source, target, peer_id(replicas[0]))
    assert all(i in reference for i in range(20_000))
    assert len(writers.acked) > 20
    assert all(reference.get(i) == payload for i, payload in writers.acked.items())


BIG_DIM = 32


def big_point(i, writer):
    """A point with a vector of its own (a seeded random one: searches have few ties)."""
    rng = random.Random(i)
    return {"id": i, "vector": [rng.random() - 0.5 for _ in range(BIG_DIM)], "payload": {"writer": writer, "n": i}}


class Searcher:
    """A client searching through `node` until stopped; counts answers that were not 200."""

    def __init__(self, node, dim=None):
        self.node, self.done, self.failed = node, 0, []
        self.dim = dim or BIG_DIM
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        rng = random.Random(99)
        while not self.stop_flag.is_set():
            q = [rng.random() - 0.5 for _ in range(self.dim)]
            try:
                r = requests.post(f"{self.node.url}/collections/{COLLECTION}/points/query", json={"query": q, "limit": 5}, timeout=30)
                if r.status_code == 200:
                    self.done += 1
                else:
                    self.failed.append(f"{r.status_code} {r.text}")
            except requests.RequestException as e:
                self.failed.append(repr(e))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=60)


@pytest.mark.parametrize("method", ["stream_records", "snapshot", "wal_delta"])
def test_each_method_moves_an_indexed_quantized_shard_of_50k_points_under_load(make_node, method):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    by_id = {peer_id(p): p for p in peers}
    body = {"vectors": {"size": BIG_DIM, "distance": "Dot"}, "shard_number": 1, "replication_factor": 1,
            "optimizers_config": {"indexing_threshold": 1000},
            "quantization_config": {"scalar": {"type": "int8", "always_ram": True}}}
    assert peers[0].put(f"/collections/{COLLECTION}", json=body).status_code == 200
    for start in range(0, 50_000, 5_000):
        r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true",
                         json={"points": [big_point(i, "seed") for i in range(start, start + 5_000)]}, timeout=120)
        assert r.status_code == 200, r.text
    holders, _ = layout(peers[0])
    source = by_id[next(iter(holders[0]))]
    target = next(p for p in peers if p is not source)
    wait_for(lambda: source.get(f"/collections/{COLLECTION}").json()["result"]["status"] == "green", timeout=300,
             interval=0.5, message="the 50k points indexed and quantized")

    writers = Writers(peers, count=2)
    writers.run_point = big_point
    with Searcher(peers[2]) as searcher, writers:
        time.sleep(1)
        r = cluster_op(peers[1], {"move_shard": {"shard_id": 0, "from_peer_id": peer_id(source), "to_peer_id": peer_id(target),
                                                 "method": method}})
        assert r.status_code == 200, r.text
        wait_for(lambda: layout(peers[2]) == ({0: {peer_id(target): "Active"}}, []), timeout=300, interval=0.1,
                 message="the shard moved")
        time.sleep(1)
    settled(peers[0])
    # A search sent to the replica that just left is asked again of the new one: none fails.
    assert searcher.done > 10 and not searcher.failed, (searcher.done, searcher.failed[:3])
    assert len(writers.acked) > 50
    # Every point on the new replica, as its last acknowledged write left it; the old one gone.
    stored = all_points(target, 0)
    assert all(i in stored for i in range(50_000))
    assert all(stored.get(i) == payload for i, payload in writers.acked.items())
    assert source.post(f"/collections/{COLLECTION}/shards/0/points/scroll", json={"limit": 1}).status_code == 404
    methods, fallbacks = transfer_log(peers)
    if method == "snapshot":
        # The graph and the codes came with the snapshot: nothing was indexed on arrival.
        recovered = [line for line in target.log().splitlines() if "Recovered a shard from a transfer's snapshot" in line]
        # (The appendable segment keeps up to indexing_threshold, 1000 KB ≈ 8000 of these vectors,
        # without a graph: at least 42,000 of the 50,000 are in indexed segments.)
        assert len(recovered) == 1 and int(recovered[0].split("indexed_vectors=")[1].split()[0]) >= 42_000, recovered
    if method == "wal_delta":
        # A new replica has no recovery point: the delta falls back to streaming every record.
        assert methods == {"wal_delta", "stream_records"} and fallbacks == 1, (methods, fallbacks)
    else:
        assert methods == {method}
    # Exact searches through every peer answer what a single node holding the same points answers.
    single = make_node(subdir="single")
    assert single.put(f"/collections/{COLLECTION}", json={"vectors": {"size": BIG_DIM, "distance": "Dot"}}).status_code == 200
    everything, offset = [], None
    while True:
        r = target.post(f"/collections/{COLLECTION}/shards/0/points/scroll",
                        json={"limit": 5_000, "offset": offset, "with_payload": True, "with_vector": True}, timeout=60).json()["result"]
        everything += [{"id": x["id"], "vector": x["vector"], "payload": x["payload"]} for x in r["points"]]
        offset = r["next_page_offset"]
        if offset is None:
            break
    assert len(everything) == len(stored)
    for start in range(0, len(everything), 5_000):
        r = single.put(f"/collections/{COLLECTION}/points?wait=true", json={"points": everything[start:start + 5_000]}, timeout=120)
        assert r.status_code == 200, r.text
    rng = random.Random(5)
    for _ in range(10):
        q = {"query": [rng.random() - 0.5 for _ in range(BIG_DIM)], "limit": 10, "params": {"exact": True}}
        expected = [(p["id"], round(p["score"], 4)) for p in single.post(f"/collections/{COLLECTION}/points/query", json=q).json()["result"]["points"]]
        for p in peers:
            got = [(x["id"], round(x["score"], 4)) for x in p.post(f"/collections/{COLLECTION}/points/query", json=q).json()["result"]["points"]]
            assert got == expected, (peer_id(p), got, expected)


def resharding(node):
    return node.get(f"/collections/{COLLECTION}/cluster").json()["result"].get("resharding_operations")


@pytest.mark.parametrize("replication_factor", [1, 2])
def test_the_shard_number_changes_in_place_3_to_6_to_4_while_clients_write(three, replication_factor):
    peers = three
    create(peers[0], shard_number=3, replication_factor=replication_factor)
    r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(i, "seed") for i in range(3000)]}, timeout=60)
    assert r.status_code == 200, r.text
    r = cluster_op(peers[0], {"abort_resharding": {}})
    assert r.status_code == 400 and "not in progress" in r.json()["status"]["error"], r.text
    r = cluster_op(peers[0], {"start_resharding": {"direction": "up", "shard_key": "eu"}})
    assert r.status_code == 400, r.text

    def reshard(direction, count):
        r = cluster_op(peers[1], {"start_resharding": {"direction": direction}})
        assert r.status_code == 200 and r.json()["result"] is True, r.text
        (listed,) = resharding(peers[2]) or [None]
        assert listed is None or listed["direction"] == direction
        r = cluster_op(peers[0], {"start_resharding": {"direction": direction}})
        assert r.status_code == 400 and "already in progress" in r.json()["status"]["error"], r.text
        wait_for(lambda: all(resharding(p) is None and len(replica_states(p, COLLECTION)) == count for p in peers), timeout=120,
                 message=f"resharding {direction} to {count} shards done everywhere")

    with Writers(peers) as writers, Searcher(peers[1], dim=DIM) as searcher:
        time.sleep(0.5)
        for direction, shards in (("up", 4), ("up", 5), ("up", 6), ("down", 5), ("down", 4)):
            reshard(direction, shards)
            # Every acknowledged point is readable, exactly once, at every step.
            with writers.lock:
                acked = dict(writers.acked)
            # (Writers only add points: an exact count before and after brackets what a scroll sees.)
            count = lambda: peers[0].post(f"/collections/{COLLECTION}/points/count", json={"exact": True}).json()["result"]["count"]
            before = count()
            ids = scroll_all(peers[len(acked) % 3], COLLECTION)
            after = count()
            assert len(ids) == len(set(ids)), f"a point listed twice after going {direction}"
            assert before <= len(ids) <= after
            assert not set(acked) - set(ids), f"acknowledged points missing after going {direction}"
            hits = [h["id"] for h in peers[2].post(f"/collections/{COLLECTION}/points/query", json={"query": [1.0] * DIM, "limit": 100}).json()["result"]["points"]]
            assert len(hits) == len(set(hits)) == 100
        time.sleep(0.5)
    assert not searcher.failed and searcher.done > 10, searcher.failed[:3]
    settled(peers[0])
    assert writers.failed == 0 and len(writers.acked) > 100, writers.errors[:3]
    expected = {i: {"writer": "seed", "n": i} for i in range(3000)} | writers.acked
    assert peers[2].get(f"/collections/{COLLECTION}").json()["result"]["config"]["params"]["shard_number"] == 4
    states = replica_states(peers[0], COLLECTION)
    assert sorted(states) == [0, 1, 2, 3]
    # Each point is in exactly one shard, the one routing gives it among 4.
    by_id = {peer_id(p): p for p in peers}
    seen = {}
    for shard, holders in states.items():
        for holder in holders:
            for i, payload in all_points(by_id[holder], shard).items():
                assert shard_of(i, 4) == shard, f"point {i} in shard {shard}, routed to {shard_of(i, 4)}"
                assert seen.setdefault(i, payload) == payload
    assert seen == expected
    for p in peers:
        assert all_points(p) == expected
        assert p.post(f"/collections/{COLLECTION}/points/count", json={"exact": True}).json()["result"]["count"] == len(expected)


def test_resharding_can_be_switched_off(make_node):
    (peer,) = Cluster(make_node, extra_env={"QDRANT__CLUSTER__RESHARDING_ENABLED": "false"}).start(1)
    create(peer, shard_number=1)
    r = cluster_op(peer, {"start_resharding": {"direction": "up"}})
    assert r.status_code == 400 and "cluster.resharding_enabled" in r.json()["status"]["error"], r.text
    assert peer.get("/telemetry").json()["result"]["cluster"]["resharding_enabled"] is False
    assert len(replica_states(peer, COLLECTION)) == 1


def test_a_peer_killed_during_a_resharding_comes_back_and_every_point_is_in_one_shard(three):
    peers = three
    create(peers[0], shard_number=2, replication_factor=2)
    for start in range(0, 6000, 2000):
        r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(i, "seed") for i in range(start, start + 2000)]},
                         timeout=60)
        assert r.status_code == 200, r.text
    victim, others = peers[2], peers[:2]
    with Writers(others) as writers:
        time.sleep(0.5)
        r = cluster_op(others[0], {"start_resharding": {"direction": "up", "peer_id": peer_id(others[1])}})
        assert r.status_code == 200, r.text
        victim.kill()
        wait_for(lambda: all(resharding(p) is None and len(replica_states(p, COLLECTION)) == 3 for p in others), timeout=120,
                 message="the resharding done without the killed peer")
        victim.start()
        settled(others[0], timeout=120)
        time.sleep(0.5)
    settled(others[0])
    assert writers.failed == 0 and len(writers.acked) > 50, writers.errors[:3]
    expected = {i: {"writer": "seed", "n": i} for i in range(6000)} | writers.acked
    states = replica_states(others[0], COLLECTION)
    by_id = {peer_id(p): p for p in peers}
    for shard, holders in states.items():
        for holder in holders:
            held = all_points(by_id[holder], shard)
            assert all(shard_of(i, 3) == shard for i in held), f"a point left in shard {shard} on {holder}"
            assert held == {i: p for i, p in expected.items() if shard_of(i, 3) == shard}
    for p in peers:
        ids = scroll_all(p, COLLECTION)
        assert len(ids) == len(set(ids)) == len(expected)
        assert p.post(f"/collections/{COLLECTION}/points/count", json={"exact": True}).json()["result"]["count"] == len(expected)
