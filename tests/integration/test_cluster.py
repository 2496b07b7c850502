"""Cluster mode: real peers on loopback, consensus over the p2p port.

Every peer is its own process with its own storage directory; the first founds the cluster with
--uri, the others join with --bootstrap. The tests kill peers with SIGKILL and check what the
survivors and the restarted peers report.
"""

import os
import shutil
import time

import pytest
import requests

from conftest import free_port


def wait_for(condition, timeout=20.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except requests.RequestException as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")


class Cluster:
    def __init__(self, make_node, extra_env=None):
        self.make_node = make_node
        self.extra_env = extra_env or {}
        self.peers = []
        self.count = 0

    def env(self, p2p_port):
        # Rebalancing (on by default) is off unless a test asks for it: most tests check where
        # they put the shards.
        return {"QDRANT__CLUSTER__ENABLED": "true", "QDRANT__CLUSTER__P2P__PORT": str(p2p_port),
                "QDRANT__CLUSTER__REBALANCE": "false", **self.extra_env}

    def add(self, bootstrap=None, start=True, host="127.0.0.1"):
        """A peer reached at `host` (listening on every address of its network namespace when that
        is not loopback)."""
        self.count += 1
        p2p = free_port()
        uri = f"http://{host}:{p2p}"
        args = ["--uri", uri]
        if bootstrap is not None:
            args += ["--bootstrap", bootstrap.p2p_uri]
        env = self.env(p2p)
        if host != "127.0.0.1":
            env["QDRANT__SERVICE__HOST"] = "0.0.0.0"
        node = self.make_node(env=env, args=args, start=False, subdir=f"peer{self.count}")
        node.url = f"http://{host}:{node.port}"
        node.p2p_uri = uri
        if start:
            node.start()
        self.peers.append(node)
        return node

    @staticmethod
    def info(node):
        return node.get("/cluster").json()["result"]

    def start(self, size):
        first = self.add()
        for _ in range(size - 1):
            self.add(bootstrap=first)
        self.wait_converged()
        return self.peers

    def alive(self):
        return [p for p in self.peers if p.proc and p.proc.poll() is None]

    def wait_converged(self, timeout=30):
        peers = self.alive()

        def converged():
            infos = [self.info(p) for p in peers]
            leaders = {i["raft_info"]["leader"] for i in infos}
            return (len(leaders) == 1 and None not in leaders
                    and all(i["raft_info"]["is_voter"] for i in infos)
                    and all(len(i["peers"]) == len(infos[0]["peers"]) for i in infos)
                    and infos)
        return wait_for(converged, timeout=timeout, message="one leader and all peers voters")

    def leader(self):
        for peer in self.alive():
            info = self.info(peer)
            if info["raft_info"]["role"] == "Leader":
                return peer, info
        return None


@pytest.fixture
def cluster(make_node):
    return Cluster(make_node)


def collections(node):
    return sorted(c["name"] for c in node.get("/collections").json()["result"]["collections"])


def test_three_peers_agree_on_a_leader_and_replicate_metadata(cluster, openapi):
    peers = cluster.start(3)
    infos = [Cluster.info(p) for p in peers]
    assert len({i["raft_info"]["leader"] for i in infos}) == 1
    assert sorted(i["raft_info"]["role"] for i in infos) == ["Follower", "Follower", "Leader"]
    assert len({i["peer_id"] for i in infos}) == 3
    assert {p.p2p_uri for p in peers} == {v["uri"] for v in infos[0]["peers"].values()}
    for p in peers:
        openapi.validate(p.get("/cluster"))

    # Changes made through any peer apply on every peer.
    r = peers[1].put("/collections/books", json={"vectors": {"size": 4, "distance": "Cosine"}})
    assert r.status_code == 200, r.text
    # The answer waits until the other (reachable) peers have applied the change too.
    assert collections(peers[0]) == ["books"] and collections(peers[2]) == ["books"]
    assert peers[2].post("/collections/aliases", json={
        "actions": [{"create_alias": {"collection_name": "books", "alias_name": "library"}}]}).json()["result"] is True
    assert peers[0].put("/cluster/metadata/keys/owner", json={"team": "search"}).json()["result"] is True
    assert peers[2].patch("/collections/books", json={"optimizers_config": {"indexing_threshold": 1234}}).status_code == 200
    for p in peers:
        wait_for(lambda: collections(p) == ["books"], message="collection on every peer")
        wait_for(lambda: p.get("/aliases").json()["result"]["aliases"] == [
            {"alias_name": "library", "collection_name": "books"}], message="alias on every peer")
        wait_for(lambda: p.get("/cluster/metadata/keys/owner").json()["result"] == {"team": "search"})
        wait_for(lambda: p.get("/collections/books").json()["result"]["config"]["optimizer_config"]["indexing_threshold"] == 1234)
        assert (p.workdir / "storage" / "collections" / "books" / "config.json").exists()
    assert peers[0].get("/cluster/metadata/keys").json()["result"] == ["owner"]

    # Points written through any peer are stored on the shards they route to.
    r = peers[1].put("/collections/books/points?wait=true", json={"points": [
        {"id": 1, "vector": [1, 0, 0, 0]}, {"id": 2, "vector": [0, 1, 0, 0]}]})
    assert r.status_code == 200, r.text

    # A conflicting change fails the same way everywhere, with Qdrant's error shape.
    r = peers[2].put("/collections/books", json={"vectors": {"size": 4, "distance": "Cosine"}})
    assert r.status_code == 409 and "already exists" in r.json()["status"]["error"]
    assert peers[0].delete("/collections/books").json()["result"] is True
    for p in peers:
        wait_for(lambda: collections(p) == [], message="deletion on every peer")
        wait_for(lambda: p.get("/aliases").json()["result"]["aliases"] == [])
    assert peers[1].delete("/cluster/metadata/keys/owner").json()["result"] is True
    wait_for(lambda: peers[2].get("/cluster/metadata/keys").json()["result"] == [])

    # Telemetry reports the cluster by level; tools wait on peer_metadata before acting on shard keys.
    for level, keys in [(0, {"enabled", "resharding_enabled"}), (1, {"enabled", "resharding_enabled", "status"}),
                        (2, {"enabled", "resharding_enabled", "status", "peers"}),
                        (3, {"enabled", "resharding_enabled", "status", "peers", "peer_metadata"})]:
        telemetry = openapi.validate(peers[1].get(f"/telemetry?details_level={level}")).json()["result"]["cluster"]
        assert set(telemetry) == keys and telemetry["enabled"] is True
        if level >= 1:
            assert telemetry["status"]["number_of_peers"] == 3 and telemetry["status"]["peer_id"] == infos[1]["peer_id"]
        if level >= 2:
            assert {v["uri"] for v in telemetry["peers"].values()} == {p.p2p_uri for p in peers}
        if level >= 3:
            assert telemetry["peer_metadata"] == {peer: {"version": "1.19.0"} for peer in telemetry["peers"]}

    metrics = peers[0].get("/metrics").text
    assert "cluster_enabled 1" in metrics and "cluster_peers_total 3" in metrics and "cluster_voter 1" in metrics
    assert "cluster_term " in metrics and "cluster_commit " in metrics and "cluster_pending_operations_total " in metrics


def test_leader_crash_elects_a_new_leader_and_the_peer_catches_up(cluster):
    peers = cluster.start(3)
    leader, info = cluster.leader()
    old_term = info["raft_info"]["term"]
    leader.kill()
    killed_at = time.monotonic()
    survivors = [p for p in peers if p is not leader]

    def new_leader():
        infos = [Cluster.info(p) for p in survivors]
        ids = {i["raft_info"]["leader"] for i in infos}
        return len(ids) == 1 and info["peer_id"] not in ids and None not in ids and infos[0]["raft_info"]["term"] > old_term
    wait_for(new_leader, timeout=60, interval=0.05, message="new leader")
    print(f"new leader elected {time.monotonic() - killed_at:.2f}s after the leader was killed")

    # Metadata changes go on, through either survivor.
    assert survivors[0].put("/collections/after", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    assert survivors[1].put("/cluster/metadata/keys/k", json=1).status_code == 200

    # The crashed peer restarts with its storage and catches up.
    leader.start()
    wait_for(lambda: collections(leader) == ["after"], message="restarted peer catches up")
    wait_for(lambda: leader.get("/cluster/metadata/keys/k").json()["result"] == 1)
    # Ready once it has applied the leader's commit; its own proposals (activating its replica of
    # `after`) can still be in flight at this point, so readiness may take a moment more.
    wait_for(lambda: leader.get("/readyz").status_code == 200, timeout=10, message="restarted peer ready")
    assert Cluster.info(leader)["peer_id"] == info["peer_id"]
    cluster.wait_converged()


def test_losing_two_of_three_peers_blocks_changes_until_one_returns(cluster):
    peers = cluster.start(3)
    assert peers[0].put("/collections/before", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    for p in peers:
        wait_for(lambda: collections(p) == ["before"])
    leader, _ = cluster.leader()
    followers = [p for p in peers if p is not leader]
    # Two of three gone: the survivor has no quorum, whichever it is.
    followers[0].kill()
    leader.kill()
    survivor = followers[1]
    started = time.monotonic()
    r = survivor.put("/collections/blocked?timeout=3", json={"vectors": {"size": 2, "distance": "Dot"}}, timeout=30)
    assert r.status_code == 503, r.text
    assert "error" in r.json()["status"]
    elapsed = time.monotonic() - started
    print(f"refused after {elapsed:.2f}s with timeout=3")
    assert elapsed < 3 + 10, "the refusal came long after the request's timeout"
    assert collections(survivor) == ["before"]
    # Without a leader the survivor knows it is behind nothing it can confirm: not ready.
    wait_for(lambda: Cluster.info(survivor)["raft_info"]["leader"] is None, timeout=60, message="the survivor sees no leader")
    assert survivor.get("/readyz").status_code == 503

    # One peer returns: a majority again, and changes go through.
    followers[0].start()
    def created():
        r = survivor.put("/collections/after?timeout=5", json={"vectors": {"size": 2, "distance": "Dot"}}, timeout=30)
        return r.status_code == 200 or (r.status_code == 409)
    wait_for(created, timeout=30, interval=0.5, message="change accepted after a peer returned")
    wait_for(lambda: collections(followers[0]) == ["after", "before"])


def test_peer_removal_and_a_new_peer_joining(cluster):
    peers = cluster.start(3)
    leaving = peers[2]
    leaving_id = Cluster.info(leaving)["peer_id"]
    assert peers[0].put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    wait_for(lambda: collections(leaving) == ["c"])
    # The peer holds data of the collection: refused unless forced.
    r = peers[1].delete(f"/cluster/peer/{leaving_id}")
    assert r.status_code == 400 and "there are shards on it" in r.json()["status"]["error"]
    assert peers[1].delete("/cluster/peer/12345").status_code == 404
    r = peers[1].delete(f"/cluster/peer/{leaving_id}?force=true")
    assert r.status_code == 200 and r.json()["result"] is True
    for p in peers[:2]:
        wait_for(lambda: str(leaving_id) not in Cluster.info(p)["peers"], message="peer removed")
    leaving.kill()

    newcomer = cluster.add(bootstrap=peers[1])
    wait_for(lambda: collections(newcomer) == ["c"], message="newcomer has the catalogue")
    cluster.wait_converged()
    assert len(Cluster.info(peers[0])["peers"]) == 3
    assert peers[0].put("/collections/d", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    wait_for(lambda: collections(newcomer) == ["c", "d"])


def test_a_late_joiner_installs_a_snapshot(make_node):
    cluster = Cluster(make_node, extra_env={"QDRANT__CLUSTER__CONSENSUS__COMPACT_WAL_ENTRIES": "8"})
    first = cluster.add()
    for i in range(30):
        assert first.put(f"/cluster/metadata/keys/k{i}", json=i).status_code == 200
    assert first.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    joiner = cluster.add(bootstrap=first)
    wait_for(lambda: len(joiner.get("/cluster/metadata/keys").json()["result"]) == 30)
    assert joiner.get("/cluster/metadata/keys/k29").json()["result"] == 29
    assert collections(joiner) == ["c"]
    assert "Installed a consensus snapshot" in joiner.log()
    cluster.wait_converged()


def test_five_peers_survive_the_loss_of_two(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(5)
    assert len({Cluster.info(p)["raft_info"]["leader"] for p in peers}) == 1
    leader, _ = cluster.leader()
    other = next(p for p in peers if p is not leader)
    leader.kill()
    other.kill()
    survivors = cluster.alive()
    wait_for(lambda: cluster.leader() is not None, timeout=15, message="new leader among three of five")
    assert survivors[0].put("/collections/five", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    for p in survivors:
        wait_for(lambda: collections(p) == ["five"])


def test_a_peer_that_lost_its_storage_gets_a_clear_error(cluster):
    first = cluster.add()
    second = cluster.add(bootstrap=first)
    cluster.wait_converged()
    second.kill()
    shutil.rmtree(second.workdir / "storage")
    proc = second.spawn()
    assert proc.wait(timeout=60) == 1
    log = second.log()
    assert "already belongs to peer" in log and "DELETE /cluster/peer/" in log


def test_reinit_refounds_the_cluster_from_this_peer(cluster):
    first = cluster.add()
    assert first.put("/collections/kept", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    assert first.put("/cluster/metadata/keys/k", json="v").status_code == 200
    first.kill()
    first.args = first.args + ["--reinit"]
    first.start()
    wait_for(lambda: Cluster.info(first)["raft_info"]["role"] == "Leader")
    assert collections(first) == ["kept"]
    assert first.get("/cluster/metadata/keys/k").json()["result"] == "v"
    assert first.put("/collections/new", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200


def test_single_node_answers_cluster_calls_like_standalone_qdrant(node, openapi):
    r = openapi.validate(node.get("/cluster"))
    assert r.json()["result"] == {"status": "disabled"}
    for method, path in [("delete", "/cluster/peer/1"), ("get", "/cluster/metadata/keys"), ("post", "/cluster/recover"),
                         ("put", "/cluster/metadata/keys/a")]:
        r = getattr(node, method)(path, json=1) if method == "put" else getattr(node, method)(path)
        assert r.status_code == 405, (path, r.text)
        assert "standalone" in r.json()["status"]["error"]


def test_recover_installs_the_leaders_state(cluster):
    peers = cluster.start(2)
    assert peers[0].put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    leader, _ = cluster.leader()
    follower = next(p for p in peers if p is not leader)
    r = follower.post("/cluster/recover")
    assert r.status_code == 200 and r.json()["result"] is True
    wait_for(lambda: collections(follower) == ["c"])
    assert leader.post("/cluster/recover").json()["result"] is True


def test_reinit_with_bootstrap_rejoins_under_the_same_id(cluster):
    first, _, second = cluster.start(3)
    peer_id = Cluster.info(second)["peer_id"]
    second.kill()
    r = first.put("/collections/meanwhile", json={"vectors": {"size": 2, "distance": "Dot"}}, timeout=30)
    assert r.status_code == 200, r.text
    second.args = second.args + ["--reinit"]
    second.start()
    wait_for(lambda: collections(second) == ["meanwhile"], message="rejoined peer catches up")
    assert Cluster.info(second)["peer_id"] == peer_id
    cluster.wait_converged()
    assert len(Cluster.info(first)["peers"]) == 3


# Keys of Qdrant's own default configuration file, as its cluster scripts leave one in each peer's
# working directory: keys Quiver does not know are logged and ignored.
QDRANT_STYLE_CONFIG = """\
log_level: INFO
storage:
  storage_path: ./storage
  snapshots_path: ./snapshots
  on_disk_payload: true
  update_concurrency: null
  node_type: "Normal"
  performance:
    max_search_threads: 0
    optimizer_cpu_budget: 0
  optimizers:
    deleted_threshold: 0.2
    flush_interval_sec: 5
  hnsw_index:
    m: 16
    ef_construct: 100
  shard_transfer_method: null
service:
  max_request_size_mb: 32
  enable_tls: false
  enable_cors: true
cluster:
  p2p:
    enable_tls: false
  consensus:
    tick_period_ms: 100
telemetry_disabled: false
"""


def test_leader_loss_after_recover_elects_a_new_leader_every_round(make_node):
    """Both followers call /cluster/recover, then the leader is killed: the survivors elect a new
    leader every time. `QUIVER_RECOVER_ROUNDS` sets the number of rounds (20 by default)."""
    cluster = Cluster(make_node, extra_env={"QDRANT__LOG_LEVEL": "TRACE,raft::raft=info,quiver.rest=info"})
    first = None
    for i in range(3):
        peer = cluster.add(bootstrap=first, start=False)
        (peer.workdir / "config").mkdir(parents=True, exist_ok=True)
        (peer.workdir / "config" / "config.yaml").write_text(QDRANT_STYLE_CONFIG)
        peer.start()
        first = first or peer
    cluster.wait_converged()
    elections = []
    for round_number in range(int(os.environ.get("QUIVER_RECOVER_ROUNDS", "20"))):
        leader, info = wait_for(cluster.leader, timeout=60, message="a leader")
        followers = [p for p in cluster.alive() if p is not leader]
        if round_number % 5 == 0:
            r = followers[0].put(f"/collections/c{round_number}", json={"vectors": {"size": 2, "distance": "Dot"}}, timeout=60)
            assert r.status_code == 200, r.text
        for follower in followers:
            r = follower.post("/cluster/recover", timeout=60)
            assert r.status_code == 200 and r.json()["result"] is True, r.text
        leader.kill()
        killed_at = time.monotonic()

        def new_leader():
            infos = [Cluster.info(p) for p in followers]
            ids = {i["raft_info"]["leader"] for i in infos}
            return (len(ids) == 1 and info["peer_id"] not in ids and None not in ids
                    and infos[0]["raft_info"]["term"] > info["raft_info"]["term"])
        wait_for(new_leader, timeout=30, interval=0.05, message=f"round {round_number}: a new leader after /cluster/recover")
        elections.append(time.monotonic() - killed_at)
        leader.start()
        cluster.wait_converged(timeout=60)
    expected = sorted(f"c{i}" for i in range(0, len(elections), 5))
    for peer in cluster.alive():
        wait_for(lambda: collections(peer) == expected, message="every collection on every peer")
    print("elections after /cluster/recover (s):", " ".join(f"{t:.2f}" for t in elections))


def test_uri_and_bootstrap_can_come_from_the_environment(make_node):
    cluster = Cluster(make_node)
    first_port, second_port = free_port(), free_port()
    first_uri, second_uri = f"http://127.0.0.1:{first_port}", f"http://127.0.0.1:{second_port}"
    first = make_node(env={**cluster.env(first_port), "QDRANT_URI": first_uri}, subdir="env1")
    second = make_node(env={**cluster.env(second_port), "QDRANT_URI": second_uri, "QDRANT_BOOTSTRAP": first_uri}, subdir="env2")
    for peer in (first, second):
        wait_for(lambda: {p["uri"] for p in Cluster.info(peer)["peers"].values()} == {first_uri, second_uri},
                 timeout=60, message="both peers known by the URIs from the environment")
