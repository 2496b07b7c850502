#!/usr/bin/env python3
"""Shard transfer throughput, and how much searches and writes slow down meanwhile.

Starts three cluster peers from a Quiver binary (release by default), loads `--points` random
`--dim`-d points with a small payload into a 1-shard collection and waits until they are indexed.
Then, with one client searching and one client upserting through the peer holding the shard the
whole time (one request at a time each):

- `stream_records` and `snapshot`: the shard is replicated to the second peer (`replicate_shard`)
  and the time until the new replica is `Active` is measured; the replica is dropped again after;
- `wal_delta`: the second peer (holding an `Active` replica) is killed, `--delta` points are
  upserted (the third peer keeps a consensus majority meanwhile), and it is started again; the
  time from its restart until its replica is `Active` again, through the `wal_delta` recovery it
  asks for by itself, is measured.

Prints points/s and MB/s (vector bytes: points × dim × 4) per method, and the p50/p99 latency of
searches and of 10-point upserts in the 5 s before each transfer and during it.

    python3 bench/transfer_bench.py [--binary .build/release/quiver] [--points 200000] [--dim 128] [--delta 20000]
"""

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import requests

C = "bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peer:
    def __init__(self, binary, workdir, p2p, bootstrap=None):
        self.binary, self.workdir, self.p2p = binary, workdir, p2p
        self.http = free_port()
        self.url = f"http://127.0.0.1:{self.http}"
        self.args = ["--uri", f"http://127.0.0.1:{p2p}"] + (["--bootstrap", f"http://127.0.0.1:{bootstrap}"] if bootstrap else [])
        os.makedirs(workdir)
        self.proc = None

    def start(self):
        env = {**os.environ, "SWIFT_BACKTRACE": "enable=no", "QDRANT__SERVICE__HTTP_PORT": str(self.http),
               "QDRANT__SERVICE__GRPC_PORT": str(free_port()), "QDRANT__LOG_LEVEL": "WARN",
               "QDRANT__CLUSTER__ENABLED": "true", "QDRANT__CLUSTER__P2P__PORT": str(self.p2p),
               "QDRANT__CLUSTER__REBALANCE": "false"}
        self.proc = subprocess.Popen([self.binary, *self.args], cwd=self.workdir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise SystemExit(f"quiver did not start in {self.workdir}")

    def kill(self):
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def peer_id(self):
        return requests.get(self.url + "/cluster").json()["result"]["peer_id"]


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Load:
    """A searching client and an upserting client, each recording (time, latency ms)."""

    def __init__(self, url, dim, base_id):
        self.url, self.dim = url, dim
        self.searches, self.writes = [], []
        self.stop = threading.Event()
        self.next_id = base_id
        self.threads = [threading.Thread(target=self.search), threading.Thread(target=self.write)]

    def search(self):
        rng, session = random.Random(7), requests.Session()
        while not self.stop.is_set():
            q = [rng.random() - 0.5 for _ in range(self.dim)]
            started = time.perf_counter()
            r = session.post(f"{self.url}/collections/{C}/points/query", json={"query": q, "limit": 10}, timeout=60)
            if r.status_code == 200:
                self.searches.append((time.monotonic(), (time.perf_counter() - started) * 1000))

    def write(self):
        rng, session = random.Random(8), requests.Session()
        while not self.stop.is_set():
            batch = [{"id": self.next_id + k, "vector": [rng.random() - 0.5 for _ in range(self.dim)], "payload": {"n": self.next_id + k}}
                     for k in range(10)]
            self.next_id += 10
            started = time.perf_counter()
            r = session.put(f"{self.url}/collections/{C}/points?wait=true", json={"points": batch}, timeout=60)
            if r.status_code == 200:
                self.writes.append((time.monotonic(), (time.perf_counter() - started) * 1000))
            time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()

    def window(self, since, until):
        pick = lambda samples: [ms for at, ms in samples if since <= at <= until]
        return pick(self.searches), pick(self.writes)


def states(url):
    info = requests.get(f"{url}/collections/{C}/cluster").json()["result"]
    replicas = {info["peer_id"]: s["state"] for s in info["local_shards"]}
    replicas.update({s["peer_id"]: s["state"] for s in info["remote_shards"]})
    return replicas, info["shard_transfers"]


def wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/quiver")
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--delta", type=int, default=20_000)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    root = tempfile.mkdtemp(prefix="quiver-transfer-bench-")
    first = second = third = None
    try:
        # A third peer holds nothing: it keeps a consensus majority while the second is down.
        p2p = [free_port(), free_port(), free_port()]
        first = Peer(binary, f"{root}/peer1", p2p[0]).start()
        time.sleep(1.5)
        second = Peer(binary, f"{root}/peer2", p2p[1], bootstrap=p2p[0]).start()
        third = Peer(binary, f"{root}/peer3", p2p[2], bootstrap=p2p[0]).start()
        wait(lambda: len(requests.get(first.url + "/cluster").json()["result"]["peers"]) == 3, 30, "the other peers")
        a, b = first.peer_id(), second.peer_id()
        r = requests.put(f"{first.url}/collections/{C}", json={"vectors": {"size": args.dim, "distance": "Cosine"}, "shard_number": 1,
                                                                "replication_factor": 1})
        assert r.status_code == 200, r.text
        # The source is the peer the shard lands on, the target one of the others.
        holder = list(states(first.url)[0])
        assert len(holder) == 1, states(first.url)
        peers = {p.peer_id(): p for p in (first, second, third)}
        first = peers.pop(holder[0])
        (b, second), (_, third) = sorted(peers.items())
        a = holder[0]
        rng = random.Random(1)
        loaded = time.monotonic()
        for start_at in range(0, args.points, 1000):
            batch = [{"id": i, "vector": [rng.random() - 0.5 for _ in range(args.dim)], "payload": {"n": i, "tag": f"t{i % 100}"}}
                     for i in range(start_at, min(start_at + 1000, args.points))]
            r = requests.put(f"{first.url}/collections/{C}/points?wait=true", json={"points": batch}, timeout=300)
            assert r.status_code == 200, r.text
        print(f"loaded {args.points} points of dim {args.dim} in {time.monotonic() - loaded:.1f} s; indexing…", flush=True)
        wait(lambda: requests.get(f"{first.url}/collections/{C}").json()["result"]["status"] == "green", 3600, "indexing")
        mb = args.points * args.dim * 4 / 1e6
        rows = []
        with Load(first.url, args.dim, 10_000_000) as load:
            for method in ("stream_records", "snapshot"):
                time.sleep(5)
                started = time.monotonic()
                r = requests.post(f"{first.url}/collections/{C}/cluster",
                                  json={"replicate_shard": {"shard_id": 0, "from_peer_id": a, "to_peer_id": b, "method": method}})
                assert r.status_code == 200, r.text
                wait(lambda: states(first.url) == ({a: "Active", b: "Active"}, []), 3600, f"the {method} transfer")
                ended = time.monotonic()
                rows.append((method, args.points, ended - started, load.window(started - 5, started), load.window(started, ended)))
                print(f"{method}: {ended - started:.1f} s", flush=True)
                r = requests.post(f"{first.url}/collections/{C}/cluster", json={"drop_replica": {"shard_id": 0, "peer_id": b}})
                assert r.status_code == 200, r.text
                wait(lambda: states(first.url) == ({a: "Active"}, []), 60, "the replica dropped")
            # wal_delta: the second peer holds an Active replica, misses `delta` points, comes back.
            r = requests.post(f"{first.url}/collections/{C}/cluster",
                              json={"replicate_shard": {"shard_id": 0, "from_peer_id": a, "to_peer_id": b, "method": "snapshot"}})
            assert r.status_code == 200, r.text
            wait(lambda: states(first.url) == ({a: "Active", b: "Active"}, []), 3600, "the replica for wal_delta")
            second.kill()
            for start_at in range(0, args.delta, 500):
                batch = [{"id": 20_000_000 + i, "vector": [rng.random() - 0.5 for _ in range(args.dim)], "payload": {"n": i}}
                         for i in range(start_at, min(start_at + 500, args.delta))]
                r = requests.put(f"{first.url}/collections/{C}/points?wait=true", json={"points": batch}, timeout=300)
                assert r.status_code == 200, r.text
            wait(lambda: states(first.url)[0].get(b) == "Dead", 60, "the killed replica Dead")
            time.sleep(5)
            started = time.monotonic()
            second.start()
            wait(lambda: states(first.url) == ({a: "Active", b: "Active"}, []), 3600, "the wal_delta recovery")
            ended = time.monotonic()
            rows.append(("wal_delta", args.delta, ended - started, load.window(started - 5, started), load.window(started, ended)))
        print(f"\n{args.points} points of dim {args.dim} ({mb:.0f} MB of vectors); wal_delta: {args.delta} points missed by a killed peer,"
              " timed from its restart; load: 1 client searching, 1 client upserting 10 points, both through the source")
        print(f"{'method':<16}{'points':>8}{'seconds':>9}{'points/s':>10}{'MB/s':>7}  "
              f"{'search p50/p99 ms before':>25}{'during':>14}  {'upsert p50/p99 ms before':>25}{'during':>14}")
        for method, points, seconds, before, during in rows:
            rate = points / seconds
            fmt = lambda xs: f"{percentile(xs, 50):.1f}/{percentile(xs, 99):.1f}"
            print(f"{method:<16}{points:>8}{seconds:>9.1f}{rate:>10.0f}{rate * args.dim * 4 / 1e6:>7.1f}  "
                  f"{fmt(before[0]):>25}{fmt(during[0]):>14}  {fmt(before[1]):>25}{fmt(during[1]):>14}")
    finally:
        for peer in (first, second, third):
            if peer:
                peer.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
