"""The public gRPC API with raw calls: Python's grpcio and the repository's own .proto files (compiled
here into a private descriptor pool, so they cannot mix with qdrant-client's), responses compared
byte for byte with the messages expected, error statuses, compression, limits and configuration.

The qdrant-client tests of the other files run over gRPC as well (their `[grpc]` variants)."""

import signal
import socket
import tempfile
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

from conftest import REPO

PROTOS = REPO / "Protos"


@pytest.fixture(scope="module")
def pool():
    """Every message of Protos/, by full name."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
        include = Path(protoc.__file__).parent / "_proto"
        assert protoc.main(["protoc", f"-I{PROTOS}", f"-I{include}", "--include_imports", f"--descriptor_set_out={out}", *files]) == 0
        descriptors = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in descriptors.file:
        pool.Add(file)
    return lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


class Raw:
    """Unary calls by method path, answering the response's bytes as they arrived."""

    def __init__(self, node, compression=None):
        self.channel = grpc.insecure_channel(f"127.0.0.1:{node.grpc_port}", compression=compression)

    def call(self, method: str, request) -> bytes:
        return self.channel.unary_unary(method, request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=lambda b: b)(request, timeout=10)

    def bytes(self, method: str, payload: bytes) -> bytes:
        return self.channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)(payload, timeout=10)


def without_time(raw: bytes, cls):
    """The response with its `time` (which varies) cleared, after checking that the server's bytes
    are the canonical encoding of what they decode to."""
    message = cls.FromString(raw)
    assert message.SerializeToString(deterministic=True) == raw
    assert message.time > 0
    message.ClearField("time")
    return message.SerializeToString(deterministic=True)


def test_health_checks_answer_exact_bytes(node, pool):
    raw = Raw(node)
    reply = raw.call("/qdrant.Qdrant/HealthCheck", pool("qdrant.HealthCheckRequest")())
    info = node.get("/").json()
    expected = pool("qdrant.HealthCheckReply")(title=info["title"], version=info["version"])
    if info.get("commit"):
        expected.commit = info["commit"]
    assert reply == expected.SerializeToString(deterministic=True)

    serving = pool("grpc.health.v1.HealthCheckResponse")(status=1).SerializeToString()
    assert raw.call("/grpc.health.v1.Health/Check", pool("grpc.health.v1.HealthCheckRequest")()) == serving
    assert raw.call("/grpc.health.v1.Health/Check", pool("grpc.health.v1.HealthCheckRequest")(service="qdrant.Points")) == serving
    with pytest.raises(grpc.RpcError) as e:
        raw.call("/grpc.health.v1.Health/Check", pool("grpc.health.v1.HealthCheckRequest")(service="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_points_round_trip_byte_for_byte(node, pool):
    raw = Raw(node)
    create = pool("qdrant.CreateCollection")(collection_name="c")
    create.vectors_config.params.size = 2
    create.vectors_config.params.distance = 3  # Dot
    assert without_time(raw.call("/qdrant.Collections/Create", create), pool("qdrant.CollectionOperationResponse")) == \
        pool("qdrant.CollectionOperationResponse")(result=True).SerializeToString()

    upsert = pool("qdrant.UpsertPoints")(collection_name="c", wait=True)
    for i in range(3):
        point = upsert.points.add()
        point.id.num = i + 1
        point.vectors.vector.dense.data.extend([float(i), 1.0])
        point.payload["tag"].string_value = f"t{i}"
    response = pool("qdrant.PointsOperationResponse").FromString(raw.call("/qdrant.Points/Upsert", upsert))
    assert response.result.status == 2  # Completed
    assert response.result.HasField("operation_id")

    search = pool("qdrant.SearchPoints")(collection_name="c", vector=[1.0, 0.0], limit=2)
    search.with_payload.enable = True
    expected = pool("qdrant.SearchResponse")()
    for i in (3, 2):
        hit = expected.result.add()
        hit.id.num = i
        hit.score = float(i - 1)
        hit.version = 0
        hit.payload["tag"].string_value = f"t{i - 1}"
    got = pool("qdrant.SearchResponse").FromString(raw.call("/qdrant.Points/Search", search))
    for hit in got.result:
        hit.version = 0  # the operation that wrote the point, not fixed by the test
    got.ClearField("time")
    assert got.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)

    count = pool("qdrant.CountPoints")(collection_name="c", exact=True)
    assert without_time(raw.call("/qdrant.Points/Count", count), pool("qdrant.CountResponse")) == \
        pool("qdrant.CountResponse")(result=pool("qdrant.CountResult")(count=3)).SerializeToString()

    get = pool("qdrant.GetPoints")(collection_name="c")
    get.ids.add().num = 2
    get.with_vectors.enable = True
    expected = pool("qdrant.GetResponse")()
    point = expected.result.add()
    point.id.num = 2
    point.payload["tag"].string_value = "t1"
    point.vectors.vector.dense.data.extend([1.0, 1.0])
    assert without_time(raw.call("/qdrant.Points/Get", get), pool("qdrant.GetResponse")) == expected.SerializeToString(deterministic=True)


@pytest.mark.parametrize("method, request_name, fields, code, message", [
    ("/qdrant.Collections/Get", "qdrant.GetCollectionInfoRequest", {"collection_name": "nope"},
     grpc.StatusCode.NOT_FOUND, "Not found: Collection `nope` doesn't exist!"),
    ("/qdrant.Collections/Create", "qdrant.CreateCollection", {"collection_name": "c"},
     grpc.StatusCode.ALREADY_EXISTS, "Wrong input: Collection `c` already exists!"),
    ("/qdrant.Points/Search", "qdrant.SearchPoints", {"collection_name": "c", "vector": [1.0, 2.0, 3.0], "limit": 1},
     grpc.StatusCode.INVALID_ARGUMENT, "Wrong input: Vector dimension error: expected dim: 2, got 3"),
    ("/qdrant.Points/Search", "qdrant.SearchPoints", {"collection_name": "c", "vector": [1.0, 2.0], "limit": 0},
     grpc.StatusCode.INVALID_ARGUMENT, "Format error in body: limit: must be at least 1"),
    ("/qdrant.Points/Upsert", "qdrant.UpsertPoints", {"collection_name": "c", "points": [{"id": {"num": 1}}]},
     grpc.StatusCode.INVALID_ARGUMENT, "Format error in body: points[0]: missing field `vector`"),
])
def test_errors_have_qdrants_status_codes(node, pool, method, request_name, fields, code, message):
    raw = Raw(node)
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}}).raise_for_status()
    with pytest.raises(grpc.RpcError) as e:
        raw.call(method, pool(request_name)(**fields))
    assert (e.value.code(), e.value.details()) == (code, message)


