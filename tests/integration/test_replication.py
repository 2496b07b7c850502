"""Replication under faults: replicated shards on three real peers keep serving while one peer is
killed, paused or removed; write consistency, ordering, Listener nodes and rate limits as Qdrant
users meet them. Every test keeps a ledger of acknowledged writes and checks it at the end.
"""

import os
import signal
import threading
import time

import pytest

from test_cluster import Cluster, wait_for
from test_sharding import DIM, make_points, peer_id, scroll_all, upsert

COLLECTION = "rep"


def create(node, **params):
    body = {"vectors": {"size": DIM, "distance": "Dot"}, "shard_number": 3, "replication_factor": 2, **params}
    r = node.put(f"/collections/{COLLECTION}", json=body)
    assert r.status_code == 200, r.text


def count(node, **params):
    r = node.post(f"/collections/{COLLECTION}/points/count", params=params, json={}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["result"]["count"]


def states_of(node, peer):
    """Shard id → state of `peer`'s replicas, as `node` sees them."""
    info = node.get(f"/collections/{COLLECTION}/cluster").json()["result"]
    if info["peer_id"] == peer:
        return {s["shard_id"]: s["state"] for s in info["local_shards"]}
    return {s["shard_id"]: s["state"] for s in info["remote_shards"] if s["peer_id"] == peer}


def recovered(peers, peer):
    """Waits until `peer`'s replicas, which the others saw Dead, are Active again as every peer sees
    them, with no transfer left (a peer back from a pause or a partition sees its own replicas as
    it left them until it catches up)."""
    wait_for(lambda: all(set(states_of(p, peer).values()) == {"Active"} for p in peers) and
             all(not p.get(f"/collections/{COLLECTION}/cluster").json()["result"]["shard_transfers"] for p in peers),
             timeout=90, message=f"the replicas of peer {peer} recovered")


def point(i, writer="w"):
    return {"id": i, "vector": [((i * 7919 + k) % 17) / 17 for k in range(DIM)], "payload": {"writer": writer}}


def follower(cluster):
    leader, _ = cluster.leader()
    return next(p for p in cluster.peers if p is not leader)


@pytest.fixture
def three(make_node):
    return Cluster(make_node).start(3)


def test_two_writers_keep_writing_while_a_peer_is_killed(make_node):
    # rf 2, write_consistency_factor 1: while one peer dies, two clients writing through the others
    # see at most a short blip; every acknowledged point is on every live replica afterwards.
    cluster = Cluster(make_node)
    cluster.start(3)
    victim = follower(cluster)
    peers = [p for p in cluster.peers if p is not victim] + [victim]
    create(peers[0], write_consistency_factor=1)
    victim_id = peer_id(victim)
    acked, failures, gaps = [], [], []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(node, base):
        last_ok = time.monotonic()
        i = 0
        while not stop.is_set():
            batch = [point(base + i + k) for k in range(5)]
            try:
                r = node.put(f"/collections/{COLLECTION}/points?wait=true", json={"points": batch}, timeout=60)
                ok = r.status_code == 200
            except Exception as error:  # noqa: BLE001 - any failure is a failed write
                ok, r = False, error
            now = time.monotonic()
            with lock:
                if ok:
                    acked.extend(p["id"] for p in batch)
                    gaps.append(now - last_ok)
                    last_ok = now
                else:
                    failures.append(str(getattr(r, "text", r)))
            i += 5

    threads = [threading.Thread(target=writer, args=(peers[n], n * 1_000_000)) for n in (0, 1)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    victim.kill()
    time.sleep(4.0)
    stop.set()
    for t in threads:
        t.join(timeout=90)
    blip = max(gaps)
    print(f"{len(acked)} points acknowledged, {len(failures)} writes failed, longest gap between acknowledged writes {blip:.2f}s")
    assert not failures, failures[:3]
    assert blip < 5, f"writes stalled for {blip:.2f}s"
    for p in peers[:2]:
        wait_for(lambda: set(states_of(p, victim_id).values()) == {"Dead"}, message="the killed peer's replicas are Dead")
        assert count(p) == len(acked)
        assert sorted(scroll_all(p, COLLECTION)) == sorted(acked)
        r = p.post(f"/collections/{COLLECTION}/points/query", json={"query": point(acked[-1])["vector"], "limit": 3})
        assert r.status_code == 200 and len(r.json()["result"]["points"]) == 3


def test_write_consistency_factor_above_the_live_replicas_refuses_writes(three):
    # rf 3 and write_consistency_factor 3 with one peer down: no write is acknowledged, and the
    # error says how many replicas applied it.
    peers = three
    create(peers[0], replication_factor=3, write_consistency_factor=3)
    upsert(peers[0], COLLECTION, [point(i) for i in range(30)])
    peers[2].kill()
    r = peers[0].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(100)]}, timeout=90)
    assert r.status_code == 503, r.text
    assert "Only 2 of the 3 replicas of shard" in r.json()["status"]["error"], r.text
    assert "write_consistency_factor asks for 3" in r.json()["status"]["error"]
    # Lowered to 1, the same write goes through and the dead peer's replicas are marked Dead.
    r = peers[0].patch(f"/collections/{COLLECTION}", json={"params": {"write_consistency_factor": 1}})
    assert r.status_code == 200, r.text
    r = peers[1].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(100)]}, timeout=90)
    assert r.status_code == 200, r.text
    assert count(peers[0]) == 31 and count(peers[1]) == 31


