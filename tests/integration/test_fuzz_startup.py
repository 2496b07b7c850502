"""Hostile files: a node starts on a copy of a storage whose files were damaged one at a time: bytes
changed, cut, repeated or inserted, a file emptied or removed. It must either serve or stop with an
error message and an exit code of its own; never crash (a signal) and never hang. A node that serves
must answer reads of the collection without a 5xx.

Two storages are damaged: a single node's collection files (WAL segments, segment files, their lists,
the collection's configuration) and aliases, and a cluster peer's own files (its identity, the Raft
log, its snapshots and metadata, the applied index).

`QUIVER_FUZZ_SECONDS` (default 30 here, split between the two) and `QUIVER_FUZZ_SEED` (default 1)
set the run, as in test_fuzz.py; a longer one:
`QUIVER_FUZZ_SECONDS=600 QUIVER_FUZZ_SEED=$RANDOM pytest tests/integration/test_fuzz_startup.py`.
"""

import os
import random
import shutil
import time
from collections import Counter

import requests

from conftest import Node, free_port
from test_fuzz import mutate_bytes

SECONDS = float(os.environ.get("QUIVER_FUZZ_SECONDS", "30"))
SEED = int(os.environ.get("QUIVER_FUZZ_SEED", "1"))
START_S = 30


def damage(rng, path):
    """One damage to the file at `path`; returns what was done."""
    data = path.read_bytes()
    roll = rng.random()
    if roll < 0.1:
        path.unlink()
        return "removed"
    if roll < 0.2:
        path.write_bytes(b"")
        return "emptied"
    path.write_bytes(mutate_bytes(rng, data))
    return "mutated"


def fill(node, rng):
    """A collection with indexed immutable segments, a payload index, an alias, and a WAL with writes
    the segments do not hold yet (the caller kills the node rather than stopping it)."""
    node.put("/collections/c", json={
        "vectors": {"size": 8, "distance": "Cosine"}, "sparse_vectors": {"s": {}},
        "optimizers_config": {"indexing_threshold": 1, "default_segment_number": 2},
        "hnsw_config": {"m": 8, "ef_construct": 16},
        "quantization_config": {"scalar": {"type": "int8"}},
    }).raise_for_status()
    node.put("/collections/c/index?wait=true", json={"field_name": "n", "field_schema": "integer"}).raise_for_status()
    node.post("/collections/aliases", json={"actions": [{"create_alias": {"collection_name": "c", "alias_name": "a"}}]}).raise_for_status()
    for start in range(0, 600, 200):
        node.put("/collections/c/points?wait=true", json={"points": [
            {"id": i, "vector": {"": [rng.random() for _ in range(8)], "s": {"indices": [i % 7, 9], "values": [1.0, 0.5]}},
             "payload": {"n": i, "g": "abc"[i % 3]}} for i in range(start, start + 200)]}).raise_for_status()
    deadline = time.monotonic() + 60
    while node.get("/collections/c").json()["result"]["status"] != "green" and time.monotonic() < deadline:
        time.sleep(0.2)
    node.post("/collections/c/points/delete?wait=true", json={"points": list(range(0, 600, 10))}).raise_for_status()
    node.put("/collections/c/points?wait=true", json={"points": [
        {"id": 1000 + i, "vector": {"": [1.0] * 8}, "payload": {"n": i}} for i in range(50)]}).raise_for_status()


class Storage:
    """A pristine storage and how to start a node on it."""

    def __init__(self, path, env=None, args=None, damageable=lambda path: True):
        self.path, self.env, self.args, self.damageable = path, env or {}, args or [], damageable


def single_node_storage(make_node):
    node = make_node(subdir="pristine")
    fill(node, random.Random(7))
    node.kill()
    return Storage(node.workdir / "storage")


