"""Differential test of updates: random sequences of upserts (with `update_mode` and
`update_filter`, list and batch formats), vector updates with `update_filter`, set payload at `key`
paths through objects and arrays (with `null` values, which remove keys), overwrite and delete
payload, deletes, and `points/batch` mixing them, run against the real server and against
qdrant-client's local mode. After every few operations every point (id, payload, vectors) must be
the same on both.

`QUIVER_DIFF_SEED` picks other random seeds (the test runs seeds 7, 8 and 9 by default).
"""

import os
import random

import pytest
from qdrant_client import QdrantClient, models

from test_filter_differential import KEYWORDS, random_datetime

ID_SPACE = 160
KEY_PATHS = ["nest[0]", "nest[1]", "nest[]", "nest[].nest", "nest[0].a", "nest[].a.z", "nest", "nest.x", "obj", "obj.inner",
             "obj.arr[]", "obj.arr[0]", "other[0]", "other[].x", "other.x", "kw", "kw.sub", "deep.er.est"]
SEEDS = [int(s) for s in os.environ.get("QUIVER_DIFF_SEED", "7,8,9").split(",")]


def random_value(rng: random.Random, depth: int = 0):
    r = rng.random()
    if r < 0.25:
        return rng.choice(KEYWORDS)
    if r < 0.45:
        return rng.randint(-5, 5)
    if r < 0.55:
        return random_datetime(rng)
    if r < 0.65:
        return None
    if r < 0.8 and depth < 2:
        return {rng.choice("abcd"): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if depth < 2:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.random() < 0.5


def random_payload(rng: random.Random) -> dict:
    p = {"n": rng.randint(0, 9), "kw": rng.choice(KEYWORDS)}
    if rng.random() < 0.8:
        p["nest"] = [{"a": rng.choice(["100", "200", 7]), "b": rng.choice(KEYWORDS)} for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.6:
        p["obj"] = {"x": rng.randint(0, 5), "arr": [{"q": rng.randint(0, 3)} for _ in range(rng.randint(0, 2))]}
    if rng.random() < 0.5:
        p["dt"] = random_datetime(rng)
    return p


def random_filter(rng: random.Random) -> models.Filter:
    options = [
        models.FieldCondition(key="n", range=models.Range(gte=rng.randint(0, 9))),
        models.FieldCondition(key="kw", match=models.MatchValue(value=rng.choice(KEYWORDS))),
        models.FieldCondition(key="nest[].a", match=models.MatchValue(value=rng.choice(["100", "200"]))),
        models.FieldCondition(key="obj.x", match=models.MatchAny(any=rng.sample(range(6), 3))),
        models.FieldCondition(key="dt", range=models.DatetimeRange(gt="2024-03-14T00:00:00Z")),
        models.IsEmptyCondition(is_empty=models.PayloadField(key="nest")),
    ]
    chosen = rng.sample(options, rng.randint(1, 2))
    return models.Filter(must=chosen) if rng.random() < 0.6 else models.Filter(should=chosen)


def random_vectors(rng: random.Random, partial: bool = False) -> dict:
    vectors = {"a": [rng.randint(-4, 4) / 4 for _ in range(4)], "b": [rng.randint(-4, 4) / 4 for _ in range(3)]}
    if partial:
        del vectors[rng.choice(["a", "b"])]
    return vectors


def alive_ids(client) -> list:
    page, _ = client.scroll("u", limit=ID_SPACE + 10, with_payload=False)
    return [p.id for p in page]


def snapshot(client) -> list:
    page, _ = client.scroll("u", limit=ID_SPACE + 10, with_payload=True, with_vectors=True)
    return [(p.id, p.payload, {k: [round(x, 5) for x in v] for k, v in (p.vector or {}).items()}) for p in page]


def random_operation(rng: random.Random, alive: list):
    """One operation as (description, function of a client), touching only existing points where
    a missing one would be an error."""
    kind = rng.choices(["upsert", "batch_format", "vectors", "set", "overwrite", "delete_payload", "delete", "batch"],
                       weights=[5, 1, 2, 6, 1, 2, 1, 2])[0]
    mode = rng.choice([None, models.UpdateMode.UPSERT, models.UpdateMode.INSERT_ONLY, models.UpdateMode.UPDATE_ONLY])
    update_filter = random_filter(rng) if rng.random() < 0.5 else None
    some_alive = rng.sample(alive, min(len(alive), rng.randint(1, 8))) if alive else []
    if kind == "upsert":
        points = [models.PointStruct(id=i, vector=random_vectors(rng), payload=random_payload(rng))
                  for i in rng.sample(range(ID_SPACE), rng.randint(1, 10))]
        return (kind, mode, update_filter), lambda c: c.upsert("u", points=points, update_mode=mode, update_filter=update_filter)
    if kind == "batch_format":
        ids = rng.sample(range(ID_SPACE), rng.randint(1, 6))
        batch = models.Batch(ids=ids, vectors={"a": [random_vectors(rng)["a"] for _ in ids], "b": [random_vectors(rng)["b"] for _ in ids]},
                             payloads=[random_payload(rng) for _ in ids])
        return (kind, mode, update_filter), lambda c: c.upsert("u", points=batch, update_mode=mode, update_filter=update_filter)
    if kind == "vectors":
        points = [models.PointVectors(id=i, vector=random_vectors(rng, partial=True)) for i in some_alive]
        return (kind, update_filter), lambda c: c.update_vectors("u", points=points, update_filter=update_filter)
    if kind == "set":
        payload = {rng.choice("abcdxnq"): random_value(rng) for _ in range(rng.randint(1, 3))}
        key = rng.choice(KEY_PATHS) if rng.random() < 0.8 else None
        selector = some_alive if rng.random() < 0.7 else random_filter(rng)
        return (kind, key, payload), lambda c: c.set_payload("u", payload=payload, points=selector, key=key)
    if kind == "overwrite":
        payload = random_payload(rng)
        return (kind,), lambda c: c.overwrite_payload("u", payload=payload, points=some_alive)
    if kind == "delete_payload":
        keys = rng.sample(["n", "nest[].a", "nest[0]", "obj.arr[].q", "obj.x", "dt", "missing.path", "x"], rng.randint(1, 3))
        return (kind, keys), lambda c: c.delete_payload("u", keys=keys, points=some_alive)
    if kind == "delete":
        doomed = rng.sample(alive, min(len(alive), rng.randint(1, 4))) if alive else [0]
        return (kind,), lambda c: c.delete("u", points_selector=models.PointIdsList(points=doomed))
    operations = [
        models.UpsertOperation(upsert=models.PointsList(
            points=[models.PointStruct(id=i, vector=random_vectors(rng), payload=random_payload(rng))
                    for i in rng.sample(range(ID_SPACE), rng.randint(1, 5))],
            update_mode=mode, update_filter=update_filter)),
        models.SetPayloadOperation(set_payload=models.SetPayload(
            payload={"batch": random_value(rng)}, key=rng.choice(KEY_PATHS), filter=random_filter(rng))),
    ]
    if some_alive:
        operations.append(models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(
            points=[models.PointVectors(id=i, vector=random_vectors(rng, partial=True)) for i in some_alive[:3]],
            update_filter=random_filter(rng))))
    rng.shuffle(operations)
    return ("batch", mode, update_filter), lambda c: c.batch_update_points("u", update_operations=operations)


@pytest.mark.qdrant_client
@pytest.mark.parametrize("seed", SEEDS)
def test_updates_agree_with_local_mode(node, seed):
    rng = random.Random(seed)
    remote = node.client(timeout=30)
    local = QdrantClient(":memory:")
    vectors = {"a": models.VectorParams(size=4, distance=models.Distance.DOT),
               "b": models.VectorParams(size=3, distance=models.Distance.EUCLID)}
    # Small segments, so that updates also reach points the optimizer has sealed (copy-on-write).
    remote.create_collection("u", vectors_config=vectors, shard_number=2,
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1))
    local.create_collection("u", vectors_config=vectors)
    initial = [models.PointStruct(id=i, vector=random_vectors(rng), payload=random_payload(rng)) for i in range(0, ID_SPACE, 2)]
    for client in (remote, local):
        client.upsert("u", points=initial)
    if seed % 2:
        remote.create_payload_index("u", field_name="n", field_schema=models.PayloadSchemaType.INTEGER)
        remote.create_payload_index("u", field_name="dt", field_schema=models.PayloadSchemaType.DATETIME)
    history = []
    skipped_by_condition = 0
    for step in range(120):
        alive = alive_ids(local)
        description, apply = random_operation(rng, alive)
        history.append(description)
        before = snapshot(local)
        apply(local)
        apply(remote)
        if description[0] in ("upsert", "batch_format") and len(description) > 2 and (description[1] or description[2]):
            skipped_by_condition += snapshot(local) == before
        if step % 6 == 5 or step == 119:
            assert snapshot(remote) == snapshot(local), f"seed {seed}, after step {step}: {history[-6:]}"
    # The generator must exercise conditions that change nothing as well as ones that do.
    assert skipped_by_condition > 0