def test_bytes_that_are_not_the_message_are_refused(node, pool):
    raw = Raw(node)
    with pytest.raises(grpc.RpcError) as e:
        raw.bytes("/qdrant.Points/Count", b"\xff\xff\xff")
    # Qdrant's server (tonic) answers INTERNAL for a message that does not decode.
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert e.value.details().startswith("failed to decode Protobuf message")
    with pytest.raises(grpc.RpcError) as e:
        raw.bytes("/qdrant.Points/NoSuchMethod", b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED


def upsert_request(pool, n, dim=64, first=0):
    request = pool("qdrant.UpsertPoints")(collection_name="c", wait=True)
    for i in range(first, first + n):
        point = request.points.add()
        point.id.num = i
        point.vectors.vector.dense.data.extend([0.5] * dim)
    return request


def count(node):
    return node.post("/collections/c/points/count", json={"exact": True}).json()["result"]["count"]


def test_compression_and_the_request_size_limit(make_node, pool):
    node = make_node(env={"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1"})
    node.put("/collections/c", json={"vectors": {"size": 64, "distance": "Dot"}}).raise_for_status()
    ok = pool("qdrant.PointsOperationResponse")

    # gzip and deflate make a repeated vector tiny on the wire.
    assert ok.FromString(Raw(node, grpc.Compression.Gzip).call("/qdrant.Points/Upsert", upsert_request(pool, 100))).result.status == 2
    assert ok.FromString(Raw(node, grpc.Compression.Deflate).call("/qdrant.Points/Upsert", upsert_request(pool, 100, first=100))).result.status == 2
    assert count(node) == 200

    large = upsert_request(pool, 5000, first=1000)  # about 1.4 MB decoded
    assert large.ByteSize() > 1024 * 1024
    with pytest.raises(grpc.RpcError) as e:
        Raw(node).call("/qdrant.Points/Upsert", large)
    assert (e.value.code(), e.value.details()) == (
        grpc.StatusCode.OUT_OF_RANGE, f"Error, decoded message length too large: found {large.ByteSize()} bytes, the limit is: 1048576 bytes")
    # Compressed, it is small on the wire but still too large once decompressed.
    with pytest.raises(grpc.RpcError) as e:
        Raw(node, grpc.Compression.Gzip).call("/qdrant.Points/Upsert", large)
    assert (e.value.code(), e.value.details()) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "Error decompressing: size limit, of 1048576 bytes, exceeded while decompressing message")
    assert count(node) == 200
    # A connection goes on serving after refusals whose bytes add up to more than its flow-control
    # window: what the client sent after the refusal is counted as read.
    raw = Raw(node)
    for _ in range(12):
        with pytest.raises(grpc.RpcError) as e:
            raw.call("/qdrant.Points/Upsert", large)
        assert e.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert ok.FromString(raw.call("/qdrant.Points/Upsert", upsert_request(pool, 10, first=200))).result.status == 2
    assert count(node) == 210