def cluster_peer_storage(make_node):
    """A one-peer cluster whose Raft log was compacted into snapshots several times, with entries
    past the last one."""
    p2p = free_port()
    uri = f"http://127.0.0.1:{p2p}"
    env = {"QDRANT__CLUSTER__ENABLED": "true", "QDRANT__CLUSTER__P2P__PORT": str(p2p),
           "QDRANT__CLUSTER__CONSENSUS__COMPACT_WAL_ENTRIES": "8"}
    node = make_node(subdir="pristine-peer", env=env, args=["--uri", uri])
    fill(node, random.Random(8))
    for i in range(20):
        node.put("/collections/c/index?wait=true", json={"field_name": f"k{i}", "field_schema": "keyword"}).raise_for_status()
    node.kill()
    storage = node.workdir / "storage"
    return Storage(storage, env=env, args=["--uri", uri],
                   damageable=lambda path: "collections" not in path.relative_to(storage).parts)


def start_damaged(workdir, pristine, rng):
    """A node on a copy of `pristine` with one of its damageable files damaged; returns the node
    (still running when it served), the outcome and the damage."""
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(pristine.path, workdir / "storage")
    storage = workdir / "storage"
    files = sorted(p for p in storage.rglob("*")
                   if p.is_file() and p.name != ".lock" and pristine.damageable(pristine.path / p.relative_to(storage)))
    target = rng.choice(files)
    what = f"{damage(rng, target)} {target.relative_to(storage)}"
    node = Node(workdir, env=pristine.env, args=pristine.args)
    node.spawn()
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            return node, "refused", what
        try:
            if requests.get(node.url + "/readyz", timeout=1).status_code == 200:
                return node, "served", what
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return node, "hung", what


def fuzz(pristine, workdir, seconds, label):
    rng = random.Random(SEED)
    outcomes = Counter()
    tried = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tried += 1
        node, outcome, what = start_damaged(workdir / "damaged", pristine, rng)
        try:
            assert outcome != "hung", f"no answer and no exit in {START_S} s after: {what}\n{node.log()[-3000:]}"
            if outcome == "refused":
                # An exit of its own with a reason, not a signal.
                assert node.proc.returncode > 0, f"exit {node.proc.returncode} after: {what}\n{node.log()[-3000:]}"
                assert "error" in node.log().lower(), f"no reason given after: {what}\n{node.log()[-3000:]}"
            else:
                for method, path, body in (("GET", "/collections/c", None),
                                           ("GET", "/collections/a", None),
                                           ("POST", "/collections/c/points/count", {"exact": True}),
                                           ("POST", "/collections/c/points/scroll", {"limit": 700, "filter": {"must": [{"key": "n", "range": {"gte": 5}}]}}),
                                           ("POST", "/collections/c/points/query", {"query": [0.5] * 8, "limit": 5}),
                                           ("POST", "/collections/c/points/query", {"query": {"indices": [3], "values": [1.0]}, "using": "s"}),
                                           ("GET", "/cluster", None),
                                           ("GET", "/collections/c/cluster", None)):
                    try:
                        response = requests.request(method, node.url + path, json=body, timeout=30)
                    except requests.RequestException as error:
                        time.sleep(0.5)
                        raise AssertionError(f"{method} {path}: {error}; exit {node.proc.poll()} after: {what}\n{node.log()[-3000:]}")
                    assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:300]} after: {what}"
                # It still takes writes (or refuses them with a 4xx), and stops cleanly.
                for method, path, body in (("PUT", "/collections/c/points?wait=true", {"points": [{"id": 5000, "vector": {"": [1.0] * 8}}]}),
                                           ("PUT", "/collections/d", {"vectors": {"size": 2, "distance": "Dot"}})):
                    write = requests.request(method, node.url + path, json=body, timeout=30)
                    assert write.status_code < 500, f"{method} {path}: {write.status_code} {write.text[:300]} after: {what}"
                assert node.stop(timeout=30) == 0, f"unclean stop after: {what}"
            outcomes[outcome] += 1
        finally:
            node.kill()
    print(f"\nstart-up fuzz of {label}, seed {SEED}: {tried} damaged starts, {dict(outcomes)}, crashes 0, hangs 0")
    assert tried >= 3


def test_damaged_collection_files_never_crash_or_hang_the_node(make_node, workdir):
    fuzz(single_node_storage(make_node), workdir, SECONDS / 2, "a single node's files")


def test_damaged_consensus_files_never_crash_or_hang_a_peer(make_node, workdir):
    fuzz(cluster_peer_storage(make_node), workdir, SECONDS / 2, "a cluster peer's own files")
