"""The local registry behind moto's ECR: push, DescribeImages with real digests, resolution, login.

A private registry on a free loopback port (its own home) keeps these tests independent of
any registry already running on 4571. The edge app is wrapped with ``EcrMiddleware`` and served
on another free port, as server.py will serve it once wired.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from cheroot import wsgi

from emulator.awsstate.journal import read_journal
from emulator.ecr import IMAGES_PATH, SYNC_PATH, EcrMiddleware, EcrMirror, PushResult, push_image
from emulator.images import ImageResolver, MissingImage, ecr_uri
from emulator.runtime.docker_backend import get_backend
from emulator.registry import LocalRegistry
from tests.conftest import free_port, make_client, unique_name
from tests.integration.sample_images import build_sample_image

pytestmark = pytest.mark.docker
ACCOUNT = "123456789012"
REGION = "us-east-1"


def serve(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port for the duration of a fixture."""
    port = free_port()
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=8)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    registry = LocalRegistry(tmp_path_factory.mktemp("registry-home"), port=free_port())
    registry.ensure_running()
    yield registry
    assert registry.stop()


@pytest.fixture(scope="module")
def mirror(registry: LocalRegistry) -> EcrMirror:
    return EcrMirror(registry, ACCOUNT)


@pytest.fixture(scope="module")
def edge(emulator: Any, mirror: EcrMirror) -> Iterator[str]:
    """The session's edge app behind EcrMiddleware."""
    yield from serve(EcrMiddleware(emulator.app, mirror, REGION))


@pytest.fixture(scope="module")
def pushed(docker_client: docker.DockerClient, registry: LocalRegistry) -> Iterator[PushResult]:
    image = build_sample_image("training", client=docker_client)
    yield push_image(get_backend(), image, f"{unique_name('smemu-test')}/training", "v1", registry)
    untag_registry_images(docker_client, registry)


def untag_registry_images(client: docker.DockerClient, registry: LocalRegistry) -> None:
    """Remove the local tags that pointed into this (temporary) registry."""
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(registry.address + "/"):
                client.images.remove(tag, noprune=True)


