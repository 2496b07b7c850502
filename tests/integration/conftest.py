"""Integration-test harness: the real `quiver` binary on free loopback ports (REST and gRPC), driven
over HTTP and through `qdrant-client`, whose tests run once over each protocol.

Every node runs in its own temporary directory (its working directory, so no config/ files of the
repository are picked up) and is stopped and removed at the end of the test, also on failure.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from qdrant_client import QdrantClient
from openapi_schema_validator import OAS30Validator

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("QUIVER_BINARY", REPO / ".build" / "debug" / "quiver"))
OPENAPI = Path(os.environ.get("QUIVER_OPENAPI", REPO.parent / "shared" / "reference" / "qdrant-openapi-v1.19.json"))
STARTUP_TIMEOUT_S = 30


def free_port() -> int:
    """A port free now, below the kernel's range for outgoing connections: a port the kernel hands
    out (port 0) can be taken by a peer's outgoing connection before the node listens on it."""
    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(1000):
        port = _PORTS.randrange(10_000, low)
        if port in _GIVEN:  # handed out already, maybe not listened on yet
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port found")


_PORTS = random.Random()
_GIVEN: set[int] = set()


class Node:
    """One quiver process. `start()` waits until /readyz answers; `kill()` is SIGKILL."""

    def __init__(self, workdir: Path, env: dict | None = None, args: list[str] | None = None):
        self.workdir = workdir
        self.port = free_port()
        self.grpc_port = free_port()
        self.extra_env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen | None = None
        # Run in the child before the binary starts (e.g. to join a cgroup).
        self.preexec = None
        self.log_path = workdir / f"quiver-{self.port}.log"
        self.url = f"http://127.0.0.1:{self.port}"
        # Options of every request the helpers make (`verify=` and `cert=` for a node on HTTPS).
        self.http_options: dict = {}

    def environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QDRANT__", "QUIVER__"))}
        env.update({
            "SWIFT_BACKTRACE": "enable=no",
            "QDRANT__SERVICE__HOST": "127.0.0.1",
            "QDRANT__SERVICE__HTTP_PORT": str(self.port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.grpc_port),
            "QDRANT__STORAGE__STORAGE_PATH": str(self.workdir / "storage"),
            "QDRANT__STORAGE__SNAPSHOTS_PATH": str(self.workdir / "snapshots"),
        })
        env.update(self.extra_env)
        return env

    def spawn(self) -> subprocess.Popen:
        assert BINARY.exists(), f"{BINARY} is missing: build with `swift build` first"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(BINARY), *self.args], cwd=self.workdir, env=self.environment(),
                                     stdout=log, stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        log.close()
        return self.proc

    def start(self) -> "Node":
        self.spawn()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"quiver exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/readyz", timeout=1, **self.http_options).status_code == 200 and self.grpc_listening():
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"quiver did not become ready in {STARTUP_TIMEOUT_S}s:\n{self.log()}")

    def grpc_listening(self) -> bool:
        """Whether the gRPC port accepts connections (always true when gRPC is switched off)."""
        if self.environment().get("QDRANT__SERVICE__GRPC_PORT", "") in ("", "null"):
            return True
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex(("127.0.0.1", int(self.environment()["QDRANT__SERVICE__GRPC_PORT"]))) == 0

    def client(self, **kw) -> QdrantClient:
        """A `qdrant-client` for this node, speaking REST or gRPC as the test's `transport` says
        (tests marked `qdrant_client` run once with each)."""
        kw.setdefault("timeout", 10)
        kw.setdefault("check_compatibility", False)
        return QdrantClient(url=self.url, grpc_port=self.grpc_port, prefer_grpc=_TRANSPORT["name"] == "grpc", **kw)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.proc.returncode

    def restart(self) -> "Node":
        self.kill()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # HTTP helpers
    def get(self, path, **kw):
        kw = {"timeout": 10, **self.http_options, **kw}
        return requests.get(self.url + path, **kw)

    def put(self, path, **kw):
        kw = {"timeout": 10, **self.http_options, **kw}
        return requests.put(self.url + path, **kw)

    def post(self, path, **kw):
        kw = {"timeout": 10, **self.http_options, **kw}
        return requests.post(self.url + path, **kw)

    def patch(self, path, **kw):
        kw = {"timeout": 10, **self.http_options, **kw}
        return requests.patch(self.url + path, **kw)

    def delete(self, path, **kw):
        kw = {"timeout": 10, **self.http_options, **kw}
        return requests.delete(self.url + path, **kw)


