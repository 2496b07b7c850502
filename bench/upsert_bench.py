#!/usr/bin/env python3
"""Upsert throughput, memory per million points and restart time of a real Quiver node.

    python bench/upsert_bench.py [--binary .build/release/quiver] [--million-points 1000000] [--on-disk] [--skip-throughput]

Starts the binary on a free loopback port in a temporary directory and drives it over HTTP with
pre-encoded request bodies (so client-side JSON encoding is not what is measured). Prints:
- upsert points/s for 128-d and 768-d vectors, batches of 100 and 1,000, wait=true and wait=false;
- resident memory and disk per million 128-d points;
- time to ready after a graceful restart and after kill -9 (WAL replay).
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import orjson

    def dumps(obj) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
except ImportError:  # slower, but the encoding happens before timing anyway
    def dumps(obj) -> bytes:
        return json.dumps(obj, default=lambda a: a.tolist()).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary: str, workdir: Path):
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.proc = None

    def start(self) -> float:
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no", QDRANT__SERVICE__HOST="127.0.0.1",
                   QDRANT__SERVICE__HTTP_PORT=str(self.port), QDRANT__SERVICE__GRPC_PORT=str(free_port()), QDRANT__LOG_LEVEL="warn",
                   QDRANT__STORAGE__STORAGE_PATH=str(self.workdir / "storage"))
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([self.binary], cwd=self.workdir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.workdir / "log.txt", "ab"))
        while True:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"quiver exited: {(self.workdir / 'log.txt').read_text()[-2000:]}")
            time.sleep(0.02)

    def request(self, method: str, path: str, body: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, data

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)


def upsert_bodies(n: int, dim: int, batch: int, rng, first_id: int = 0) -> list[bytes]:
    bodies = []
    for start in range(first_id, first_id + n, batch):
        count = min(batch, first_id + n - start)
        vectors = rng.random((count, dim), dtype=np.float32)
        bodies.append(dumps({"batch": {"ids": list(range(start, start + count)), "vectors": vectors,
                                       "payloads": [{"i": start + k} for k in range(count)]}}))
    return bodies


def run_upserts(node: Node, collection: str, bodies: list[bytes], wait: bool) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=600)
    path = f"/collections/{collection}/points?wait={'true' if wait else 'false'}"
    t0 = time.perf_counter()
    for body in bodies:
        conn.request("PUT", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            sys.exit(f"upsert failed: {response.status} {data[:300]!r}")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(Path(__file__).resolve().parents[1] / ".build/release/quiver"))
    parser.add_argument("--million-points", type=int, default=1_000_000, help="points for the memory and restart run")
    parser.add_argument("--on-disk", action="store_true", help="memory run with on_disk vectors and payloads (memory-mapped)")
    parser.add_argument("--skip-throughput", action="store_true", help="only the memory and restart run")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    workdir = Path(tempfile.mkdtemp(prefix="quiver-bench-"))
    node = Node(args.binary, workdir)
    try:
        node.start()
        print(f"binary: {args.binary}")
        print(f"{'dim':>5} {'batch':>6} {'wait':>6} {'points':>8} {'seconds':>8} {'points/s':>10}")
        for dim, n in [] if args.skip_throughput else [(128, 100_000), (768, 30_000)]:
            for batch in (100, 1000):
                bodies = upsert_bodies(n, dim, batch, rng)
                for wait in (True, False):
                    name = f"bench-{dim}-{batch}-{int(wait)}"
                    node.request("PUT", f"/collections/{name}", dumps({"vectors": {"size": dim, "distance": "Dot"}}))
                    seconds = run_upserts(node, name, bodies, wait)
                    print(f"{dim:>5} {batch:>6} {str(wait).lower():>6} {n:>8} {seconds:>8.2f} {n / seconds:>10.0f}")
                    node.request("DELETE", f"/collections/{name}")

        n = args.million_points
        rss_before = node.rss_bytes()
        node.request("PUT", "/collections/million", dumps({"vectors": {"size": 128, "distance": "Dot", "on_disk": args.on_disk},
                                                          "on_disk_payload": args.on_disk}))
        t0 = time.perf_counter()
        for start in range(0, n, 10_000):  # encode in slices to bound client memory
            run_upserts(node, "million", upsert_bodies(min(10_000, n - start), 128, 1000, rng, first_id=start), wait=False)
        load_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        while True:  # the optimizer seals and merges segments in the background
            info = json.loads(node.request("GET", "/collections/million")[1])["result"]
            if info["status"] == "green":
                break
            time.sleep(0.5)
        green_seconds = time.perf_counter() - t1
        rss_after = node.rss_bytes()
        print(f"\n{n} points of 128-d (with a small payload) in {load_seconds:.1f} s including client encoding; "
              f"green {green_seconds:.1f} s later with {info['segments_count']} segments")
        print(f"resident memory: {rss_before / 2**20:.0f} MiB before, {rss_after / 2**20:.0f} MiB after "
              f"= {(rss_after - rss_before) / n * 1e6 / 2**20:.0f} MiB per million points "
              f"(raw vectors: {128 * 4 * 1e6 / 2**20:.0f} MiB per million)")
        node.stop()
        disk = sum(f.stat().st_size for f in (workdir / "storage").rglob("*") if f.is_file())
        print(f"disk after graceful stop: {disk / 2**20:.0f} MiB (preallocated WAL segments included)")
        print(f"restart after graceful stop (segments persisted): {node.start():.2f} s to ready")
        node.request("PUT", "/collections/million/points?wait=true",
                     dumps({"batch": {"ids": [n + 1], "vectors": [[0.5] * 128]}}))
        node.kill()
        print(f"restart after kill -9 (segments + WAL replay): {node.start():.2f} s to ready")
        status, body = node.request("POST", "/collections/million/points/count", b"{}")
        count = json.loads(body)["result"]["count"]
        print(f"points after restart: {count}")
        assert count == n + 1, f"expected {n + 1} points"
    finally:
        if node.proc and node.proc.poll() is None:
            node.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
