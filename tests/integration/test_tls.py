"""TLS on every port: HTTPS and gRPC over TLS for clients (optionally mutual), certificates read
again after tls.cert_ttl, and a cluster whose peers speak mutual TLS and carry the API key on the
p2p port. Certificates are made by the tests with the openssl command line, in the test's own
directory.
"""

import ssl
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import requests
from qdrant_client import QdrantClient, models

from conftest import STARTUP_TIMEOUT_S, free_port
from test_cluster import wait_for


class Authority:
    """A certificate authority in `directory`, signing certificates for 127.0.0.1 / localhost."""

    def __init__(self, directory: Path, name: str):
        self.directory = directory
        self.name = name
        directory.mkdir(parents=True, exist_ok=True)
        self.cert = directory / f"{name}-ca.pem"
        self.key = directory / f"{name}-ca.key"
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", f"/CN={name} test CA")
        self.serial = 0

    @staticmethod
    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    def issue(self, common_name: str) -> tuple[Path, Path]:
        """A leaf certificate (server and client use) and its key."""
        self.serial += 1
        stem = self.directory / f"{self.name}-{common_name}-{self.serial}"
        key, csr, cert, ext = (stem.with_suffix(s) for s in (".key", ".csr", ".pem", ".ext"))
        ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                       "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n")
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                     "-out", csr, "-subj", f"/CN={common_name}")
        self.openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-set_serial", 1000 + self.serial,
                     "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key


@pytest.fixture
def ca(workdir):
    return Authority(workdir / "pki", "trusted")


@pytest.fixture
def rogue(workdir):
    return Authority(workdir / "rogue-pki", "rogue")


def tls_env(cert, key, ca=None, **extra):
    env = {"QDRANT__SERVICE__ENABLE_TLS": "true", "QDRANT__TLS__CERT": str(cert), "QDRANT__TLS__KEY": str(key)}
    if ca is not None:
        env["QDRANT__TLS__CA_CERT"] = str(ca.cert)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_https(node, ca, client_cert=None):
    """Starts `node`, reached over HTTPS by the helpers, once /readyz answers there."""
    node.url = f"https://127.0.0.1:{node.port}"
    node.http_options = {"verify": str(ca.cert), "cert": client_cert}
    return node.start()


def served_certificate(port) -> str:
    """The PEM certificate a fresh handshake on `port` presents."""
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=5)


def same_certificate(pem_a: str, pem_b: str) -> bool:
    return ssl.PEM_cert_to_DER_cert(pem_a) == ssl.PEM_cert_to_DER_cert(pem_b)


