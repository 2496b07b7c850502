"""Collection snapshots on the real binary: create while writers run, list, download, delete,
recover from a file and from an upload, kill -9 during a recovery, and archives built to harm."""

import io
import os
import random
import tarfile
import threading
import time
from pathlib import Path

import pytest
import requests
from qdrant_client import QdrantClient, models

from conftest import free_port

DIM = 16


def vector(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def create(node, name: str, **extra):
    body = {"vectors": {"size": DIM, "distance": "Cosine"},
            "optimizers_config": {"indexing_threshold": 10, "default_segment_number": 2}, **extra}
    r = node.put(f"/collections/{name}", json=body)
    assert r.status_code == 200, f"{r.text}\n{node.log()[-3000:]}"


def upsert(node, name: str, ids, rng: random.Random, wait: bool = True) -> requests.Response:
    points = [{"id": i, "vector": vector(rng), "payload": {"n": i, "tag": f"t{i % 7}"}} for i in ids]
    return requests.put(f"{node.url}/collections/{name}/points?wait={'true' if wait else 'false'}",
                        json={"points": points}, timeout=30)


def wait_green(node, name: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = node.get(f"/collections/{name}").json()["result"]
        if info["status"] == "green":
            return info
        time.sleep(0.1)
    raise AssertionError(f"{name} did not turn green: {info}")


def all_ids(client: QdrantClient, name: str) -> list[int]:
    ids, offset = [], None
    while True:
        page, offset = client.scroll(name, limit=1000, offset=offset)
        ids += [p.id for p in page]
        if offset is None:
            return ids


@pytest.mark.qdrant_client
def test_snapshot_while_writing_recovers_every_acknowledged_point(node):
    client = node.client(timeout=60)
    rng = random.Random(7)
    create(node, "src")
    client.create_payload_index("src", "tag", models.PayloadSchemaType.KEYWORD)
    for start in range(0, 4000, 500):
        assert upsert(node, "src", range(start, start + 500), rng).status_code == 200
    wait_green(node, "src")

    # Two writers keep upserting new ids while the snapshot is taken.
    acknowledged: list[tuple[float, list[int]]] = []
    stop = threading.Event()

    def writer(first: int):
        local = random.Random(first)
        next_id = first
        while not stop.is_set():
            ids = list(range(next_id, next_id + 20))
            next_id += 20
            if upsert(node, "src", ids, local).status_code == 200:
                acknowledged.append((time.monotonic(), ids))

    threads = [threading.Thread(target=writer, args=(first,)) for first in (100_000, 200_000)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    began = time.monotonic()
    description = client.create_snapshot("src", wait=True)
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert description.name.startswith("src-") and description.name.endswith(".snapshot")
    assert description.size > 0 and len(description.checksum) == 64
    assert [s.name for s in client.list_snapshots("src")] == [description.name]
    before_cut = {i for at, ids in acknowledged if at < began for i in ids} | set(range(4000))
    assert len(acknowledged) > 5, "the writers did not run during the snapshot"

    path = node.workdir / "snapshots" / "src" / description.name
    assert client.recover_snapshot("copy", f"file://{path}", wait=True)
    recovered = all_ids(client, "copy")
    assert len(recovered) == len(set(recovered)), "a point is in the recovered collection twice"
    missing = before_cut - set(recovered)
    assert not missing, f"{len(missing)} points acknowledged before the snapshot began are missing"
    assert client.get_collection("copy").payload_schema["tag"].data_type == models.PayloadSchemaType.KEYWORD


@pytest.mark.qdrant_client
def test_recovered_collection_searches_as_the_source_without_reindexing(node):
    client = node.client(timeout=60)
    rng = random.Random(11)
    create(node, "src")
    for start in range(0, 3000, 500):
        upsert(node, "src", range(start, start + 500), rng)
    info = wait_green(node, "src")
    assert info["indexed_vectors_count"] > 0 or info["segments_count"] >= 1
    snapshot = client.create_snapshot("src")
    path = node.workdir / "snapshots" / "src" / snapshot.name
    assert client.recover_snapshot("copy", f"file://{path}")
    # Graphs and codes come with the snapshot: nothing is waiting to be indexed.
    copy_info = node.get("/collections/copy").json()["result"]
    assert copy_info["status"] == "green"
    optimizations = node.get("/collections/copy/optimizations").json()["result"]
    assert not optimizations.get("running") and not optimizations.get("queued")
    queries = [vector(rng) for _ in range(20)]
    for q in queries:
        a = client.query_points("src", query=q, limit=10, search_params=models.SearchParams(hnsw_ef=32)).points
        b = client.query_points("copy", query=q, limit=10, search_params=models.SearchParams(hnsw_ef=32)).points
        assert [(p.id, p.score) for p in a] == [(p.id, p.score) for p in b]
    assert client.count("copy").count == 3000


def snapshotted(node, points: int, seed: int):
    """Collection `src` with `points` points and a snapshot of it: (client, rng, snapshot)."""
    client = node.client(timeout=60)
    rng = random.Random(seed)
    create(node, "src")
    upsert(node, "src", range(points), rng)
    return client, rng, client.create_snapshot("src")


@pytest.mark.qdrant_client
def test_download_upload_delete_and_errors(node):
    client, rng, snapshot = snapshotted(node, 200, seed=3)
    response = node.get(f"/collections/src/snapshots/{snapshot.name}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    archive = response.content
    assert len(archive) == snapshot.size

    # Upload (multipart, as qdrant-client and curl send it) into a new collection.
    r = requests.post(f"{node.url}/collections/uploaded/snapshots/upload?priority=snapshot",
                      files={"snapshot": (snapshot.name, archive)}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["result"] is True
    assert client.count("uploaded").count == 200
    # With the right checksum, and over an existing collection (its data replaced).
    upsert(node, "uploaded", range(200, 300), rng)
    r = requests.post(f"{node.url}/collections/uploaded/snapshots/upload?checksum={snapshot.checksum}",
                      files={"snapshot": (snapshot.name, archive)}, timeout=60)
    assert r.status_code == 200, r.text
    assert client.count("uploaded").count == 200

    missing = node.get("/collections/src/snapshots/nope.snapshot")
    assert missing.status_code == 404 and missing.json()["status"]["error"] == "Not found: Snapshot nope.snapshot not found"
    assert node.get("/collections/missing/snapshots").status_code == 404
    r = node.put("/collections/src/snapshots/recover", json={"location": "file:///nowhere/x.snapshot"})
    assert r.status_code == 400 and r.json()["status"]["error"] == 'Bad request: Snapshot file "/nowhere/x.snapshot" does not exist'
    outside = node.workdir / "outside.snapshot"
    outside.write_bytes(archive)
    r = node.put("/collections/src/snapshots/recover", json={"location": f"file://{outside}"})
    assert r.status_code == 403 and "must be inside the snapshots directory" in r.json()["status"]["error"]
    link = node.workdir / "snapshots" / "src" / "link.snapshot"
    link.symlink_to(outside)
    assert node.put("/collections/src/snapshots/recover", json={"location": f"file://{link}"}).status_code == 403
    link.unlink()
    r = node.put("/collections/src/snapshots/recover", json={"location": "ftp://host/x.snapshot"})
    assert r.status_code == 400 and "with scheme ftp is not supported" in r.json()["status"]["error"]
    r = node.put("/collections/src/snapshots/recover", json={"location": f"file://{outside}", "checksum": "xyz"})
    assert r.status_code == 422
    r = node.put("/collections/src/snapshots/recover",
                 json={"location": f"file://{node.workdir}/snapshots/src/{snapshot.name}", "checksum": "0" * 64})
    assert r.status_code == 400 and "Snapshot checksum mismatch" in r.json()["status"]["error"]
    # Into an existing collection whose vectors differ: refused, the collection untouched.
    create(node, "narrow", vectors={"size": 3, "distance": "Dot"})
    r = node.put("/collections/narrow/snapshots/recover",
                 json={"location": f"file://{node.workdir}/snapshots/src/{snapshot.name}"})
    assert r.status_code == 400 and "not compatible with existing collection" in r.json()["status"]["error"]
    r = node.post("/collections/src/snapshots/upload?priority=sometimes", files={"snapshot": ("x", b"x")})
    assert r.status_code == 400
    r = node.delete(f"/collections/src/snapshots/{snapshot.name}")
    assert r.status_code == 200 and r.json()["result"] is True
    assert client.list_snapshots("src") == []
    assert node.delete(f"/collections/src/snapshots/{snapshot.name}").status_code == 404
    # wait=false answers at once; the snapshot appears.
    r = node.post("/collections/src/snapshots?wait=false")
    assert r.status_code == 202 and r.json()["status"] == "accepted" and "result" not in r.json()
    deadline = time.monotonic() + 20
    while not client.list_snapshots("src") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(client.list_snapshots("src")) == 1


def bad_archives(good: bytes) -> dict[str, tuple[bytes, str | None]]:
    """Name → (archive bytes, checksum to send)."""
    def tar_with(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for info, data in members:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return out.getvalue()

    escape = tarfile.TarInfo("../../etc/x")
    escape.size = 4
    link = tarfile.TarInfo("0")
    link.type = tarfile.SYMTYPE
    link.linkname = "/"
    config = tarfile.TarInfo("config.json")
    config.size = 2
    huge = bytearray(tar_with((config, b"{}")))
    # Declare 8 GiB for the entry and fix the header checksum, so only the size is wrong.
    huge[124:136] = b"%011o\0" % (8 << 30)
    huge[148:156] = b" " * 8
    huge[148:156] = b"%06o\0 " % sum(huge[:512])
    as_file = tarfile.TarInfo("0")
    as_file.size = 1
    as_directory = tarfile.TarInfo("0")
    as_directory.type = tarfile.DIRTYPE
    inside = tarfile.TarInfo("0/segments.json")
    inside.size = 2
    return {
        "wrong checksum": (good, "0" * 64),
        "truncated": (good[: len(good) // 2], None),
        "path escape": (tar_with((escape, b"evil")), None),
        "symlink": (tar_with((link, None)), None),
        "huge declared size": (bytes(huge), None),
        "not an archive": (b"this is not a tar archive at all" * 40, None),
        "file, then directory": (tar_with((config, b"{}"), (as_file, b"x"), (as_directory, None)), None),
        "file, then a file inside it": (tar_with((config, b"{}"), (as_file, b"x"), (inside, b"{}")), None),
        "directory, then file": (tar_with((config, b"{}"), (as_directory, None), (as_file, b"x")), None),
    }


@pytest.mark.qdrant_client
def test_bad_archives_are_refused_and_change_nothing(node):
    client, _, snapshot = snapshotted(node, 100, seed=5)
    good = node.get(f"/collections/src/snapshots/{snapshot.name}").content
    storage = node.workdir / "storage"
    before = sorted(str(p.relative_to(storage)) for p in storage.rglob("*") if "tmp" not in p.parts)
    for case, (archive, checksum) in bad_archives(good).items():
        query = f"?checksum={checksum}" if checksum else ""
        for target in ("src", "fresh"):
            r = requests.post(f"{node.url}/collections/{target}/snapshots/upload{query}",
                              files={"snapshot": ("x.snapshot", archive)}, timeout=60)
            assert 400 <= r.status_code < 500, f"{case} into {target}: {r.status_code} {r.text}"
            assert "error" in r.json()["status"], case
    assert client.count("src").count == 100
    assert not client.collection_exists("fresh")
    assert not (Path("/etc/x").exists() and Path("/etc/x").read_bytes() == b"evil")
    after = sorted(str(p.relative_to(storage)) for p in storage.rglob("*") if "tmp" not in p.parts)
    assert after == before
    assert list((storage / "tmp").iterdir()) == []
    # Telemetry counts the snapshot written and no recovery left running; the log has their progress.
    snapshots = node.get("/telemetry?details_level=2").json()["result"]["collections"]["snapshots"]
    assert {"id": "src", "running_snapshots": 0, "running_snapshot_recovery": 0, "total_snapshot_creations": 1} in snapshots
    assert f"Writing snapshot {snapshot.name}: done" in node.log()


@pytest.mark.qdrant_client
def test_kill_9_during_recovery_leaves_the_old_or_the_new_collection(make_node):
    node = make_node()
    client = node.client(timeout=60)
    rng = random.Random(9)
    create(node, "c")
    for start in range(0, 20_000, 1000):
        upsert(node, "c", range(start, start + 1000), rng)
    snapshot = client.create_snapshot("c")
    path = node.workdir / "snapshots" / "c" / snapshot.name
    outcomes = set()
    for round_number, delay in enumerate([0.0, 0.005, 0.02, 0.05, 0.1]):
        # The collection now differs from the snapshot: 500 points only.
        client.delete_collection("c")
        create(node, "c")
        upsert(node, "c", range(500), rng)
        def recover():
            try:
                requests.put(f"{node.url}/collections/c/snapshots/recover", json={"location": f"file://{path}"}, timeout=60)
            except requests.ConnectionError:
                pass  # killed mid-request

        worker = threading.Thread(target=recover)
        worker.start()
        time.sleep(delay)
        node.kill()
        worker.join()
        node.start()
        count = client.count("c").count
        assert count in (500, 20_000), f"round {round_number}: {count} points: neither the old nor the recovered collection"
        assert len(set(all_ids(client, "c"))) == count
        outcomes.add(count)
    print(f"kill -9 during recovery: outcomes {sorted(outcomes)}")


@pytest.mark.qdrant_client
def test_recover_from_another_node_by_url(make_node):
    source = make_node(subdir="a")
    target = make_node(subdir="b")
    rng = random.Random(13)
    create(source, "src")
    upsert(source, "src", range(300), rng)
    snapshot = source.client().create_snapshot("src")
    url = f"{source.url}/collections/src/snapshots/{snapshot.name}"
    client = target.client(timeout=60)
    assert client.recover_snapshot("moved", url, checksum=snapshot.checksum, priority=models.SnapshotPriority.SNAPSHOT)
    assert client.count("moved").count == 300
    assert client.retrieve("moved", [7], with_payload=True)[0].payload == {"n": 7, "tag": "t0"}
    r = target.put("/collections/other/snapshots/recover", json={"location": f"{source.url}/collections/src/snapshots/none.snapshot"})
    assert 400 <= r.status_code < 500 and "404" in r.json()["status"]["error"]
    assert not client.collection_exists("other")


@pytest.mark.qdrant_client
def test_full_snapshot_and_starting_from_snapshots(make_node):
    source = make_node(subdir="source")
    rng = random.Random(17)
    for name, count in (("a", 120), ("b", 80)):
        create(source, name)
        upsert(source, name, range(count), rng)
    source.post("/collections/aliases", json={"actions": [{"create_alias": {"collection_name": "a", "alias_name": "live"}}]})
    client = source.client(timeout=60)
    full = client.create_full_snapshot()
    assert full.name.startswith("full-snapshot-") and len(full.checksum) == 64
    assert [s.name for s in client.list_full_snapshots()] == [full.name]
    archive = source.get(f"/snapshots/{full.name}").content
    assert len(archive) == full.size
    stored = source.workdir / "full.snapshot"
    stored.write_bytes(archive)
    collection_snapshot = client.create_snapshot("b")
    single = source.workdir / "b.snapshot"
    single.write_bytes(source.get(f"/collections/b/snapshots/{collection_snapshot.name}").content)

    # A new node started from the full snapshot has every collection and alias.
    restored = make_node(subdir="restored", args=["--storage-snapshot", str(stored)])
    rc = restored.client(timeout=60)
    assert sorted(c.name for c in rc.get_collections().collections) == ["a", "b"]
    assert rc.count("a").count == 120 and rc.count("b").count == 80
    assert [(x.alias_name, x.collection_name) for x in rc.get_aliases().aliases] == [("live", "a")]

    # --snapshot PATH:COLLECTION; on a later start the collection is kept unless --force-snapshot.
    node = make_node(subdir="single", args=["--snapshot", f"{single}:copy"])
    nc = node.client(timeout=60)  # used across restarts
    assert nc.count("copy").count == 80
    upsert(node, "copy", range(1000, 1010), rng)
    node.kill()
    with pytest.raises(RuntimeError, match="Collection copy already exists. Use --force-snapshot to overwrite it."):
        node.start()
    node.args = []
    node.start()
    assert nc.count("copy").count == 90
    node.kill()
    node.args = ["--snapshot", f"{single}:copy", "--force-snapshot"]
    node.start()
    assert nc.count("copy").count == 80

    assert source.delete(f"/snapshots/{full.name}").json()["result"] is True
    assert client.list_full_snapshots() == []
    assert source.get(f"/snapshots/{full.name}").status_code == 404


def test_shard_snapshot_replaces_one_shard(node):
    rng = random.Random(19)
    create(node, "c", shard_number=2)
    upsert(node, "c", range(400), rng)

    def shard_count(shard: int) -> int:
        return node.post(f"/collections/c/shards/{shard}/points/count", json={}).json()["result"]["count"]

    counts = (shard_count(0), shard_count(1))
    assert sum(counts) == 400 and min(counts) > 0
    r = node.post("/collections/c/shards/0/snapshots")
    assert r.status_code == 200, r.text
    snapshot = r.json()["result"]
    assert "-shard-0-" in snapshot["name"]
    assert [s["name"] for s in node.get("/collections/c/shards/0/snapshots").json()["result"]] == [snapshot["name"]]
    assert node.get("/collections/c/shards/1/snapshots").json()["result"] == []
    assert node.get("/collections/c/snapshots").json()["result"] == []
    archive = node.get(f"/collections/c/shards/0/snapshots/{snapshot['name']}").content

    # Both shards change; recovering shard 0 brings back its state alone.
    node.post("/collections/c/points/delete?wait=true", json={"points": list(range(0, 400, 2))})
    changed = (shard_count(0), shard_count(1))
    assert changed != counts
    r = requests.post(f"{node.url}/collections/c/shards/0/snapshots/upload?checksum={snapshot['checksum']}",
                      files={"snapshot": ("s.snapshot", archive)}, timeout=60)
    assert r.status_code == 200, r.text
    assert (shard_count(0), shard_count(1)) == (counts[0], changed[1])
    assert any("Extracting snapshot" in line and ": done, " in line for line in node.log().splitlines())
    # A shard snapshot from another collection's vectors is refused; so is a shard that is not here.
    create(node, "other", vectors={"size": DIM + 1, "distance": "Dot"})
    r = requests.post(f"{node.url}/collections/other/shards/0/snapshots/upload",
                      files={"snapshot": ("s.snapshot", archive)}, timeout=60)
    assert r.status_code == 400, r.text
    assert node.post("/collections/c/shards/7/snapshots").status_code == 404
    assert node.post("/collections/c/shards/x/snapshots").status_code == 400
    # Recovery by location takes the name of one of the shard's own snapshots (or an http(s) URL),
    # as Qdrant does; file:// URLs are refused, a name that is not there is not found.
    node.post("/collections/c/points/delete?wait=true", json={"points": list(range(1, 400, 2))})
    assert shard_count(0) != counts[0]
    path = node.workdir / "snapshots" / "c" / "shards" / "0" / snapshot["name"]
    r = node.put("/collections/c/shards/0/snapshots/recover", json={"location": f"file://{path}"})
    assert r.status_code == 400 and "URLs with file scheme are not supported" in r.json()["status"]["error"], r.text
    for missing in ["nope.snapshot", f"../0/{snapshot['name']}"]:
        assert node.put("/collections/c/shards/0/snapshots/recover", json={"location": missing}).status_code == 404
    r = node.put("/collections/c/shards/0/snapshots/recover", json={"location": snapshot["name"], "priority": "no_sync"})
    assert r.status_code == 200 and shard_count(0) == counts[0]
    assert node.delete(f"/collections/c/shards/0/snapshots/{snapshot['name']}").json()["result"] is True


@pytest.mark.qdrant_client
def test_temp_path_holds_snapshot_scratch_files_and_is_cleaned_at_start(make_node, workdir):
    scratch = workdir / "scratch"
    scratch.mkdir()
    (scratch / "quiver-upload-1-2").write_bytes(b"left over")
    (scratch / "someone-elses.txt").write_bytes(b"keep")
    node = make_node(env={"QDRANT__STORAGE__TEMP_PATH": str(scratch)})
    # Leftovers of ours are gone at start; files of others stay.
    assert sorted(p.name for p in scratch.iterdir()) == ["someone-elses.txt"]
    client, _, snapshot = snapshotted(node, 200, seed=3)
    archive = node.get(f"/collections/src/snapshots/{snapshot.name}").content
    r = requests.post(f"{node.url}/collections/copy/snapshots/upload", files={"snapshot": ("s.snapshot", archive)}, timeout=60)
    assert r.status_code == 200, r.text
    assert client.count("copy").count == 200
    assert sorted(p.name for p in scratch.iterdir()) == ["someone-elses.txt"]
    # The staging really goes there: with temp_path unusable, a snapshot fails and says where.
    (scratch / "someone-elses.txt").unlink()
    scratch.rmdir()
    scratch.write_bytes(b"not a directory")
    r = node.post("/collections/src/snapshots")
    assert r.status_code == 500 and str(scratch) in r.json()["status"]["error"], r.text



class Redirector:
    """An HTTP server on 127.0.0.1 that answers every GET with a 302 to `target + path`."""

    def __init__(self, target: str):
        import http.server

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(302)
                self.send_header("Location", outer.target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.target = target
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_url_recovery_reaches_only_the_allowed_hosts(make_node):
    source = make_node(subdir="source")
    create(source, "src")
    upsert(source, "src", range(50), random.Random(23))
    snapshot = source.client().create_snapshot("src")
    path = f"/collections/src/snapshots/{snapshot.name}"
    to_allowed, to_other = Redirector(f"http://127.0.0.1:{source.port}"), Redirector(f"http://localhost:{source.port}")
    try:
        target = make_node(subdir="target", env={"QDRANT__SERVICE__SNAPSHOT_URL_ALLOWED_HOSTS":
                                                 f"127.0.0.1:{source.port},127.0.0.1:{to_allowed.port},127.0.0.1:{to_other.port}"})
        downloads = lambda: source.log().count(f"GET {path}")

        # The same source under a name that is not listed: refused before any connection.
        before = downloads()
        r = target.put("/collections/moved/snapshots/recover", json={"location": f"http://localhost:{source.port}{path}"})
        assert r.status_code == 403, r.text
        assert "`localhost` is not allowed" in r.json()["status"]["error"] and "snapshot_url_allowed_hosts" in r.json()["status"]["error"]
        r = target.put(f"/collections/moved/snapshots/recover", json={"location": f"http://127.0.0.1:{free_port()}{path}"})
        assert r.status_code == 403, r.text
        time.sleep(0.5)
        assert downloads() == before
        assert target.get("/collections/moved").status_code == 404

        # A listed host that redirects to one that is not: refused at the redirect.
        r = target.put("/collections/moved/snapshots/recover", json={"location": f"http://127.0.0.1:{to_other.port}{path}"})
        assert r.status_code == 403, r.text
        assert "redirected to `localhost`" in r.json()["status"]["error"]
        time.sleep(0.5)
        assert downloads() == before
        assert target.get("/collections/moved").status_code == 404

        # Listed hosts, directly and through a redirect to a listed host.
        for location in (f"http://127.0.0.1:{source.port}{path}", f"http://127.0.0.1:{to_allowed.port}{path}"):
            r = target.put("/collections/moved/snapshots/recover?wait=true", json={"location": location, "checksum": snapshot.checksum})
            assert r.status_code == 200, r.text
            assert target.post("/collections/moved/points/count", json={"exact": True}).json()["result"]["count"] == 50
        assert downloads() == before + 2
    finally:
        to_allowed.close()
        to_other.close()

    # With URL recovery switched off, no host is reached.
    closed = make_node(subdir="closed", env={"QDRANT__SERVICE__ENABLE_SNAPSHOT_URL_RECOVERY": "false"})
    r = closed.put("/collections/moved/snapshots/recover", json={"location": f"http://127.0.0.1:{source.port}{path}"})
    assert r.status_code == 403 and "disabled" in r.json()["status"]["error"]
    assert downloads() == before + 2
