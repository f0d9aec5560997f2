"""Build the reference containers in sample_containers/ once per content, and drive them.

Images are tagged `smemu-sample/<name>:<hash>`, where the hash covers the directory's files
(names, executable bits, bytes) and the base image's id. A test session therefore builds
each image at most once, a second session finds the tag and builds nothing, and any edit to
a sample (or a rebuilt base image) gives a new tag instead of a stale image.

The base image defaults to smemu-base/python:3.11 (scripts/build-base-image), because no
registry is reachable to pull the Dockerfiles' default `python:3.11-slim`; builds use the host
network so a `RUN pip install` in a derived image could reach PyPI through the host's proxy.

The helpers below start labelled containers that are always removed and talk HTTP to ports
published on 127.0.0.1, polling against deadlines instead of sleeping.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "sample_containers"
SAMPLE_NAMES = ("training", "serving", "multi_model", "processing")
DEFAULT_BASE_IMAGE = os.environ.get("SMEMU_BASE_IMAGE", "smemu-base/python:3.11")
LABELS = {"smemu.kind": "sample"}
TEST_LABELS = {"smemu.kind": "test"}
Response = tuple[int, dict[str, str], bytes]
_IGNORED_PARTS = {"__pycache__", ".pytest_cache"}


def content_hash(directory: Path, base_image_id: str) -> str:
    """A short, stable digest of everything `docker build` would see plus the base image.

    The executable bit is included because the images run `train` / `serve` straight from PATH.
    """
    digest = hashlib.sha256(base_image_id.encode())
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or _IGNORED_PARTS & set(path.parts) or path.suffix == ".pyc":
            continue
        executable = "x" if path.stat().st_mode & 0o111 else "-"
        digest.update(f"\0{path.relative_to(directory).as_posix()}\0{executable}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_sample_image(
    name: str,
    base_image: str = DEFAULT_BASE_IMAGE,
    client: docker.DockerClient | None = None,
) -> str:
    """Build sample_containers/<name> unless its content tag exists already; return the tag.

    Raises a RuntimeError naming the fix when the base image is missing: building would
    otherwise make the daemon try to pull it from a registry that cannot be reached.
    """
    context = SAMPLES_DIR / name
    if not (context / "Dockerfile").is_file():
        raise ValueError(f"no sample container {name!r} in {SAMPLES_DIR} (known: {', '.join(SAMPLE_NAMES)})")
    client = client or docker.from_env()
    try:
        base = client.images.get(base_image)
    except docker.errors.ImageNotFound as exc:
        raise RuntimeError(f"base image {base_image} is missing; run scripts/install-docker") from exc
    tag = f"smemu-sample/{name}:{content_hash(context, str(base.id))}"
    return _build_once(client, context, tag, {"BASE_IMAGE": base_image})


def _build_once(client: docker.DockerClient, context: Path, tag: str, buildargs: dict[str, str]) -> str:
    """Build ``context`` as ``tag`` unless that (content-hashed) tag exists already; return the tag."""
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    client.images.build(path=str(context), tag=tag, buildargs=buildargs, network_mode="host", labels=LABELS,
                        pull=False, rm=True, forcerm=True)
    return tag


BROKEN_DIR = SAMPLES_DIR / "broken"
BROKEN_BUILD_ARGS: dict[str, dict[str, str]] = {
    "multi-model.label": {"MULTI_MODELS_LABEL": "false"},
}
"""Build arguments a broken variant needs besides BREAK (a label cannot be unset by ENV)."""


def build_broken_image(sample: str, rule_id: str, client: docker.DockerClient | None = None) -> str:
    """The reference image of ``sample`` made to break exactly ``rule_id`` (sample_containers/broken/).

    One ENV (and maybe LABEL) layer on top of the reference image, tagged by the content hash of
    the broken Dockerfile, the reference image's id and the build arguments: built once.
    """
    client = client or docker.from_env()
    reference = build_sample_image(sample, client=client)
    context = BROKEN_DIR / sample
    args = {"BASE_IMAGE": reference, "BREAK": rule_id, **BROKEN_BUILD_ARGS.get(rule_id, {})}
    base_id = str(client.images.get(reference).id)
    digest = content_hash(context, base_id + json.dumps(args, sort_keys=True))
    tag = f"smemu-sample/broken-{sample.replace('_', '-')}:{rule_id.split('.', 1)[1]}-{digest[:12]}"
    return _build_once(client, context, tag, args)


@contextmanager
def running(client: docker.DockerClient, image: str, command: list[str] | None = None,
            **kwargs: Any) -> Iterator[Container]:
    """A detached container labelled smemu.kind=test (plus any `labels`), removed however the test ends."""
    labels = {**TEST_LABELS, **kwargs.pop("labels", {})}
    container = client.containers.run(image, command, detach=True, labels=labels, **kwargs)
    try:
        yield container
    finally:
        container.remove(force=True)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` until it returns something truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None,
            conn: http.client.HTTPConnection | None = None) -> Response:
    """One HTTP exchange with a container on 127.0.0.1 (optionally on a kept-alive connection)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        if own:
            conn.close()


def ping(port: int) -> int | None:
    """GET /ping's status, or None while nothing listens yet (docker-proxy accepts, then resets)."""
    try:
        return request(port, "GET", "/ping")[0]
    except (ConnectionError, http.client.HTTPException, OSError):
        return None


def wait_healthy(port: int, timeout: float = 30) -> None:
    """Poll /ping until 200, as the platform does before routing traffic to a container."""
    wait_until(lambda: ping(port) == 200, timeout, f"/ping 200 on port {port}")


def published_port(container: Container, port: str = "8080/tcp") -> int:
    """The host port Docker picked for `port` (published as 127.0.0.1::port)."""
    container.reload()
    bindings = container.ports.get(port)
    if not bindings:
        raise AssertionError(f"{port} is not published on container {container.short_id}")
    return int(bindings[0]["HostPort"])


if __name__ == "__main__":
    # `python tests/integration/sample_images.py [name ...]` builds and prints the tags.
    import sys
    import time

    for sample in sys.argv[1:] or SAMPLE_NAMES:
        started = time.perf_counter()
        print(f"{build_sample_image(sample)}  ({time.perf_counter() - started:.2f} s)")