def test_large_messages_and_many_concurrent_calls_on_one_connection(node, pool):
    """Messages larger than every flow-control window, and calls multiplexed on one connection."""
    node.put("/collections/c", json={"vectors": {"size": 256, "distance": "Dot"}}).raise_for_status()
    raw = Raw(node)
    request = pool("qdrant.UpsertPoints")(collection_name="c", wait=True)
    for i in range(20000):  # about 21 MB, past the 16 MiB connection window
        point = request.points.add()
        point.id.num = i
        point.vectors.vector.dense.data.extend([float(i % 97)] * 256)
    assert request.ByteSize() > 20_000_000
    assert pool("qdrant.PointsOperationResponse").FromString(raw.call("/qdrant.Points/Upsert", request)).result.status == 2
    assert count(node) == 20000

    # A response of 3 MB (under the client's 4 MB limit): a page of points with their vectors.
    scroll = pool("qdrant.ScrollPoints")(collection_name="c", limit=3000)
    scroll.with_vectors.enable = True
    page = pool("qdrant.ScrollResponse").FromString(raw.call("/qdrant.Points/Scroll", scroll))
    assert len(page.result) == 3000
    assert all(list(p.vectors.vector.dense.data) == [float(p.id.num % 97)] * 256 for p in page.result)

    get = raw.channel.unary_unary("/qdrant.Points/Get", request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=pool("qdrant.GetResponse").FromString)
    futures = []
    for i in range(300):
        message = pool("qdrant.GetPoints")(collection_name="c")
        message.ids.add().num = i * 7
        futures.append((i * 7, get.future(message, timeout=30)))
    for point_id, future in futures:
        assert [p.id.num for p in future.result().result] == [point_id]

    # A call the client gives up on does not disturb the others.
    abandoned = raw.channel.unary_unary("/qdrant.Points/Upsert", request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=lambda b: b).future(request, timeout=30)
    abandoned.cancel()
    message = pool("qdrant.GetPoints")(collection_name="c")
    message.ids.add().num = 14
    assert [p.id.num for p in get(message, timeout=10).result] == [14]


def test_sigterm_lets_the_calls_in_progress_finish(node, pool):
    node.put("/collections/c", json={"vectors": {"size": 256, "distance": "Dot"}}).raise_for_status()
    request = pool("qdrant.UpsertPoints")(collection_name="c", wait=True)
    for i in range(20000):  # about 21 MB, which takes the server a while
        point = request.points.add()
        point.id.num = i
        point.vectors.vector.dense.data.extend([float(i % 97)] * 256)
    raw = Raw(node)
    answered = []
    future = raw.channel.unary_unary("/qdrant.Points/Upsert", request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=pool("qdrant.PointsOperationResponse").FromString).future(request, timeout=60)
    future.add_done_callback(lambda _: answered.append(time.monotonic()))
    time.sleep(0.3)  # the call has started
    stopped = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    assert future.result().result.status == 2
    assert answered[0] > stopped  # it was answered after the server was told to stop
    assert node.proc.wait(timeout=15) == 0
    node.start()
    assert count(node) == 20000


def test_grpc_port_null_switches_grpc_off(make_node):
    node = make_node(env={"QDRANT__SERVICE__GRPC_PORT": "null"})
    assert node.get("/healthz").status_code == 200
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", node.grpc_port)) != 0
    assert "gRPC API listening" not in node.log()