def test_read_consistency_over_replicas_that_differ(make_node):
    # rf 2 and write_consistency_factor 2: with one replica's peer killed, a write reaches only the
    # other replica and is refused, but stays there (as in Qdrant). Both replicas remain Active and,
    # once the peer is back, differ by that point; read consistency decides whether a read shows it.
    # (A paused peer would not do: it applies the queued call when it resumes.)
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    create(peers[0], shard_number=1, replication_factor=2, write_consistency_factor=2)
    upsert(peers[0], COLLECTION, [point(i) for i in range(10)])
    layout = peers[0].get(f"/collections/{COLLECTION}/cluster").json()["result"]
    holders = [s["peer_id"] for s in layout["remote_shards"]] + ([layout["peer_id"]] if layout["local_shards"] else [])
    by_id = {peer_id(p): p for p in peers}
    behind, writer = by_id[holders[0]], by_id[holders[1]]
    # A first write through the writer moves its clock past 0 (a fresh clock's first send is
    # rejected everywhere and sent again, which a down replica would turn into a plain failure).
    upsert(writer, COLLECTION, [point(0)])
    behind.kill()
    r = writer.put(f"/collections/{COLLECTION}/points?wait=true&timeout=5", json={"points": [point(99)]}, timeout=30)
    assert r.status_code == 503 and "Only 1 of the 2 replicas" in r.json()["status"]["error"], r.text
    behind.start()
    wait_for(lambda: count(behind) == 10, message="the restarted replica answers")
    assert set(states_of(writer, holders[0]).values()) == {"Active"}
    assert set(states_of(writer, holders[1]).values()) == {"Active"}

    def ids(node, consistency):
        r = node.post(f"/collections/{COLLECTION}/points/scroll", params={"consistency": consistency}, json={"limit": 100})
        assert r.status_code == 200, r.text
        return sorted(p["id"] for p in r.json()["result"]["points"])
    everything, agreed = list(range(10)) + [99], list(range(10))
    # One replica: each peer reads its own, so the two answers differ.
    assert ids(writer, 1) == everything and ids(behind, 1) == agreed
    # Both replicas asked, only what both return: all, 2, quorum (2 of 2) and majority (more than 1 of 2).
    for consistency in ("all", "2", "quorum", "majority"):
        assert ids(writer, consistency) == agreed and ids(behind, consistency) == agreed, consistency
    r = writer.post(f"/collections/{COLLECTION}/points/count?consistency=all", json={})
    assert r.json()["result"]["count"] == 10
    r = writer.post(f"/collections/{COLLECTION}/points/count?consistency=one", json={})
    assert r.status_code == 400 and "consistency" in r.json()["status"]["error"], r.text


