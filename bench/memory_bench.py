#!/usr/bin/env python3
"""Resident memory of a node whose `on_disk` collection grows past the memory it is given.

    python bench/memory_bench.py [--binary .build/release/quiver] [--limit-mb 256] [--dim 768] [--factor 3]
                                 [--quantization binary|scalar] [--max-segment-kb N] [--green-timeout S]

Creates a memory cgroup (v2, or v1) limited to `--limit-mb`, starts the binary in it, and upserts
random `--dim`-d vectors into a collection with `on_disk: true` vectors, HNSW graph and payloads
until the stored vectors are `--factor` times the limit. Along the way it prints the process's
resident memory (all of it, its anonymous part, and its pages of mapped files), the cgroup's
charge, and whether the kernel had to kill anything. Once the optimizer is done (green), it prints
the search rate over the whole collection (sequential queries, limit 10) and the memory again.
Needs root (to create the cgroup) and numpy.
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
import uuid
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cgroup:
    """A memory cgroup of its own, v2 where the memory controller is there, else v1."""

    def __init__(self, limit: int):
        name = f"quiver-bench-{uuid.uuid4().hex[:8]}"
        for root, limit_file, usage_file in [(Path("/sys/fs/cgroup"), "memory.max", "memory.current"),
                                             (Path("/sys/fs/cgroup/unified"), "memory.max", "memory.current"),
                                             (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes", "memory.usage_in_bytes")]:
            if limit_file == "memory.max":
                controllers = root / "cgroup.controllers"
                if not controllers.exists() or "memory" not in controllers.read_text().split():
                    continue
            elif not (root / limit_file).exists():
                continue
            path = root / name
            try:
                path.mkdir()
                (path / limit_file).write_text(str(limit))
            except OSError:
                continue
            self.path, self.usage_file, self.v2 = path, usage_file, limit_file == "memory.max"
            return
        sys.exit("cannot create a memory cgroup here (needs root and a writable cgroup file system)")

    def usage(self) -> int:
        return int((self.path / self.usage_file).read_text())

    def oom_kills(self) -> int:
        if self.v2:
            for line in (self.path / "memory.events").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
            return 0
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def remove(self):
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


class Node:
    def __init__(self, binary: str, workdir: Path, cgroup: Cgroup):
        self.binary, self.workdir, self.cgroup, self.port = binary, workdir, cgroup, free_port()

    def start(self):
        env = dict(os.environ, SWIFT_BACKTRACE="enable=no", QDRANT__SERVICE__HOST="127.0.0.1",
                   QDRANT__SERVICE__HTTP_PORT=str(self.port), QDRANT__SERVICE__GRPC_PORT=str(free_port()), QDRANT__LOG_LEVEL="warn",
                   QDRANT__STORAGE__STORAGE_PATH=str(self.workdir / "storage"))
        procs = self.cgroup.path / "cgroup.procs"
        # The shell joins the cgroup, then becomes the node: every byte it ever holds is charged.
        self.proc = subprocess.Popen(["sh", "-c", f'echo $$ > "{procs}" && exec "$0"', self.binary], cwd=self.workdir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.workdir / "log.txt", "ab"))
        while True:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"quiver exited: {(self.workdir / 'log.txt').read_text()[-2000:]}")
            time.sleep(0.05)

    def request(self, method: str, path: str, body: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, data

    def memory(self) -> dict:
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) * 1024
        return fields

    def alive(self) -> bool:
        return self.proc.poll() is None


MIB = 1 << 20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(Path(__file__).resolve().parents[1] / ".build/release/quiver"))
    parser.add_argument("--limit-mb", type=int, default=256, help="memory limit of the node's cgroup")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--factor", type=float, default=3.0, help="stored vectors as a multiple of the limit")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--query-seconds", type=float, default=120, help="stop the queries after this long")
    parser.add_argument("--green-timeout", type=float, default=1800, help="seconds to wait for the optimizer")
    parser.add_argument("--quantization", choices=["none", "binary", "scalar"], default="none",
                        help="codes kept in RAM for the graph search (binary: 1 bit a dimension; scalar: int8)")
    parser.add_argument("--max-segment-kb", type=int, help="the collection's optimizers_config.max_segment_size "
                        "(default: Qdrant's, 256,000 KB per indexing thread)")
    args = parser.parse_args()
    args.binary = str(Path(args.binary).resolve())

    limit = args.limit_mb * MIB
    total = int(limit * args.factor / (args.dim * 4))
    cgroup = Cgroup(limit)
    workdir = Path(tempfile.mkdtemp(prefix="quiver-memory-bench-"))
    node = Node(args.binary, workdir, cgroup)
    rng = np.random.default_rng(11)
    try:
        node.start()
        collection = {"vectors": {"size": args.dim, "distance": "Cosine", "on_disk": True},
                      "hnsw_config": {"on_disk": True}, "on_disk_payload": True}
        if args.quantization == "binary":
            collection["quantization_config"] = {"binary": {"always_ram": True}}
        elif args.quantization == "scalar":
            collection["quantization_config"] = {"scalar": {"type": "int8", "always_ram": True}}
        if args.max_segment_kb:
            collection["optimizers_config"] = {"max_segment_size": args.max_segment_kb}
        body = json.dumps(collection).encode()
        assert node.request("PUT", "/collections/big", body)[0] == 200
        print(f"binary: {args.binary}")
        print(f"cgroup {'v2' if cgroup.v2 else 'v1'} limit {args.limit_mb} MiB; {total:,} points of {args.dim}-d "
              f"= {total * args.dim * 4 / MIB:,.0f} MiB of vectors ({args.factor:g}x the limit)")
        print(f"{'points':>9} {'vectors MiB':>12} {'RSS MiB':>8} {'anon MiB':>9} {'file MiB':>9} {'cgroup MiB':>11} {'points/s':>9}")
        marks = {int(total * k / 10) for k in range(1, 11)}
        started = time.perf_counter()
        last_mark, last_time = 0, started
        peak_anon = 0
        for first in range(0, total, args.batch):
            count = min(args.batch, total - first)
            vectors = rng.standard_normal((count, args.dim), dtype=np.float32)
            body = json.dumps({"batch": {"ids": list(range(first, first + count)),
                                         "vectors": vectors.tolist(),
                                         "payloads": [{"i": first + k} for k in range(count)]}}).encode()
            try:
                status, data = node.request("PUT", "/collections/big/points?wait=true", body)
            except OSError as error:
                node.proc.wait(timeout=60)
                sys.exit(f"the node stopped answering at {first:,} points ({error}); exit status {node.proc.returncode}, "
                         f"OOM kills in the cgroup: {cgroup.oom_kills()}")
            if status != 200:
                sys.exit(f"upsert failed at {first}: {status} {data[:300]!r}")
            done = first + count
            peak_anon = max(peak_anon, node.memory().get("RssAnon", 0))
            if any(last_mark < m <= done for m in marks):
                now = time.perf_counter()
                m = node.memory()
                print(f"{done:>9,} {done * args.dim * 4 / MIB:>12,.0f} {m['VmRSS'] / MIB:>8.0f} {m['RssAnon'] / MIB:>9.0f} "
                      f"{m['RssFile'] / MIB:>9.0f} {cgroup.usage() / MIB:>11.0f} {(done - last_mark) / (now - last_time):>9,.0f}",
                      flush=True)
                last_mark, last_time = done, now
        print(f"loaded in {time.perf_counter() - started:.1f} s; peak anonymous memory while loading {peak_anon / MIB:.0f} MiB")

        waited = time.perf_counter()
        while True:
            info = json.loads(node.request("GET", "/collections/big")[1])["result"]
            peak_anon = max(peak_anon, node.memory().get("RssAnon", 0))
            if info["status"] == "green" or time.perf_counter() - waited > args.green_timeout:
                break
            time.sleep(1)
        m = node.memory()
        print(f"optimizer {info['status']} after {time.perf_counter() - waited:.0f} s more; {info['segments_count']} segments; "
              f"RSS {m['VmRSS'] / MIB:.0f} MiB (anonymous {m['RssAnon'] / MIB:.0f}, mapped files {m['RssFile'] / MIB:.0f}); "
              f"peak anonymous {peak_anon / MIB:.0f} MiB")

        queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        bodies = [json.dumps({"query": q.tolist(), "limit": 10}).encode() for q in queries]
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=900)
        t0 = time.perf_counter()
        done = 0
        for body in bodies:
            if time.perf_counter() - t0 > args.query_seconds:
                break
            done += 1
            conn.request("POST", "/collections/big/points/query", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        seconds = time.perf_counter() - t0
        conn.close()
        m = node.memory()
        print(f"search: {done} queries in {seconds:.2f} s = {done / seconds:,.1f} QPS (one client, limit 10); "
              f"RSS {m['VmRSS'] / MIB:.0f} MiB (anonymous {m['RssAnon'] / MIB:.0f}); cgroup {cgroup.usage() / MIB:.0f} MiB")
        print(f"node alive: {node.alive()}; OOM kills in the cgroup: {cgroup.oom_kills()}")
    finally:
        if node.proc and node.alive():
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(timeout=60)
        cgroup.remove()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
