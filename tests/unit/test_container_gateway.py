"""The container gateway's checks as a WSGI app (emulator/container_gateway.py), without Docker.

Requests are signed by botocore itself and handed to ``GatewayAuth`` as a WSGI server would;
moto's in-process backends hold the roles (``mock_aws``).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws

from emulator.container_gateway import GatewayAuth
from emulator.credential_store import CredentialStore, Issued
from emulator.credentials import CredentialBroker
from tests.signed_wsgi import environ_of

ACCOUNT = "123456789012"
URL = "http://169.254.170.2:4570"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
CONTAINER = "169.254.170.7"


@pytest.fixture()
def iam_client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


@pytest.fixture()
def broker(tmp_path: Path, iam_client: Any) -> CredentialBroker:
    return CredentialBroker(tmp_path / "state" / "container-credentials.key", ACCOUNT, "us-east-1")


def _role(iam_client: Any, name: str = "Job") -> str:
    return str(iam_client.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"])


class Recorder:
    """The edge app behind the gateway: records what reached it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.seen.append({"path": environ["PATH_INFO"], "body": environ["wsgi.input"].read(),
                          "role": environ.get("smemu.caller_role")})
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]


def _environ(request: AWSRequest, peer: str = CONTAINER) -> dict[str, Any]:
    return environ_of(request, peer)


def _call(gateway: GatewayAuth, environ: dict[str, Any]) -> tuple[int, bytes]:
    captured: dict[str, Any] = {}
    body = b"".join(gateway(environ, lambda status, headers, exc=None: captured.update(status=status)))
    return int(captured["status"].split()[0]), body


def _signed(credentials: Credentials, service: str = "sagemaker", data: bytes = b"{}", path: str = "/") -> AWSRequest:
    request = AWSRequest("POST", URL + path, data=data,
                         headers={"X-Amz-Target": "SageMaker.ListTrainingJobs",
                                  "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(credentials, service, "us-east-1").add_auth(request)
    return request


def test_only_calls_signed_with_issued_credentials_reach_the_edge(broker: CredentialBroker, iam_client: Any) -> None:
    app = Recorder()
    gateway = GatewayAuth(app, broker)
    role = _role(iam_client)
    issued = broker.credentials(broker.issue(role))
    good = Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["Token"])

    assert _call(gateway, _environ(_signed(good))) == (200, b"ok")
    assert app.seen[-1] == {"path": "/", "body": b"{}", "role": role}  # the body is put back

    cases = {
        "unsigned": (AWSRequest("POST", URL + "/", data=b"{}", headers={"X-Amz-Target": "SageMaker.X"}),
                     "MissingAuthenticationTokenException"),
        "made-up": (_signed(Credentials("AKIAMADEUP", "secret")), "UnrecognizedClientException"),
        "wrong secret": (_signed(Credentials(good.access_key, "wrong", good.token)), "InvalidSignatureException"),
        "no token": (_signed(Credentials(good.access_key, good.secret_key)), "UnrecognizedClientException"),
    }
    for label, (request, code) in cases.items():
        status, body = _call(gateway, _environ(request))
        assert (status, json.loads(body)["__type"]) == (403, code), label
    tampered = _environ(_signed(good))
    tampered["wsgi.input"], tampered["CONTENT_LENGTH"] = io.BytesIO(b'{"x":1}'), "7"
    assert json.loads(_call(gateway, tampered)[1])["__type"] == "InvalidSignatureException"
    assert len(app.seen) == 1


@pytest.mark.parametrize("peer", ["169.254.170.2", "172.17.0.5", "10.251.1.2", "not-an-address", ""])
def test_peers_outside_the_emulators_networks_are_refused(broker: CredentialBroker, peer: str) -> None:
    app = Recorder()
    gateway = GatewayAuth(app, broker, subnets=lambda: ("169.254.170.0/24", "172.30.0.0/16"))
    status, body = _call(gateway, _environ(AWSRequest("GET", URL + "/_smemu/credentials"), peer))
    assert status == 403 and b"answers only containers" in body and not app.seen
    assert gateway.peer_allowed("172.30.4.5") and gateway.peer_allowed("::ffff:169.254.170.9")


def test_s3_presigned_and_header_signed_with_unnormalised_keys(broker: CredentialBroker, iam_client: Any) -> None:
    app = Recorder()
    gateway = GatewayAuth(app, broker)
    issued = broker.credentials(broker.issue(_role(iam_client)))
    good = Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["Token"])
    put = AWSRequest("PUT", URL + "/bucket/a//b/../c%20d.txt", data=b"object")
    S3SigV4Auth(good, "s3", "us-east-1").add_auth(put)
    assert _call(gateway, _environ(put))[0] == 200
    get = AWSRequest("GET", URL + "/bucket/key.txt")
    S3SigV4QueryAuth(good, "s3", "us-east-1", expires=60).add_auth(get)
    assert _call(gateway, _environ(get))[0] == 200
    wrong = AWSRequest("GET", URL + "/bucket/key.txt")
    S3SigV4QueryAuth(Credentials(good.access_key, "nope", good.token), "s3", "us-east-1", expires=60).add_auth(wrong)
    status, body = _call(gateway, _environ(wrong))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body


