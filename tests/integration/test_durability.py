"""Crash safety of collection metadata: kill -9, restart, and every acknowledged change is there."""

import json
import random
import threading
import time

import requests

CREATE_BODY = {
    "vectors": {"dense": {"size": 8, "distance": "Cosine", "on_disk": True}},
    "sparse_vectors": {"text": {"modifier": "idf"}},
    "hnsw_config": {"m": 20},
    "metadata": {"n": 1.0},
}


def test_collection_and_aliases_survive_kill_9(node):
    assert node.put("/collections/books", json=CREATE_BODY).json()["result"] is True
    assert node.post("/collections/aliases", json={"actions": [
        {"create_alias": {"collection_name": "books", "alias_name": "library"}}]}).status_code == 200
    before = node.get("/collections/books").json()["result"]["config"]
    node.kill()  # immediately after the acknowledgement
    node.start()
    assert node.get("/collections/books").json()["result"]["config"] == before
    assert node.get("/aliases").json()["result"]["aliases"] == [{"alias_name": "library", "collection_name": "books"}]
    assert node.get("/collections/library").json()["result"]["config"] == before


def test_update_and_delete_survive_kill_9(node):
    node.put("/collections/a", json=CREATE_BODY)
    node.put("/collections/b", json=CREATE_BODY)
    node.patch("/collections/a", json={"optimizers_config": {"indexing_threshold": 99}, "metadata": {"n": None, "m": "x"}})
    node.delete("/collections/b")
    node.kill()
    node.start()
    config = node.get("/collections/a").json()["result"]["config"]
    assert config["optimizer_config"]["indexing_threshold"] == 99
    assert config["metadata"] == {"m": "x"}
    assert node.get("/collections").json()["result"]["collections"] == [{"name": "a"}]


def test_random_kill_during_metadata_writes(node):
    """A writer creates collections and aliases as fast as it can; SIGKILL lands at a random
    moment. After restart every acknowledged create is present with its config, every alias
    acknowledged points where it should, and nothing half-created is visible."""
    rng = random.Random(20261121)
    for round_number in range(5):
        acknowledged: list[str] = []
        aliased: dict[str, str] = {}
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                name = f"r{round_number}-c{i}"
                try:
                    r = requests.put(f"{node.url}/collections/{name}", json=CREATE_BODY, timeout=5)
                    if r.status_code == 200:
                        acknowledged.append(name)
                    r = requests.post(f"{node.url}/collections/aliases", timeout=5, json={"actions": [
                        {"create_alias": {"collection_name": name, "alias_name": f"alias-{name}"}}]})
                    if r.status_code == 200:
                        aliased[f"alias-{name}"] = name
                except requests.RequestException:
                    return
                i += 1

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(rng.uniform(0.05, 0.6))
        node.kill()
        stop.set()
        thread.join(timeout=10)
        node.start()

        listed = {c["name"] for c in node.get("/collections").json()["result"]["collections"]}
        assert set(acknowledged) <= listed, f"round {round_number}: lost {set(acknowledged) - listed}"
        for name in listed:
            r = node.get(f"/collections/{name}")
            assert r.status_code == 200, r.text
            assert r.json()["result"]["config"]["hnsw_config"]["m"] == 20
        aliases = {a["alias_name"]: a["collection_name"] for a in node.get("/aliases").json()["result"]["aliases"]}
        for alias, target in aliased.items():
            assert aliases.get(alias) == target, f"round {round_number}: alias {alias} lost"
        assert set(aliases.values()) <= listed
        assert acknowledged, "the writer never got an acknowledgement; the kill came too early to test anything"