def test_a_paused_peer_never_holds_requests_past_their_timeout(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    create(peers[0])
    upsert(peers[0], COLLECTION, [point(i) for i in range(300)])
    paused = follower(cluster)
    paused_id = peer_id(paused)
    live = [p for p in peers if p is not paused]
    paused.proc.send_signal(signal.SIGSTOP)
    try:
        acked = list(range(300))
        slowest = 0.0
        for round_ in range(6):
            node = live[round_ % 2]
            batch = [point(1000 + round_ * 10 + k) for k in range(10)]
            started = time.monotonic()
            r = node.put(f"/collections/{COLLECTION}/points?wait=true&timeout=3", json={"points": batch}, timeout=30)
            took = time.monotonic() - started
            slowest = max(slowest, took)
            assert took < 4, f"a write with timeout=3 took {took:.2f}s"
            assert r.status_code == 200, r.text
            acked += [p["id"] for p in batch]
            for path, body in (("points/count", {}), ("points/scroll", {"limit": 1000}),
                               ("points/query", {"query": point(1)["vector"], "limit": 5})):
                started = time.monotonic()
                r = node.post(f"/collections/{COLLECTION}/{path}?timeout=3", json=body, timeout=30)
                took = time.monotonic() - started
                slowest = max(slowest, took)
                assert took < 4, f"{path} with timeout=3 took {took:.2f}s"
                assert r.status_code == 200, r.text
        print(f"slowest request while a peer was paused: {slowest:.2f}s")
        for p in live:
            assert set(states_of(p, paused_id).values()) == {"Dead"}
            assert count(p) == len(acked)
    finally:
        paused.proc.send_signal(signal.SIGCONT)
    # The resumed peer learns its replicas are Dead (until then it answers from what it holds), and
    # they are brought up to date by transfers from the live ones until they are Active again.
    recovered(peers, paused_id)
    assert sorted(scroll_all(paused, COLLECTION)) == sorted(acked)


def test_forced_removal_of_a_dead_peer_takes_its_replicas_out_and_restores_the_replication_factor(three):
    peers = three
    create(peers[0])
    upsert(peers[0], COLLECTION, [point(i) for i in range(100)])
    gone = peers[2]
    gone_id = peer_id(gone)
    gone.kill()
    r = peers[0].delete(f"/cluster/peer/{gone_id}")
    assert r.status_code == 400 and "there are shards on it" in r.json()["status"]["error"], r.text
    r = peers[0].delete(f"/cluster/peer/{gone_id}?force=true", timeout=60)
    assert r.status_code == 200, r.text
    for p in peers[:2]:
        wait_for(lambda: states_of(p, gone_id) == {}, message="the removed peer's replicas are gone")
        # Every shard keeps its replica on a remaining peer, and the shards that had one on the
        # removed peer get a second one on the other remaining peer (replication_factor 2).
        def restored():
            layout = p.get(f"/collections/{COLLECTION}/cluster").json()["result"]
            replicas = layout["local_shards"] + layout["remote_shards"]
            return (layout["shard_transfers"] == [] and sorted(s["shard_id"] for s in replicas) == [0, 0, 1, 1, 2, 2]
                    and all(s["state"] == "Active" for s in replicas))
        wait_for(restored, timeout=60, message="two Active replicas of every shard on the remaining peers")
    # Writes go to the remaining replicas at once.
    started = time.monotonic()
    r = peers[1].put(f"/collections/{COLLECTION}/points?wait=true", json={"points": [point(500)]}, timeout=60)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2
    assert count(peers[0]) == 101


def test_ordered_writes_keep_replicas_identical_and_fail_over(three):
    peers = three
    create(peers[0], shard_number=1, replication_factor=3)
    ids = list(range(20))

    def writer(node, name):
        for round_ in range(15):
            r = node.put(f"/collections/{COLLECTION}/points?wait=true&ordering=strong",
                         json={"points": [point(i, f"{name}-{round_}") for i in ids]}, timeout=60)
            assert r.status_code == 200, r.text

    threads = [threading.Thread(target=writer, args=(peers[n], f"p{n}")) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    def replica(node):
        r = node.post(f"/collections/{COLLECTION}/shards/0/points/scroll", json={"limit": 100, "with_payload": True})
        assert r.status_code == 200, r.text
        return {p["id"]: p["payload"]["writer"] for p in r.json()["result"]["points"]}
    copies = [replica(p) for p in peers]
    assert copies[0] == copies[1] == copies[2] and len(copies[0]) == 20

    # The strong leader is the highest peer id; with it down, strong writes fail with an error
    # worth retrying and medium writes turn to the next replica.
    leader = max(peers, key=peer_id)
    leader_id = peer_id(leader)
    others = [p for p in peers if p is not leader]
    leader.kill()
    r = others[0].put(f"/collections/{COLLECTION}/points?wait=true&ordering=strong", json={"points": [point(1)]}, timeout=90)
    assert r.status_code == 500, r.text
    assert f"Failed to apply update with strong ordering via leader peer {leader_id}" in r.json()["status"]["error"], r.text
    outcomes = [others[0].put(f"/collections/{COLLECTION}/points?wait=true&ordering=medium",
                              json={"points": [point(2, "medium")]}, timeout=90).status_code for _ in range(2)]
    assert outcomes[-1] == 200, outcomes
    r = others[1].post(f"/collections/{COLLECTION}/points", json={"ids": [2], "with_payload": True})
    assert r.json()["result"][0]["payload"]["writer"] == "medium"
    r = others[0].put(f"/collections/{COLLECTION}/points?ordering=fast", json={"points": [point(3)]})
    assert r.status_code == 400 and "ordering" in r.json()["status"]["error"], r.text


def test_a_listener_takes_writes_and_is_never_read(make_node):
    cluster = Cluster(make_node)
    first = cluster.add()
    cluster.add(bootstrap=first)
    cluster.extra_env = {"QDRANT__STORAGE__NODE_TYPE": "Listener"}
    listener = cluster.add(bootstrap=first)
    cluster.wait_converged()
    peers = cluster.peers
    create(peers[0], shard_number=2, replication_factor=3)
    listener_id = peer_id(listener)
    wait_for(lambda: set(states_of(peers[0], listener_id).values()) == {"Listener"}, timeout=30,
             message="the listener's replicas are in Listener state")
    upsert(peers[0], COLLECTION, [point(i) for i in range(200)])

    def held():
        return sum(peers[2].post(f"/collections/{COLLECTION}/shards/{s}/points/count", json={}).json()["result"]["count"]
                   for s in (0, 1))
    wait_for(lambda: held() == 200, message="the listener applied the writes")
    # With the listener paused, reads through the other peers answer at once: it is never asked.
    listener.proc.send_signal(signal.SIGSTOP)
    try:
        for node in peers[:2]:
            for _ in range(5):
                started = time.monotonic()
                assert count(node) == 200
                assert time.monotonic() - started < 0.8
    finally:
        listener.proc.send_signal(signal.SIGCONT)


def test_rate_limits_answer_429_and_recover(node):
    r = node.put("/collections/limited", json={"vectors": {"size": 2, "distance": "Dot"},
                                               "strict_mode_config": {"enabled": True, "write_rate_limit": 60,
                                                                      "read_rate_limit": 60}})
    assert r.status_code == 200, r.text

    def put(ids):
        return node.put("/collections/limited/points?wait=true", json={"points": [{"id": i, "vector": [1, 0]} for i in ids]})
    assert put(range(50)).status_code == 200
    r = put(range(50, 70))
    assert r.status_code == 429, r.text
    error = r.json()["status"]["error"]
    assert error.startswith("Rate limiting exceeded: Write rate limit exceeded: Operation requires 20 tokens but only "), error
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= 11 and error.endswith(f"Retry after {retry_after}s")
    r = put(range(100, 200))
    assert r.status_code == 429 and "request larger than rate limiter capacity" in r.json()["status"]["error"]
    assert "Retry-After" not in r.headers
    time.sleep(retry_after)
    assert put(range(50, 70)).status_code == 200
    # Reads: a count costs 1 (plus its filter's conditions); with 10 a minute, the 11th in a burst
    # is refused until a token is back.
    r = node.patch("/collections/limited", json={"strict_mode_config": {"read_rate_limit": 10}})
    assert r.status_code == 200, r.text
    statuses = [node.post("/collections/limited/points/count", json={}).status_code for _ in range(10)]
    assert statuses == [200] * 10, statuses
    r = node.post("/collections/limited/points/count", json={})
    assert r.status_code == 429 and r.json()["status"]["error"].startswith("Rate limiting exceeded: Read rate limit exceeded"), r.text
    time.sleep(int(r.headers["Retry-After"]))
    assert node.post("/collections/limited/points/count", json={}).status_code == 200
    # Without strict mode the limits do not apply.
    r = node.patch("/collections/limited", json={"strict_mode_config": {"enabled": False}})
    assert r.status_code == 200, r.text
    assert put(range(200, 300)).status_code == 200


class Partition:
    """Two network namespaces joined by a veth pair: this test's thread and the majority's peers in
    one, the cut-off peer in the other. `cut()` drops every packet on the link; `heal()` lets them
    through again. Namespaces are this test's own; the machine's network is never touched."""

    CLONE_NEWNET = 0x40000000

    def __init__(self):
        import ctypes
        self.libc = ctypes.CDLL("libc.so.6", use_errno=True)
        tag = f"{os.getpid() % 100000}"
        self.majority, self.minority = f"qa{tag}", f"qb{tag}"
        self.link_a, self.link_b = f"qva{tag}", f"qvb{tag}"
        self.address_a, self.address_b = "10.231.0.1", "10.231.0.2"
        self.home = None

    def run(self, *command):
        import subprocess
        subprocess.run(command, check=True, capture_output=True)

    def setup(self):
        self.run("ip", "netns", "add", self.majority)
        self.run("ip", "netns", "add", self.minority)
        self.run("ip", "link", "add", self.link_a, "type", "veth", "peer", "name", self.link_b)
        for ns, link, address in ((self.majority, self.link_a, self.address_a), (self.minority, self.link_b, self.address_b)):
            self.run("ip", "link", "set", link, "netns", ns)
            self.run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", link)
            self.run("ip", "-n", ns, "link", "set", link, "up")
            self.run("ip", "-n", ns, "link", "set", "lo", "up")
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)

    def enter(self, ns):
        """Moves this thread (and the processes it starts from now on) into `ns`."""
        import ctypes
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if self.libc.setns(fd, self.CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {ns}")
        finally:
            os.close(fd)

    def cut(self):
        self.run("ip", "netns", "exec", self.majority, "iptables", "-A", "INPUT", "-i", self.link_a, "-j", "DROP")
        self.run("ip", "netns", "exec", self.majority, "iptables", "-A", "OUTPUT", "-o", self.link_a, "-j", "DROP")

    def heal(self):
        self.run("ip", "netns", "exec", self.majority, "iptables", "-F")

    def teardown(self):
        if self.home is not None:
            self.libc.setns(self.home, self.CLONE_NEWNET)
            os.close(self.home)
        for ns in (self.majority, self.minority):
            try:
                self.run("ip", "netns", "del", ns)
            except Exception:  # noqa: BLE001 - it may not exist when setup failed early
                pass


@pytest.fixture
def partition():
    net = Partition()
    try:
        net.setup()
    except Exception as error:  # noqa: BLE001 - reported as the reason to skip
        net.teardown()
        pytest.skip(f"this machine does not let the test create network namespaces: {error}")
    yield net
    net.teardown()


def test_a_partitioned_peer_is_cut_off_and_nothing_acknowledged_is_lost(make_node, partition):
    cluster = Cluster(make_node)
    partition.enter(partition.majority)
    first = cluster.add(host=partition.address_a)
    cluster.add(bootstrap=first, host=partition.address_a)
    partition.enter(partition.minority)
    cut_off = cluster.add(bootstrap=first, host=partition.address_b)
    partition.enter(partition.majority)
    cluster.wait_converged()
    peers = cluster.peers
    majority = peers[:2]
    create(peers[0], write_consistency_factor=1)
    acked = list(range(300))
    upsert(peers[0], COLLECTION, [point(i) for i in acked])
    cut_off_id = peer_id(cut_off)

    partition.cut()
    slowest, refused = 0.0, 0
    for round_ in range(10):
        batch = [point(1000 + round_ * 10 + k) for k in range(10)]
        started = time.monotonic()
        r = majority[round_ % 2].put(f"/collections/{COLLECTION}/points?wait=true&timeout=3", json={"points": batch}, timeout=30)
        slowest = max(slowest, time.monotonic() - started)
        if r.status_code == 200:
            acked += [p["id"] for p in batch]
        else:
            # Only while the majority elects a new leader, when the cut-off peer led consensus.
            refused += 1
    print(f"partitioned: {len(acked) - 300} of 100 points acknowledged, {refused} writes refused, slowest write {slowest:.2f}s")
    assert refused <= 2 and slowest < 4
    for p in majority:
        assert set(states_of(p, cut_off_id).values()) == {"Dead"}
        assert count(p) == len(acked)
        r = p.post(f"/collections/{COLLECTION}/points/query?timeout=3", json={"query": point(5)["vector"], "limit": 3})
        assert r.status_code == 200, r.text

    partition.heal()
    # The healed peer's replicas are brought up to date from the majority's and are Active again.
    recovered(peers, cut_off_id)
    for p in peers:
        assert sorted(scroll_all(p, COLLECTION)) == sorted(acked)