def test_qdrant_client_over_https_and_grpc_tls_with_an_api_key(make_node, ca):
    cert, key = ca.issue("node")
    node = make_node(env=tls_env(cert, key, QDRANT__SERVICE__API_KEY="secret"), start=False)
    start_https(node, ca)
    assert "REST API listening on https://" in node.log()

    rest = QdrantClient(url=node.url, api_key="secret", verify=str(ca.cert), timeout=10, check_compatibility=False)
    rest.create_collection("c", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    rest.upsert("c", [models.PointStruct(id=i, vector=[float(i), 1, 0, 0]) for i in range(10)], wait=True)

    over_grpc = QdrantClient(host="127.0.0.1", port=node.port, grpc_port=node.grpc_port, prefer_grpc=True, https=True,
                             api_key="secret", grpc_options={"root_certificates": ca.cert.read_bytes()},
                             timeout=10, check_compatibility=False)
    hits = over_grpc.query_points("c", query=[1, 0, 0, 0], limit=3).points
    assert [h.id for h in hits] == [9, 8, 7]
    assert over_grpc.count("c").count == 10

    # Plain HTTP and plaintext gRPC on the TLS ports get no answer.
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{node.port}/collections", headers={"api-key": "secret"}, timeout=5)
    plain = QdrantClient(host="127.0.0.1", grpc_port=node.grpc_port, prefer_grpc=True, https=False, api_key="secret",
                         timeout=5, check_compatibility=False)
    with pytest.raises(Exception):
        plain.get_collections()
    # A client that does not trust the CA refuses the server.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(node.url + "/collections", headers={"api-key": "secret"}, timeout=5)
    # TLS does not replace the key.
    assert requests.get(node.url + "/collections", verify=str(ca.cert), timeout=5).status_code == 401


def test_client_certificates_are_required_when_verification_is_on(make_node, ca, rogue):
    cert, key = ca.issue("node")
    client = ca.issue("client")
    stranger = rogue.issue("client")
    node = make_node(env=tls_env(cert, key, ca, QDRANT__SERVICE__VERIFY_HTTPS_CLIENT_CERTIFICATE="true"), start=False)
    start_https(node, ca, client_cert=tuple(map(str, client)))

    assert requests.get(node.url + "/collections", verify=str(ca.cert), cert=tuple(map(str, client)), timeout=5).status_code == 200
    for wrong in (None, tuple(map(str, stranger))):
        with pytest.raises(requests.RequestException):
            requests.get(node.url + "/collections", verify=str(ca.cert), cert=wrong, timeout=5)

    def grpc_client(pair):
        options = {"root_certificates": ca.cert.read_bytes()}
        if pair:
            options.update(certificate_chain=pair[0].read_bytes(), private_key=pair[1].read_bytes())
        return QdrantClient(host="127.0.0.1", grpc_port=node.grpc_port, prefer_grpc=True, https=True,
                            grpc_options=options, timeout=5, check_compatibility=False)

    grpc_client(client).create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    assert [c.name for c in grpc_client(client).get_collections().collections] == ["c"]
    for wrong in (None, stranger):
        with pytest.raises(Exception):
            grpc_client(wrong).get_collections()


def test_certificates_are_read_again_after_cert_ttl(make_node, ca, workdir):
    first, key1 = ca.issue("first")
    second, key2 = ca.issue("second")
    live_cert, live_key = workdir / "live.pem", workdir / "live.key"
    live_cert.write_bytes(first.read_bytes())
    live_key.write_bytes(key1.read_bytes())
    node = make_node(env=tls_env(live_cert, live_key, QDRANT__TLS__CERT_TTL="1"), start=False)
    start_https(node, ca)
    for port in (node.port, node.grpc_port):
        assert same_certificate(served_certificate(port), first.read_text())

    live_key.write_bytes(key2.read_bytes())
    live_cert.write_bytes(second.read_bytes())
    for port in (node.port, node.grpc_port):
        wait_for(lambda: same_certificate(served_certificate(port), second.read_text()), timeout=10,
                 message=f"port {port} serving the renewed certificate")

    # A file that cannot be read keeps the certificate in use.
    live_cert.write_text("not a certificate")
    time.sleep(1.5)
    for port in (node.port, node.grpc_port):
        assert same_certificate(served_certificate(port), second.read_text())
    assert node.get("/readyz").status_code == 200
    assert "Could not read the TLS certificate again" in node.log()


def test_unusable_tls_settings_stop_the_node_at_start_up(make_node, ca, workdir):
    cert, key = ca.issue("node")
    _, other_key = ca.issue("other")
    cases = [
        (tls_env(workdir / "missing.pem", key), "tls.cert: cannot read"),
        (tls_env(cert, other_key), "is not the private key of the certificate"),
        ({"QDRANT__SERVICE__ENABLE_TLS": "true", "QDRANT__TLS__CERT": "", "QDRANT__TLS__KEY": str(key)}, "tls.cert"),
        (tls_env(cert, key, QDRANT__SERVICE__VERIFY_HTTPS_CLIENT_CERTIFICATE="true"), "tls.ca_cert must name"),
        ({"QDRANT__SERVICE__ENFORCE_INTERNAL_AUTH": "true"}, "service.enforce_internal_auth"),
    ]
    for index, (env, message) in enumerate(cases):
        node = make_node(env=env, start=False, subdir=f"case{index}")
        node.spawn()
        assert node.proc.wait(timeout=STARTUP_TIMEOUT_S) != 0, env
        assert message in node.log(), node.log()


class SecureCluster:
    """Peers with p2p TLS, internal auth and HTTPS, on loopback."""

    def __init__(self, make_node, ca, key="cluster-secret"):
        self.make_node = make_node
        self.ca = ca
        self.key = key
        self.peers = []

    def add(self, bootstrap=None, authority=None, key=None, start=True):
        cert, private = (authority or self.ca).issue(f"peer{len(self.peers) + 1}")
        p2p = free_port()
        uri = f"https://127.0.0.1:{p2p}"
        args = ["--uri", uri] + (["--bootstrap", bootstrap.p2p_uri] if bootstrap else [])
        env = tls_env(cert, private, authority or self.ca, QDRANT__CLUSTER__ENABLED="true", QDRANT__CLUSTER__P2P__PORT=p2p,
                      QDRANT__CLUSTER__P2P__ENABLE_TLS="true", QDRANT__SERVICE__ENFORCE_INTERNAL_AUTH="true",
                      QDRANT__SERVICE__API_KEY=key or self.key, QDRANT__CLUSTER__REBALANCE="false",
                      QDRANT__LOG_LEVEL="debug")
        # The CA of the cluster, even for a peer whose own certificate another CA signed.
        env["QDRANT__TLS__CA_CERT"] = str(self.ca.cert)
        node = self.make_node(env=env, args=args, start=False, subdir=f"peer{len(self.peers) + 1}")
        node.p2p_uri, node.p2p_port, node.tls_pair = uri, p2p, (cert, private)
        self.peers.append(node)
        if start:
            start_https(node, self.ca)
        return node

    def get(self, node, path):
        return node.get(path, headers={"api-key": self.key})

    def put(self, node, path, body):
        return node.put(path, json=body, headers={"api-key": self.key})


def p2p_call(node, ca, pair, metadata):
    """One call on the p2p port (the status call), over mutual TLS with `pair`."""
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert.read_bytes(), private_key=pair[1].read_bytes(),
                                               certificate_chain=pair[0].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{node.p2p_port}", credentials) as channel:
        return channel.unary_unary("/quiver.p2p.Peer/Status", request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)(b"{}", metadata=metadata, timeout=5)


def test_three_peers_with_p2p_tls_and_internal_auth(make_node, ca, rogue):
    cluster = SecureCluster(make_node, ca)
    first = cluster.add()
    others = [cluster.add(bootstrap=first) for _ in range(2)]
    peers = [first, *others]

    def converged():
        infos = [cluster.get(p, "/cluster").json()["result"] for p in peers]
        return all(len(i["peers"]) == 3 and i["raft_info"]["leader"] is not None for i in infos) and infos
    infos = wait_for(converged, timeout=30, message="three peers in one cluster")
    assert all(peer["uri"].startswith("https://") for peer in infos[0]["peers"].values())

    body = {"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 3, "replication_factor": 3}
    assert cluster.put(first, "/collections/c", body).status_code == 200
    points = [{"id": i, "vector": [float(i), 1, 0, 0], "payload": {"i": i}} for i in range(30)]
    assert cluster.put(others[0], "/collections/c/points?wait=true", {"points": points}).status_code == 200
    for peer in peers:
        wait_for(lambda: cluster.get(peer, "/collections/c").json()["result"]["points_count"] == 30, timeout=20,
                 message="every replica has the points")
        client = QdrantClient(url=peer.url, api_key=cluster.key, verify=str(ca.cert), timeout=10, check_compatibility=False)
        assert client.count("c", exact=True).count == 30

    # A caller on the p2p port with the cluster's certificate but without the key, or a wrong one,
    # is refused; with the key it is answered.
    pair = ca.issue("intruder")
    for metadata, message in (((), "Must provide an API key"), ((("api-key", "guess"),), "Invalid API key")):
        with pytest.raises(grpc.RpcError) as refused:
            p2p_call(first, ca, pair, metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED and message in refused.value.details()
    assert p2p_call(first, ca, pair, (("api-key", cluster.key),))
    # A certificate from another CA does not get through the handshake, key or not.
    with pytest.raises(grpc.RpcError) as refused:
        p2p_call(first, ca, rogue.issue("intruder"), (("api-key", cluster.key),))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

    # A peer with the right certificate but another key is refused and stops with the reason.
    wrong_key = cluster.add(bootstrap=first, key="not-the-secret", start=False)
    wrong_key.spawn()
    assert wrong_key.proc.wait(timeout=60) != 0
    assert "Invalid API key" in wrong_key.log()
    # A peer whose certificate another CA signed never gets in.
    stranger = cluster.add(bootstrap=first, authority=rogue, start=False)
    stranger.spawn()
    time.sleep(5)
    assert len(cluster.get(first, "/cluster").json()["result"]["peers"]) == 3
    assert "Joined the cluster" not in stranger.log()
    stranger.kill()

    # The cluster still works after the refusals.
    assert cluster.put(others[1], "/collections/c/points?wait=true", {"points": [{"id": 99, "vector": [1, 1, 1, 1]}]}).status_code == 200
    for peer in peers:
        wait_for(lambda: cluster.get(peer, "/collections/c").json()["result"]["points_count"] == 31, timeout=20,
                 message="the new point on every replica")
    # The peers log at debug level, configurations included, and never the key.
    assert all(cluster.key not in peer.log() for peer in peers)