def test_kill_9_during_wait_true_upserts(node):
    """The issue's crash test: a client upserts with wait=true while the server is SIGKILLed at a
    random moment, 20 times. After each restart every acknowledged point is there with its vector
    and payload, no id appears that was never sent, and count equals a scroll of all ids.

    Each batch also rewrites a few acknowledged points, and a small indexing threshold makes the
    optimizer seal and merge segments all the time, so kills land during optimizations and moves
    of points out of immutable segments too."""
    rng = random.Random(1121)
    # flush_interval_sec 0: segments are persisted (and the WAL truncated) on every 1 s tick, so
    # kills also land during and after persistence, not only in the WAL.
    node.put("/collections/crash", json={"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2,
                                         "optimizers_config": {"flush_interval_sec": 0, "indexing_threshold": 8,
                                                               "default_segment_number": 2},
                                         "wal_config": {"wal_capacity_mb": 1}})
    acknowledged: dict[int, int] = {}
    # The rounds a point may show: the one last acknowledged, and any sent after it (a write cut
    # short by the kill may or may not have been applied).
    allowed: dict[int, set[int]] = {}
    sent: set[int] = set()
    next_id = 0
    for round_number in range(20):
        stop = threading.Event()

        def writer(start: int):
            i = start
            while not stop.is_set():
                rewrites = rng.sample(sorted(acknowledged), min(5, len(acknowledged)))
                ids = list(range(i, i + 25)) + rewrites
                sent.update(ids)
                for p in ids:
                    allowed.setdefault(p, set()).add(round_number)
                body = {"points": [{"id": p, "vector": [p, p + 1, p + 2, round_number], "payload": {"round": round_number, "p": p}} for p in ids]}
                try:
                    r = requests.put(f"{node.url}/collections/crash/points?wait=true", json=body, timeout=5)
                except requests.RequestException:
                    return
                if r.status_code == 200:
                    for p in ids:
                        acknowledged[p] = round_number
                        allowed[p] = {round_number}
                i += 25

        thread = threading.Thread(target=writer, args=(next_id,))
        thread.start()
        time.sleep(rng.uniform(0.05, 1.6))
        node.kill()
        stop.set()
        thread.join(timeout=10)
        next_id = max(sent) + 1
        node.start()

        ids, offset = [], None
        while True:
            page = node.post("/collections/crash/points/scroll",
                             json={"limit": 1000, "offset": offset, "with_vector": True}).json()["result"]
            for p in page["points"]:
                ids.append(p["id"])
                if p["id"] in acknowledged:
                    shown = p["payload"]["round"]
                    assert shown in allowed[p["id"]], f"round {round_number}: point {p['id']} shows round {shown}"
                    assert p["vector"] == [p["id"], p["id"] + 1, p["id"] + 2, shown]
                    assert p["payload"] == {"round": shown, "p": p["id"]}
            offset = page["next_page_offset"]
            if offset is None:
                break
        present = set(ids)
        assert len(ids) == len(present)
        missing = set(acknowledged) - present
        assert not missing, f"round {round_number}: {len(missing)} acknowledged points lost, e.g. {sorted(missing)[:10]}"
        assert present <= sent, f"round {round_number}: phantom ids {sorted(present - sent)[:10]}"
        count = node.post("/collections/crash/points/count", json={}).json()["result"]["count"]
        assert count == len(present)
    assert len(acknowledged) > 500, "too few acknowledged writes to mean anything"
    manifests = list(node.workdir.glob("storage/collections/crash/*/segments/*/manifest.json"))
    assert manifests, "no segment was ever persisted, so the test did not cover persistence"
    kinds = {json.loads(m.read_text()).get("kind", "appendable") for m in manifests}
    assert "immutable" in kinds, "the optimizer never sealed a segment, so the test did not cover it"


def test_graceful_stop_persists_segments(node):
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    node.put("/collections/c/points?wait=false", json={"points": [{"id": i, "vector": [i, 1]} for i in range(100)]})
    assert node.stop() == 0
    assert list(node.workdir.glob("storage/collections/c/0/segments/*/manifest.json"))
    node.start()
    assert node.post("/collections/c/points/count", json={}).json()["result"]["count"] == 100


def apply_operation(state: dict, op: tuple) -> dict:
    """What `op` does to `state` (id -> {"payload", "vectors"}), as the server must do it."""
    state = {i: {"payload": dict(p["payload"]), "vectors": dict(p["vectors"])} for i, p in state.items()}
    kind, args = op
    selected = (lambda ids: [i for i in ids if i in state]) if "ids" in args else None
    if "group" in args:
        selected = lambda _ids: [i for i, p in state.items() if p["payload"].get("g") == args["group"]]
    targets = selected(args.get("ids", [])) if selected else []
    if kind == "upsert":
        for i, (vectors, payload) in args["points"].items():
            state[i] = {"payload": dict(payload), "vectors": dict(vectors)}
    elif kind == "delete":
        for i in targets:
            del state[i]
    elif kind == "set_payload":
        for i in targets:
            state[i]["payload"].update(args["payload"])
    elif kind == "overwrite_payload":
        for i in targets:
            state[i]["payload"] = dict(args["payload"])
    elif kind == "delete_payload":
        for i in targets:
            for key in args["keys"]:
                state[i]["payload"].pop(key, None)
    elif kind == "update_vectors":
        for i in targets:
            state[i]["vectors"]["b"] = args["vector"]
    elif kind == "delete_vectors":
        for i in targets:
            state[i]["vectors"].pop("b", None)
    return state


