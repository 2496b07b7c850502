"""Crash safety of collection metadata: kill -9, restart, and every acknowledged change is there."""

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
