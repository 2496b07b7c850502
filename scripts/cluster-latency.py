#!/usr/bin/env python3
"""Query latency of a 3-peer cluster against a single node holding the same points.

Starts three cluster peers and one single node from a Quiver binary (release by default), loads
the same random points into a 6-shard collection on the cluster and a 1-shard collection on the
single node, then sends the same queries one at a time (keep-alive connection) to every process
and prints latency percentiles. A query to a peer searches its own 2 shards and asks each of the
other 2 peers once for theirs.

    python3 scripts/cluster-latency.py [--binary .build/release/quiver] [--points 20000] [--dim 128]
"""

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, workdir, env_extra, args):
    os.makedirs(workdir)
    http = free_port()
    env = {**os.environ, "SWIFT_BACKTRACE": "enable=no", "QDRANT__SERVICE__HTTP_PORT": str(http),
           "QDRANT__SERVICE__GRPC_PORT": str(free_port()), "QDRANT__LOG_LEVEL": "WARN", **env_extra}
    proc = subprocess.Popen([binary, *args], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}"
    for _ in range(300):
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{binary} did not start in {workdir}")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/quiver")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    root = tempfile.mkdtemp(prefix="quiver-latency-")
    procs = []
    try:
        p2p = [free_port() for _ in range(3)]
        peers = []
        for i in range(3):
            extra = ["--uri", f"http://127.0.0.1:{p2p[i]}"] + ([] if i == 0 else ["--bootstrap", f"http://127.0.0.1:{p2p[0]}"])
            proc, url = start(binary, f"{root}/peer{i}", {"QDRANT__CLUSTER__ENABLED": "true", "QDRANT__CLUSTER__P2P__PORT": str(p2p[i])}, extra)
            procs.append(proc)
            peers.append(url)
            time.sleep(1.5 if i == 0 else 0.5)
        proc, single = start(binary, f"{root}/single", {}, [])
        procs.append(proc)
        for _ in range(100):
            peers_seen = [len(requests.get(u + "/cluster").json()["result"]["peers"]) for u in peers]
            if peers_seen == [3, 3, 3]:
                break
            time.sleep(0.2)

        body = {"vectors": {"size": args.dim, "distance": "Cosine"}}
        assert requests.put(peers[0] + "/collections/lat", json={**body, "shard_number": 6}).status_code == 200
        assert requests.put(single + "/collections/lat", json=body).status_code == 200
        rng = random.Random(1)
        points = [{"id": i, "vector": [rng.random() - 0.5 for _ in range(args.dim)], "payload": {"n": i}} for i in range(args.points)]
        for url in (peers[1], single):
            for start_at in range(0, len(points), 1000):
                r = requests.put(url + "/collections/lat/points?wait=true", json={"points": points[start_at:start_at + 1000]}, timeout=120)
                assert r.status_code == 200, r.text
        queries = [[rng.random() - 0.5 for _ in range(args.dim)] for _ in range(args.queries)]

        def measure(url, exact):
            session = requests.Session()
            times = []
            for q in queries[:20]:  # warm-up
                session.post(url + "/collections/lat/points/query", json={"query": q, "limit": 10, "params": {"exact": exact}})
            for q in queries:
                started = time.perf_counter()
                r = session.post(url + "/collections/lat/points/query", json={"query": q, "limit": 10, "params": {"exact": exact}})
                times.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200
            return times

        print(f"{args.points} points, dim {args.dim}, Cosine, limit 10, {args.queries} sequential queries per target")
        print(f"{'target':<28}{'exact':<7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'mean ms':>9}")
        for exact in (True, False):
            rows = [("single node (1 shard)", single)] + [(f"cluster peer {i} (6 shards)", u) for i, u in enumerate(peers)]
            for name, url in rows:
                t = measure(url, exact)
                print(f"{name:<28}{str(exact):<7}{percentile(t, 50):8.2f}{percentile(t, 90):8.2f}{percentile(t, 99):8.2f}{statistics.mean(t):9.2f}")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