def operation_request(op: tuple) -> tuple[str, str, dict]:
    kind, args = op
    if kind == "upsert":
        return "put", "points", {"points": [{"id": i, "vector": v, "payload": p} for i, (v, p) in args["points"].items()]}
    selector = {"points": args["ids"]} if "ids" in args else {"filter": {"must": [{"key": "g", "match": {"value": args["group"]}}]}}
    if kind == "delete":
        return "post", "points/delete", selector
    if kind in ("set_payload", "overwrite_payload"):
        return ("post" if kind == "set_payload" else "put"), "points/payload", {"payload": args["payload"], **selector}
    if kind == "delete_payload":
        return "post", "points/payload/delete", {"keys": args["keys"], **selector}
    if kind == "update_vectors":
        return "put", "points/vectors", {"points": [{"id": i, "vector": {"b": args["vector"]}} for i in args["ids"]]}
    return "post", "points/vectors/delete", {"vector": ["b"], **selector}


def random_operation(rng: random.Random, state: dict, next_id: int) -> tuple:
    existing = sorted(state)
    some = rng.sample(existing, min(len(existing), rng.randint(1, 12))) if existing else []
    kind = rng.choices(["upsert", "delete", "set_payload", "overwrite_payload", "delete_payload", "update_vectors",
                        "delete_vectors"], weights=[6, 2, 2, 1, 1, 2, 1])[0]
    if kind == "upsert" or not some:
        ids = list(range(next_id, next_id + rng.randint(5, 30))) + rng.sample(existing, min(len(existing), 5))
        return ("upsert", {"points": {i: ({"a": [i % 7, 1, rng.randint(0, 9), 2], "b": [1, 0, 0, rng.randint(0, 9)]},
                                          {"g": rng.randint(0, 9), "v": rng.randint(0, 99)}) for i in ids}})
    # Selected by ids or (except vector updates) by a filter on the group.
    selector = {"group": rng.randint(0, 9)} if kind != "update_vectors" and rng.random() < 0.3 else {"ids": some}
    if kind == "set_payload":
        return (kind, {"payload": {"x": rng.randint(0, 99)}, **selector})
    if kind == "overwrite_payload":
        return (kind, {"payload": {"g": rng.randint(0, 9), "v": -1}, **selector})
    if kind == "delete_payload":
        return (kind, {"keys": rng.sample(["x", "v"], 1), **selector})
    if kind == "update_vectors":
        return (kind, {"vector": [0, 1, rng.randint(0, 9), 0], "ids": some})
    return (kind, selector)


def stored_points(node, collection: str) -> dict:
    points, offset = {}, None
    while True:
        page = node.post(f"/collections/{collection}/points/scroll",
                         json={"limit": 1000, "offset": offset, "with_vector": True, "with_payload": True}).json()["result"]
        for p in page["points"]:
            assert p["id"] not in points
            points[p["id"]] = {"payload": p["payload"], "vectors": p["vector"]}
        offset = page["next_page_offset"]
        if offset is None:
            return points


