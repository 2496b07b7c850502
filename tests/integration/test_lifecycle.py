"""Process lifecycle and configuration, through the real binary and its command line."""

import signal
import socket
import subprocess
import time

import pytest


def test_sigterm_shuts_down_gracefully_and_restarts(node):
    node.put("/collections/c", json={})
    assert node.stop(timeout=15) == 0
    assert "Quiver stopped" in node.log()
    node.start()
    assert node.get("/collections/c/exists").json()["result"]["exists"] is True


def test_in_flight_request_finishes_on_sigterm(node):
    """Half a request body is on the wire when SIGTERM arrives; the request still completes."""
    body = b'{"vectors": {"size": 4, "distance": "Dot"}, "metadata": {"pad": "' + b"x" * 10000 + b'"}}'
    head = (f"PUT /collections/inflight HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
        s.sendall(head + body[:5000])
        time.sleep(0.3)
        node.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        s.sendall(body[5000:])
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert node.proc.wait(timeout=15) == 0
    node.start()
    assert node.get("/collections/inflight/exists").json()["result"]["exists"] is True


def test_sigint_shuts_down_too(node):
    node.proc.send_signal(signal.SIGINT)
    assert node.proc.wait(timeout=15) == 0


def test_second_process_on_same_storage_is_refused(node, make_node):
    other = make_node(start=False)
    other.extra_env["QDRANT__STORAGE__STORAGE_PATH"] = str(node.workdir / "storage")
    proc = other.spawn()
    assert proc.wait(timeout=15) == 2
    assert "in use by another process" in other.log()
    assert node.get("/").status_code == 200


def test_single_worker_thread_serves(make_node):
    node = make_node(env={"QDRANT__SERVICE__MAX_WORKERS": "1"})
    for i in range(20):
        assert node.put(f"/collections/c{i}", json={}).status_code == 200
    assert len(node.get("/collections").json()["result"]["collections"]) == 20


def test_banner_names_the_address(node):
    assert f"REST API listening on http://127.0.0.1:{node.port}" in node.log()


def test_config_files_layer_in_order(make_node, workdir):
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text("storage:\n  hnsw_index:\n    m: 24\n    ef_construct: 50\n")
    (workdir / "config" / "production.yaml").write_text("storage:\n  hnsw_index:\n    ef_construct: 60\n")
    (workdir / "config" / "local.yaml").write_text("storage:\n  optimizers:\n    indexing_threshold_kb: 5\n")
    (workdir / "extra.yaml").write_text("storage:\n  wal:\n    wal_capacity_mb: 7\n  surprise: 1\n")
    node = make_node(env={"RUN_MODE": "production", "QDRANT__STORAGE__HNSW_INDEX__PAYLOAD_M": "4"},
                     args=["--config-path", str(workdir / "extra.yaml")])
    node.put("/collections/c", json={"vectors": {"size": 2, "distance": "Dot"}})
    config = node.get("/collections/c").json()["result"]["config"]
    assert config["hnsw_config"]["m"] == 24
    assert config["hnsw_config"]["ef_construct"] == 60
    assert config["hnsw_config"]["payload_m"] == 4
    assert config["optimizer_config"]["indexing_threshold"] == 5
    assert config["wal_config"]["wal_capacity_mb"] == 7
    assert "unknown configuration key `storage.surprise` is ignored" in node.log()


def test_log_level_filter(make_node):
    node = make_node(env={"QDRANT__LOG_LEVEL": "INFO,quiver.rest=warn"})
    node.get("/collections")
    node.put("/collections/c", json={})
    log = node.log()
    assert "REST API listening" in log  # the quiver logger is still at INFO
    assert '"PUT /collections/c"' not in log  # request lines of quiver.rest are filtered out
    quiet = make_node(env={"QDRANT__LOG_LEVEL": "error"}, subdir="quiet")
    quiet.put("/collections/c", json={})
    assert "REST API listening" not in quiet.log()


@pytest.mark.parametrize("env, args, message", [
    ({"QDRANT__SERVICE__ENABLE_TLS": "true"}, [], "tls.cert and tls.key must name"),
    ({"QDRANT__SERVICE__HTTP_PORT": "not-a-port"}, [], "service.http_port: expected an integer"),
    ({}, ["--config-path", "/nonexistent.yaml"], "no such file"),
    ({}, ["--snapshot", "/nonexistent.snapshot:c"], "cannot recover collection c from /nonexistent.snapshot"),
    ({"QDRANT__STORAGE__SNAPSHOTS_CONFIG__SNAPSHOTS_STORAGE": "s3"}, [], "snapshots_storage: \"s3\" is not supported"),
])
def test_bad_configuration_exits_with_a_message(make_node, env, args, message):
    node = make_node(env=env, args=args, start=False)
    proc = node.spawn()
    assert proc.wait(timeout=15) == 2
    assert message in node.log()


@pytest.mark.parametrize("args, message", [
    (["--uri", "10.0.0.1:6335"], "--uri 10.0.0.1:6335: not a URI; expected http://HOST:PORT"),
    (["--uri", "ftp://10.0.0.1:6335"], "scheme must be http or https"),
    (["--bootstrap", "http://peer"], "missing port"),
    (["--snapshot", "x.snapshot"], "--snapshot x.snapshot: expected PATH:COLLECTION"),
    (["--no-such-flag"], "Unknown option"),
])
def test_bad_command_line_exits_with_a_message(make_node, args, message):
    node = make_node(args=args, start=False)
    proc = node.spawn()
    assert proc.wait(timeout=15) == 64  # EX_USAGE, as argument parsing errors exit
    assert message in node.log()


def test_cluster_flags_are_accepted_and_ignored_in_single_node_mode(make_node):
    node = make_node(args=["--uri", "http://127.0.0.1:6335", "--reinit"], env={"QDRANT_BOOTSTRAP": "http://127.0.0.1:6336"})
    assert "--uri, --bootstrap and --reinit are ignored in single-node mode" in node.log()
    assert node.get("/").status_code == 200


def test_disable_telemetry_is_accepted_and_the_endpoint_still_answers(make_node):
    node = make_node(args=["--disable-telemetry"])
    r = node.get("/telemetry")
    assert r.status_code == 200 and r.json()["result"]["collections"] == {"number_of_collections": 0}


def test_help_lists_the_flags():
    from conftest import BINARY
    out = subprocess.run([str(BINARY), "--help"], capture_output=True, text=True, timeout=15).stdout
    for flag in ["--uri", "--bootstrap", "--reinit", "--config-path", "--disable-telemetry"]:
        assert flag in out