def test_issued_credentials_survive_a_restart_and_expire(tmp_path: Path, broker: CredentialBroker,
                                                         iam_client: Any) -> None:
    role = _role(iam_client)
    token = broker.issue(role)
    first = broker.credentials(token)
    again = CredentialBroker(tmp_path / "state" / "container-credentials.key", ACCOUNT, "us-east-1")
    assert again.credentials(token) == first  # same set while far from expiry
    found = again.lookup(first["AccessKeyId"])
    assert found is not None and (found.secret_access_key, found.role_arn) == (first["SecretAccessKey"], role)
    assert again.restore_identities() == 0  # moto's STS still knows it

    store = CredentialStore(tmp_path / "other.db")
    now = time.time()
    store.add(Issued("ASIAEXPIRED000000000", "s", "t", role, "SageMaker", ACCOUNT, "tok", now - 7200, now - 10))
    gateway = GatewayAuth(Recorder(), CredentialBroker(tmp_path / "state" / "k2", ACCOUNT, "us-east-1", store))
    status, body = _call(gateway, _environ(_signed(Credentials("ASIAEXPIRED000000000", "s", "t"))))
    assert status == 403 and json.loads(body)["__type"] == "ExpiredTokenException"


def test_kubernetes_pods_are_admitted_by_their_pod_network_or_their_own_addresses(monkeypatch: Any) -> None:
    from types import SimpleNamespace

    from emulator.runtime import kubernetes_backend
    from emulator.runtime.kubernetes_backend import KubernetesBackend

    # A frozen clock: the half-second cache must not expire between two calls on a loaded machine.
    monkeypatch.setattr(kubernetes_backend.time, "monotonic", lambda: 1000.0)

    listed: list[str] = []

    class Core:
        def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
            listed.append(label_selector)
            return SimpleNamespace(items=[SimpleNamespace(status=SimpleNamespace(pod_ip="10.88.0.7")),
                                          SimpleNamespace(status=SimpleNamespace(pod_ip=None))])

    backend = KubernetesBackend.__new__(KubernetesBackend)
    backend.core, backend.namespace, backend._pod_addresses = Core(), "smemu", {}
    backend._nodes = [SimpleNamespace(spec=SimpleNamespace(pod_cidrs=None, pod_cidr=None))]
    assert backend.container_subnets("abc") == ["10.88.0.7/32"]
    assert backend.container_subnets("abc") == ["10.88.0.7/32"] and len(listed) == 1  # looked up once
    assert "abc" in listed[0]
    backend._nodes = [SimpleNamespace(spec=SimpleNamespace(pod_cidrs=["10.88.0.0/16"], pod_cidr="10.88.0.0/16"))]
    assert backend.container_subnets("abc") == ["10.88.0.0/16"]