def test_kill_9_during_every_kind_of_wait_true_write(node):
    """A writer sends upserts, deletes, payload and vector updates (by ids and by filter) with
    wait=true, while the server is SIGKILLed at random moments, half of them while an optimization
    runs. After each restart every point is as the acknowledged writes left it (a deleted point
    never comes back), except for what the one write cut short by the kill touched, which may
    show it applied or not, point by point."""
    rng = random.Random(1130)
    node.put("/collections/mixed", json={"vectors": {"a": {"size": 4, "distance": "Dot"}, "b": {"size": 4, "distance": "Euclid"}},
                                         "shard_number": 2,
                                         "optimizers_config": {"flush_interval_sec": 0, "indexing_threshold": 4, "default_segment_number": 2}})
    state: dict = {}
    next_id = 0
    during_optimization = acknowledged = 0
    for round_number in range(14):
        stop = threading.Event()
        progress = {"pending": None, "refused": [], "crashed": None}

        def writer():
            try:
                write()
            except Exception as error:  # noqa: BLE001 - the test fails on it below
                progress["crashed"] = repr(error)

        def write():
            nonlocal state, next_id, acknowledged
            while not stop.is_set():
                op = random_operation(rng, state, next_id)
                if op[0] == "upsert":
                    next_id = max(next_id, max(op[1]["points"]) + 1)
                after = apply_operation(state, op)
                progress["pending"] = (state, after)
                method, path, body = operation_request(op)
                try:
                    r = getattr(requests, method)(f"{node.url}/collections/mixed/{path}?wait=true", json=body, timeout=5)
                except requests.RequestException:
                    return
                if r.status_code != 200:
                    progress["refused"].append((op[0], r.status_code, r.text))
                    return
                state = after
                progress["pending"] = None
                acknowledged += 1

        acknowledged_before = acknowledged
        thread = threading.Thread(target=writer)
        thread.start()
        # Let the writer get going (bounded), so that every round kills during writes.
        deadline = time.monotonic() + 30
        while acknowledged < acknowledged_before + 5 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.01)
        if round_number % 2:
            # Kill while an optimization runs (polling until one does, for a bounded time).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                running = node.get("/collections/mixed/optimizations").json()["result"]["running"]
                if running:
                    break
                time.sleep(0.01)
            during_optimization += bool(running)
        else:
            time.sleep(rng.uniform(0.0, 0.8))
        node.kill()
        stop.set()
        thread.join(timeout=10)
        assert not progress["refused"], f"round {round_number}: a write was refused: {progress['refused']}"
        assert progress["crashed"] is None, f"round {round_number}: the writer failed: {progress['crashed']}"
        node.start()

        before, after = progress["pending"] or (state, state)
        stored = stored_points(node, "mixed")
        for i in set(before) | set(after) | set(stored):
            got, options = stored.get(i), [before.get(i), after.get(i)]
            assert got in options, f"round {round_number}: point {i} is {got}, expected one of {options}"
        # Continue from what the server kept.
        state = {i: p for i, p in stored.items()}
        count = node.post("/collections/mixed/points/count", json={}).json()["result"]["count"]
        assert count == len(stored)
    print(f"{acknowledged} writes acknowledged, {during_optimization} of 7 kills during an optimization")
    assert acknowledged > 100, "too few acknowledged writes to mean anything"
    assert during_optimization >= 2, "too few kills landed during an optimization"


def test_kill_9_after_wait_false_writes(node):
    """wait=false writes are acknowledged once in the WAL: a process crash right after keeps them."""
    node.put("/collections/async", json={"vectors": {"size": 2, "distance": "Dot"}, "optimizers_config": {"flush_interval_sec": 60}})
    for start in range(0, 2000, 100):
        r = node.put("/collections/async/points?wait=false", json={"points": [
            {"id": i, "vector": [i, 1], "payload": {"i": i}} for i in range(start, start + 100)]})
        assert r.status_code == 200 and r.json()["result"]["status"] == "acknowledged", r.text
    r = node.post("/collections/async/points/delete?wait=false", json={"points": list(range(0, 2000, 7))})
    assert r.status_code == 200, r.text
    r = node.post("/collections/async/points/payload?wait=false", json={"payload": {"late": True}, "points": [1, 2, 3]})
    assert r.status_code == 200, r.text
    node.kill()
    node.start()
    stored = stored_points(node, "async")
    assert set(stored) == {i for i in range(2000) if i % 7}
    assert stored[1]["payload"] == {"i": 1, "late": True} and stored[5]["payload"] == {"i": 5}


def test_large_writes_are_replayed_after_kill_9(node):
    """Upserts whose WAL records run more than the log reader's 1 MiB window past what it has read,
    with lengths that need padding (768-d points, 600 per request): kill -9 before any flush, and
    every one is replayed (a reader once stopped after the second such record and erased the rest)."""
    node.put("/collections/big", json={"vectors": {"size": 768, "distance": "Dot"}, "optimizers_config": {"flush_interval_sec": 600}})
    rng = random.Random(5)
    vectors = {}
    for start in range(0, 2400, 600):
        points = [{"id": i, "vector": [rng.uniform(-1, 1) for _ in range(768)], "payload": {"i": i, "pad": "x" * (start // 600)}}
                  for i in range(start, start + 600)]
        r = node.put("/collections/big/points?wait=true", json={"points": points}, timeout=60)
        assert r.status_code == 200, r.text
        vectors.update({p["id"]: p["vector"] for p in points})
    node.kill()
    node.start()
    assert node.post("/collections/big/points/count", json={"exact": True}).json()["result"]["count"] == 2400
    r = node.post("/collections/big/points", json={"ids": list(range(0, 2400, 97)), "with_vector": True}).json()["result"]
    assert len(r) == len(range(0, 2400, 97))
    for p in r:
        assert max(abs(a - b) for a, b in zip(p["vector"], vectors[p["id"]])) < 1e-6, p["id"]
