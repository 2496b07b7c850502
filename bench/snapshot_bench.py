#!/usr/bin/env python3
"""Snapshot creation and recovery throughput of a real Quiver node, next to re-indexing.

    python bench/snapshot_bench.py [--binary .build/release/quiver] [--points 1000000] [--dim 128]

Starts the binary on a free loopback port in a temporary directory, uploads `--points` random
vectors (with a payload each) into a collection and waits until it is green (every graph built).
Then prints:
- the time and MB/s of `POST /collections/c/snapshots` (the archive's size over the time);
- the time and MB/s of `PUT /collections/copy/snapshots/recover` from that archive (a new
  collection, graphs and codes reused), and whether the copy is green at once;
- the time the same points take to become green in a new collection by upload and indexing
  (what a recovery that rebuilt the index would cost at least).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upsert_bench import Node, run_upserts, upsert_bodies  # noqa: E402


def wait_green(node: Node, collection: str) -> float:
    t0 = time.perf_counter()
    while True:
        status, body = node.request("GET", f"/collections/{collection}")
        info = json.loads(body)["result"]
        if status == 200 and info["status"] == "green":
            return time.perf_counter() - t0
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(Path(__file__).resolve().parents[1] / ".build/release/quiver"))
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    bodies = upsert_bodies(args.points, args.dim, 1000, rng)
    create = json.dumps({"vectors": {"size": args.dim, "distance": "Cosine"}}).encode()

    with tempfile.TemporaryDirectory(prefix="quiver-snapbench-") as tmp:
        node = Node(args.binary, Path(tmp))
        node.start()
        try:
            node.request("PUT", "/collections/c", create)
            upload = run_upserts(node, "c", bodies, wait=True)
            green = wait_green(node, "c")
            index_from_scratch = upload + green
            print(f"{args.points:,} points × {args.dim}-d: upload {upload:.1f} s, then green after {green:.1f} s "
                  f"(upload and index from scratch: {index_from_scratch:.1f} s)")

            t0 = time.perf_counter()
            status, body = node.request("POST", "/collections/c/snapshots")
            created = time.perf_counter() - t0
            if status != 200:
                sys.exit(f"snapshot failed: {status} {body[:300]!r}")
            snapshot = json.loads(body)["result"]
            megabytes = snapshot["size"] / 1e6
            print(f"snapshot: {megabytes:,.0f} MB in {created:.2f} s = {megabytes / created:,.0f} MB/s")

            path = Path(tmp) / "snapshots" / "c" / snapshot["name"]
            t0 = time.perf_counter()
            status, body = node.request("PUT", "/collections/copy/snapshots/recover",
                                        json.dumps({"location": f"file://{path}"}).encode())
            recovered = time.perf_counter() - t0
            if status != 200:
                sys.exit(f"recovery failed: {status} {body[:300]!r}")
            _, body = node.request("GET", "/collections/copy")
            copy_status = json.loads(body)["result"]["status"]
            print(f"recovery: {megabytes:,.0f} MB in {recovered:.2f} s = {megabytes / recovered:,.0f} MB/s; "
                  f"the copy is {copy_status} at once ({index_from_scratch / recovered:,.0f}× faster than re-indexing)")
        finally:
            node.stop()


if __name__ == "__main__":
    main()
