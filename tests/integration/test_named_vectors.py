"""Named vectors added to and removed from a live collection (`PUT`/`DELETE
/collections/{c}/vectors/{name}`): dense, multivector and sparse; points in appendable and
immutable segments; a removed vector's data gone for good (also after a restart and when the name
is created again); the same on a 3-peer cluster."""

import random
import signal

import pytest
from qdrant_client import models

from test_cluster import Cluster, wait_for
from test_sparse import wait_green


def vectors_of(client, ids):
    return {p.id: p.vector for p in client.retrieve("c", ids, with_vectors=True)}


def fill(client, rng, n=400):
    points = [models.PointStruct(id=i, vector={"a": [rng.uniform(-1, 1), rng.uniform(-1, 1)],
                                               "s": models.SparseVector(indices=[i % 7, 7 + i % 5], values=[1.0, 0.5])})
              for i in range(n)]
    for start in range(0, n, 100):
        client.upsert("c", points=points[start:start + 100], wait=True)


@pytest.mark.qdrant_client
def test_vectors_come_and_go_on_a_live_collection(make_node):
    node = make_node(env={"SWIFT_BACKTRACE": "enable=no"})
    client = node.client(timeout=30)
    client.create_collection("c", vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)},
                             sparse_vectors_config={"s": models.SparseVectorParams()},
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=5))
    rng = random.Random(91)
    fill(client, rng)
    wait_green(client)
    manifests = list(node.workdir.glob("storage/collections/c/*/segments/*/manifest.json"))
    assert any('"immutable"' in m.read_text() for m in manifests), "no immutable segment"

    # Added: a dense vector, a multivector and a sparse vector.
    r = node.put("/collections/c/vectors/b?wait=true", json={"dense": {"size": 3, "distance": "Cosine"}})
    assert r.status_code == 200 and r.json()["result"]["status"] == "completed", r.text
    assert node.put("/collections/c/vectors/m?wait=true", json={"dense": {"size": 2, "distance": "Dot",
                                                                           "multivector_config": {"comparator": "max_sim"}}}).status_code == 200
    assert node.put("/collections/c/vectors/t?wait=true", json={"sparse": {"modifier": "idf"}}).status_code == 200
    params = node.get("/collections/c").json()["result"]["config"]["params"]
    assert params["vectors"]["b"] == {"size": 3, "distance": "Cosine"} and params["vectors"]["m"]["multivector_config"] == {"comparator": "max_sim"}
    assert params["sparse_vectors"]["t"] == {"modifier": "idf"}
    # No point has them yet; writing them to points of every segment works.
    assert all(set(v) == {"a", "s"} for v in vectors_of(client, list(range(0, 400, 37))).values())
    updated = list(range(0, 400, 3))
    client.update_vectors("c", points=[models.PointVectors(id=i, vector={"b": [1, i, 0], "m": [[1, 0], [0, i]],
                                                                         "t": models.SparseVector(indices=[i], values=[1.0])})
                                       for i in updated], wait=True)
    stored = vectors_of(client, [3, 4])
    assert set(stored[3]) == {"a", "s", "b", "m", "t"} and set(stored[4]) == {"a", "s"}
    found = client.query_points("c", query=[1, 0, 0], using="b", limit=500).points
    assert sorted(p.id for p in found) == updated
    assert [p.id for p in client.query_points("c", query=[[0, 1]], using="m", limit=1).points] == [399]
    assert [p.id for p in client.query_points("c", query=models.SparseVector(indices=[12], values=[1.0]), using="t").points] == [12]

    # Creating again with the same space changes nothing; another space or kind is refused.
    assert node.put("/collections/c/vectors/b", json={"dense": {"size": 3, "distance": "Cosine"}}).status_code == 200
    r = node.put("/collections/c/vectors/b", json={"dense": {"size": 4, "distance": "Cosine"}})
    assert r.status_code == 400 and "already exists with a different configuration" in r.json()["status"]["error"]
    r = node.put("/collections/c/vectors/s", json={"dense": {"size": 4, "distance": "Cosine"}})
    assert r.status_code == 400 and "already exists as a sparse vector" in r.json()["status"]["error"]
    r = node.put("/collections/c/vectors/b", json={"dense": {"size": 0, "distance": "Cosine"}})
    assert r.status_code == 422, r.text
    assert node.put("/collections/nope/vectors/b", json={"dense": {"size": 3, "distance": "Cosine"}}).status_code == 404

    # Removed: the data is gone from every segment, and queries on the name are refused.
    assert node.delete("/collections/c/vectors/a?wait=true").status_code == 200
    assert node.delete("/collections/c/vectors/t?wait=true").status_code == 200
    assert all("a" not in v and "t" not in v for v in vectors_of(client, list(range(400))).values())
    r = node.post("/collections/c/points/query", json={"query": [1, 0], "using": "a"})
    assert r.status_code == 400 and "Not existing vector name error: a" in r.json()["status"]["error"]

    # The optimizer merges segments of both generations; then kill -9 and a restart.
    client.update_collection("c", optimizers_config=models.OptimizersConfigDiff(default_segment_number=1, max_segment_size=100000))
    wait_green(client)
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    node.start()
    stored = vectors_of(client, list(range(400)))
    assert all("a" not in v and "t" not in v and "s" in v for v in stored.values())
    assert sorted(i for i, v in stored.items() if "b" in v) == updated
    assert sorted(p.id for p in client.query_points("c", query=[1, 0, 0], using="b", limit=500).points) == updated
    # Created again under the same name: empty, not the old data back.
    assert node.put("/collections/c/vectors/a?wait=true", json={"dense": {"size": 2, "distance": "Dot"}}).status_code == 200
    assert all("a" not in v for v in vectors_of(client, list(range(400))).values())
    assert client.query_points("c", query=[1, 0], using="a").points == []
    node.stop()
    node.start()
    assert all("a" not in v and "t" not in v for v in vectors_of(client, list(range(400))).values())


@pytest.mark.qdrant_client
def test_named_vectors_on_a_cluster(make_node):
    cluster = Cluster(make_node)
    peers = cluster.start(3)
    client = peers[0].client(timeout=30)
    client.create_collection("c", vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)},
                             sparse_vectors_config={"s": models.SparseVectorParams()}, shard_number=3, replication_factor=2)
    fill(client, random.Random(92), n=200)
    assert peers[1].put("/collections/c/vectors/b?wait=true", json={"dense": {"size": 2, "distance": "Dot"}}).status_code == 200
    for peer in peers:
        wait_for(lambda: "b" in peer.get("/collections/c").json()["result"]["config"]["params"]["vectors"], timeout=30, message="b everywhere")
    client.update_vectors("c", points=[models.PointVectors(id=i, vector={"b": [1, i]}) for i in range(0, 200, 2)], wait=True)
    other = peers[2].client(timeout=30)
    assert sorted(p.id for p in other.query_points("c", query=[0, 1], using="b", limit=200).points) == list(range(0, 200, 2))
    assert peers[2].delete("/collections/c/vectors/s?wait=true").status_code == 200
    for peer in peers:
        wait_for(lambda: "s" not in (peer.get("/collections/c").json()["result"]["config"]["params"].get("sparse_vectors") or {}),
                 timeout=30, message="s gone everywhere")
    stored = {p.id: p.vector for p in other.retrieve("c", list(range(200)), with_vectors=True)}
    assert all("s" not in v for v in stored.values()) and sum("b" in v for v in stored.values()) == 100