_TRANSPORT = {"name": "rest"}


def pytest_configure(config):
    config.addinivalue_line("markers", "qdrant_client: runs once with qdrant-client over REST and once over gRPC")


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("qdrant_client"):
        metafunc.fixturenames.insert(0, "transport")  # first, so fixtures that make clients see it
        metafunc.parametrize("transport", ["rest", "grpc"], indirect=True)


@pytest.fixture
def transport(request):
    """The protocol `Node.client()` speaks in this test."""
    _TRANSPORT["name"] = request.param
    yield request.param
    _TRANSPORT["name"] = "rest"


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="quiver-it-"))
    yield path
    if not os.environ.get("QUIVER_IT_KEEP"):  # keeps the directories (and node logs) for a post-mortem
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_node(workdir):
    """Factory for nodes in this test's directory; all are killed at the end."""
    nodes: list[Node] = []

    def make(env=None, args=None, start=True, subdir: str | None = None) -> Node:
        directory = workdir / subdir if subdir else workdir
        directory.mkdir(exist_ok=True)
        node = Node(directory, env=env, args=args)
        nodes.append(node)
        return node.start() if start else node

    yield make
    for node in nodes:
        node.kill()


@pytest.fixture
def mount_disk(workdir):
    """Mounts a tmpfs of the given size in MiB and returns its path; unmounted at the end."""
    mounted = []

    def mount(size_mb):
        path = workdir / f"disk{len(mounted)}"
        path.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {result.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def node(make_node) -> Node:
    return make_node()


class OpenAPI:
    """Validates responses against Qdrant's published OpenAPI document."""

    def __init__(self, path: Path):
        self.spec = json.loads(path.read_text())
        # The legacy search/recommend/discover endpoints are only in the v1.18 document.
        legacy = path.with_name(path.name.replace("v1.19", "v1.18"))
        if legacy != path and legacy.exists():
            older = json.loads(legacy.read_text())
            for template, operations in older["paths"].items():
                self.spec["paths"].setdefault(template, operations)
            for name, schema in older["components"]["schemas"].items():
                self.spec["components"]["schemas"].setdefault(name, schema)
        self.routes = []
        for template in self.spec["paths"]:
            pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
            self.routes.append((re.compile(pattern), template))

    def template(self, path: str) -> str:
        path = path.split("?")[0]
        exact = [t for rx, t in self.routes if rx.match(path)]
        # Prefer the most literal template: /collections/aliases over /collections/{collection_name}.
        exact.sort(key=lambda t: t.count("{"))
        assert exact, f"{path} is not in the OpenAPI document"
        return exact[0]

    def validate(self, response: requests.Response):
        method = response.request.method.lower()
        path = requests.utils.urlparse(response.request.url).path
        operation = self.spec["paths"][self.template(path)][method]
        responses = operation["responses"]
        code = str(response.status_code)
        entry = responses.get(code) or responses.get(code[0] + "XX") or responses.get("default")
        assert entry is not None, f"status {code} is not documented for {method.upper()} {path}"
        content = entry.get("content", {})
        if "application/json" in content:
            schema = dict(content["application/json"]["schema"])
            schema["components"] = self.spec["components"]
            OAS30Validator(schema).validate(response.json())
        elif "text/plain" in content:
            assert isinstance(response.text, str)
        return response


@pytest.fixture(scope="session")
def openapi() -> OpenAPI:
    assert OPENAPI.exists(), f"OpenAPI reference not found at {OPENAPI} (set QUIVER_OPENAPI)"
    return OpenAPI(OPENAPI)