def test_push_then_ecr_answers_with_the_real_digest_and_size(pushed: PushResult, registry: LocalRegistry,
                                                             mirror: EcrMirror, endpoint_url: str,
                                                             emulator: Any) -> None:
    manifest = registry.manifest(pushed.repository, "v1")
    assert manifest is not None and manifest.digest == pushed.digest
    detail = mirror.register(pushed.repository, "v1", REGION)
    assert detail["imageDigest"] == pushed.digest
    assert detail["imageUri"] == ecr_uri(ACCOUNT, REGION, pushed.repository, "v1")

    ecr = make_client("ecr", endpoint_url)
    repository = ecr.describe_repositories(repositoryNames=[pushed.repository])["repositories"][0]
    assert repository["repositoryUri"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{pushed.repository}"
    described = ecr.describe_images(repositoryName=pushed.repository)["imageDetails"]
    assert [(d["imageDigest"], d["imageTags"]) for d in described] == [(pushed.digest, ["v1"])]
    layers = json.loads(manifest.body)["layers"]
    assert described[0]["imageSizeInBytes"] == sum(layer["size"] for layer in layers) > 10 * 1024**2
    assert described[0]["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert ecr.list_images(repositoryName=pushed.repository)["imageIds"] == [
        {"imageDigest": pushed.digest, "imageTag": "v1"}]
    got = ecr.batch_get_image(repositoryName=pushed.repository, imageIds=[{"imageTag": "v1"}])["images"]
    assert got[0]["imageManifest"] == manifest.body.decode()
    assert got[0]["imageId"]["imageDigest"] == pushed.digest

    # The AWS state journal keeps the mirrored image, real size included, for the next start.
    # (a compaction may have folded it into a checkpoint since: the history then holds it)
    entries = read_journal(emulator.aws_state.history)[1] + read_journal(emulator.aws_state.path)[1]
    recorded = [e["args"] for e in entries if e.get("name") == "ecr.record_image"
                and e["args"]["repository"] == pushed.repository]
    assert recorded and recorded[-1]["size"] == described[0]["imageSizeInBytes"]
    assert recorded[-1]["digest"] == pushed.digest

    # Re-mirroring is idempotent, and a second tag of the same image joins the same digest.
    mirror.register(pushed.repository, "v1", REGION)
    registry_tag = f"{registry.address}/{pushed.repository}"
    docker.from_env().images.get(pushed.registry_reference).tag(registry_tag, tag="stable")
    docker.from_env().images.push(registry_tag, tag="stable")
    mirror.register(pushed.repository, "stable", REGION)
    described = ecr.describe_images(repositoryName=pushed.repository)["imageDetails"]
    assert [(d["imageDigest"], sorted(d["imageTags"])) for d in described] == [(pushed.digest, ["stable", "v1"])]


def test_ecr_uri_resolves_to_a_runnable_image(pushed: PushResult, registry: LocalRegistry,
                                              docker_client: docker.DockerClient) -> None:
    docker_client.images.remove(pushed.registry_reference)  # so resolution really pulls
    resolver = ImageResolver(get_backend(), registry)
    uri = ecr_uri(ACCOUNT, REGION, pushed.repository, "v1")
    resolved = resolver.resolve(uri)
    assert resolved == pushed.registry_reference
    assert f"{registry.address}/{pushed.repository}@{pushed.digest}" in docker_client.images.get(resolved).attrs[
        "RepoDigests"]
    output = docker_client.containers.run(resolved, ["python3", "-c", "print('ran from ECR')"], remove=True,
                                          labels={"smemu.kind": "test"})
    assert output.strip() == b"ran from ECR"
    by_digest = ecr_uri(ACCOUNT, REGION, pushed.repository, digest=pushed.digest)
    assert resolver.resolve(by_digest) == f"{registry.address}/{pushed.repository}@{pushed.digest}"

    missing_tag = ecr_uri(ACCOUNT, REGION, pushed.repository, "v9")
    with pytest.raises(MissingImage) as raised:
        resolver.resolve(missing_tag)
    assert raised.value.repository_exists
    assert missing_tag in str(raised.value) and f"smemu ecr push LOCAL_IMAGE {pushed.repository}:v9" in str(raised.value)
    assert resolver.find_missing(ecr_uri(ACCOUNT, REGION, unique_name("nowhere"), "1")) is not None


def test_authorization_token_names_the_registry_and_docker_login_works(edge: str, registry: LocalRegistry,
                                                                       tmp_path: Path) -> None:
    ecr = make_client("ecr", edge)
    data = ecr.get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == f"http://{registry.address}"
    assert data["expiresAt"].timestamp() > time.time() + 11 * 3600
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and password

    aws, docker_cli = shutil.which("aws"), shutil.which("docker")
    if not aws or not docker_cli:
        pytest.skip("the aws and docker command-line tools are needed for the login pipeline")
    env = {**os.environ, "AWS_ENDPOINT_URL": edge, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": REGION, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    login = subprocess.run(
        f"{aws} ecr get-login-password | {docker_cli} login --username AWS --password-stdin {registry.address}",
        shell=True, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout
    assert registry.address in (tmp_path / "docker-config" / "config.json").read_text()


def test_mirror_routes_on_the_edge(edge: str, pushed: PushResult) -> None:
    def post(path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(edge + path, data=json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, detail = post(IMAGES_PATH, {"repositoryName": pushed.repository, "imageTag": "v1"})
    assert status == 200 and detail["imageDigest"] == pushed.digest
    status, answer = post(IMAGES_PATH, {"repositoryName": pushed.repository, "imageTag": "nope"})
    assert status == 404 and "has no" in answer["message"]
    status, answer = post(SYNC_PATH, {})
    assert status == 200
    assert {(i["repositoryName"], tuple(sorted(i["imageTags"]))) for i in answer["images"]} >= {
        (pushed.repository, ("stable", "v1"))}


def test_smemu_ecr_push_command(edge: str, registry: LocalRegistry, docker_client: docker.DockerClient,
                                monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from emulator import cli_ecr
    from emulator import registry as registry_module

    port = edge.rsplit(":", 1)[1]
    monkeypatch.setenv("SMEMU_PORT", port)
    monkeypatch.setenv("SMEMU_HOME", str(registry.root.parent))
    monkeypatch.setattr(registry_module, "registry_port", lambda settings: registry.port)  # until Settings has it
    parser = argparse.ArgumentParser(prog="smemu")
    cli_ecr.register(parser.add_subparsers(dest="command", required=True))
    image = build_sample_image("serving", client=docker_client)
    repository = unique_name("smemu-cli")

    args = parser.parse_args(["ecr", "push", image, f"{repository}:v1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    uri = ecr_uri(ACCOUNT, REGION, repository, "v1")
    assert f"use: {uri}" in out
    ecr = make_client("ecr", edge)
    detail = ecr.describe_images(repositoryName=repository)["imageDetails"][0]
    assert detail["imageDigest"] in out and detail["imageTags"] == ["v1"]

    ecr.create_repository(repositoryName=f"{repository}-locked", imageTagMutability="IMMUTABLE")
    args = parser.parse_args(["ecr", "push", "-q", image, f"{repository}-locked:v1"])
    assert args.func(args) == 0 and capsys.readouterr().out.strip() == ecr_uri(ACCOUNT, REGION, f"{repository}-locked",
                                                                                 "v1")
    assert args.func(args) == 1
    assert "cannot be overwritten because the repository is immutable" in capsys.readouterr().err

    args = parser.parse_args(["ecr", "push", "smemu-no-such/image:1"])
    assert args.func(args) == 1
    assert "no local image" in capsys.readouterr().err
