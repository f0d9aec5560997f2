"""ECR in front of a real registry: pushes go to the local registry, moto's ECR mirrors them.

moto's ECR answers the API (repositories, DescribeImages, ...) but its URIs and tokens are
fake: nothing can ``docker push`` to them (research/env-feasibility.md §4). So:

* :func:`push_image` tags a local image ``127.0.0.1:<port>/<repo>:<tag>`` and pushes it into
  the emulator's registry through this machine's engine (``LocalEngine.push_image``;
  ``smemu ecr push`` and tests use it);
* :class:`EcrMirror` (inside the emulator process, where moto lives) reads the pushed manifest
  back from the registry and records it in moto's ECR backend with the **real** manifest, digest
  and compressed size, creating the repository when needed. ``DescribeImages``,
  ``BatchGetImage`` and ``ListImages`` then answer what the registry holds;
* :class:`EcrMiddleware` mounts that on the edge port (``POST /_smemu/ecr/images``,
  ``POST /_smemu/ecr/sync``) and makes ``GetAuthorizationToken`` name the local registry as
  ``proxyEndpoint`` (valid for 12 hours, as on AWS), starting the registry if needed.

``docker login`` against the local registry, exactly as users type it for ECR::

    aws ecr get-login-password | docker login --username AWS --password-stdin 127.0.0.1:4571

The registry runs without authentication on loopback, so any password is accepted; the
command works so that scripts written for ECR keep working. ``docker push`` to the real
``<account>.dkr.ecr.<region>.amazonaws.com`` host cannot be intercepted (DNS and TLS);
use ``smemu ecr push LOCAL_IMAGE REPO:TAG``, or tag ``127.0.0.1:4571/REPO:TAG`` and push, then
``smemu ecr sync``.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from emulator.images import ecr_uri
from emulator.registry import LocalRegistry, Manifest, RegistryUnavailable
from emulator.runtime.spec import EngineUnavailable, ImageNotFound, LocalEngine, RuntimeError_

log = logging.getLogger(__name__)

IMAGES_PATH = "/_smemu/ecr/images"
"""POST ``{"repositoryName", "imageTag", "region"?}``: mirror one pushed image into moto's ECR."""
SYNC_PATH = "/_smemu/ecr/sync"
"""POST ``{"region"?}``: mirror every repository and tag of the registry into moto's ECR."""
TOKEN_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
TOKEN_LIFETIME_SECONDS = 12 * 3600
"""ECR authorization tokens are valid for 12 hours."""


class PushFailed(Exception):
    """``docker push`` to the local registry failed; the message is Docker's."""


@dataclass(frozen=True)
class PushResult:
    """What a push produced."""

    repository: str
    tag: str
    digest: str
    """The manifest digest the registry reports (ECR's imageDigest)."""
    registry_reference: str
    """``127.0.0.1:<port>/<repo>:<tag>``, runnable and pullable on this machine."""


def push_image(engine: LocalEngine, local_image: str, repository: str, tag: str, registry: LocalRegistry,
               progress: Callable[[str], None] | None = None) -> PushResult:
    """Tag ``local_image`` into the local registry and push it; returns the pushed digest.

    ``engine`` is this machine's engine (the runtime seam). The registry is started if it is
    not running. Raises :class:`PushFailed` with the engine's message, or
    :class:`~emulator.runtime.spec.ImageNotFound` when the local image does not exist.
    """
    address = registry.ensure_running()
    target = f"{address}/{repository}"
    try:
        digest = engine.push_image(local_image, target, tag, progress)
    except (ImageNotFound, EngineUnavailable):
        raise
    except RuntimeError_ as exc:
        raise PushFailed(str(exc)) from exc
    if not digest:
        manifest = registry.manifest(repository, tag)
        if manifest is None:
            raise PushFailed(f"the registry does not show {repository}:{tag} after the push")
        digest = manifest.digest
    return PushResult(repository, tag, digest, f"{target}:{tag}")


def _ecr_backend(account_id: str, region: str) -> Any:
    from moto.ecr.models import ecr_backends

    return ecr_backends[account_id][region]


@functools.cache
def _registry_image_class() -> type:
    """moto's ``Image`` with the registry's compressed size instead of moto's estimate.

    moto reports the *config* blob's size (a few KB) as imageSizeInBytes; ECR reports the
    compressed layers. Built on first use so that importing this module (the CLI does) does not
    import moto.
    """
    from moto.ecr.models import Image

    class RegistryImage(Image):  # type: ignore[misc, valid-type]
        """An ECR image whose size is what the registry stores."""

        size_bytes: int = 0

        def get_image_size_in_bytes(self) -> int | None:
            return self.size_bytes

    return RegistryImage


class EcrMirror:
    """Records images of the local registry in moto's ECR (runs in the emulator's process)."""

    def __init__(self, registry: LocalRegistry, account_id: str) -> None:
        self.registry = registry
        self.account_id = account_id

    def register(self, repository: str, tag: str, region: str) -> dict[str, Any]:
        """Mirror ``repository:tag`` from the registry; returns its ECR imageDetail.

        Raises ``LookupError`` when the registry does not have it.
        """
        self.registry.ensure_running()
        manifest = self.registry.manifest(repository, tag)
        if manifest is None:
            raise LookupError(f"the image registry {self.registry.address} has no {repository}:{tag}")
        return self._record(manifest, tag, region)

    def sync(self, region: str) -> list[dict[str, Any]]:
        """Mirror every tag of every repository in the registry; returns the imageDetails."""
        details = []
        self.registry.ensure_running()
        for repository in self.registry.repositories():
            for tag in self.registry.tags(repository):
                try:
                    details.append(self.register(repository, tag, region))
                except LookupError:  # deleted between listing and reading
                    continue
        return details

    def _record(self, manifest: Manifest, tag: str, region: str) -> dict[str, Any]:
        """Write the image into moto's ECR, journaled (emulator/awsstate) so it survives a restart."""
        from emulator.awsstate import direct_write

        return direct_write("ecr.record_image", {  # type: ignore[no-any-return]
            "account_id": self.account_id, "region": region, "repository": manifest.repository, "tag": tag,
            "digest": manifest.digest, "media_type": manifest.media_type, "manifest": manifest.body.decode(),
            "size": manifest.size})


def apply_registry_image(account_id: str, region: str, repository: str, tag: str, digest: str, media_type: str,
                         manifest: str, size: int) -> dict[str, Any]:
    """The write itself (also what a replay of the journal calls); returns the imageDetail."""
    backend = _ecr_backend(account_id, region)
    if repository not in backend.repositories:
        backend.create_repository(
            repository_name=repository, registry_id=None, encryption_config=None,
            image_scan_config=None, image_tag_mutability="MUTABLE", tags=[],
        )
    found = backend.repositories[repository]
    image_class = _registry_image_class()
    for image in list(found.images):
        if image.get_image_digest() == digest:
            image.__class__ = image_class
            image.size_bytes = size
            if tag not in image.image_tags:
                backend.batch_delete_image(repository_name=repository, image_ids=[{"imageTag": tag}])
                image.update_tag(tag)
            return _detail(image, found, region)
    image = backend.put_image(repository, manifest, tag, media_type, digest)
    image.__class__ = image_class  # same attributes; only the size accessor differs
    image.size_bytes = size
    return _detail(image, found, region)


def _detail(image: Any, repository: Any, region: str) -> dict[str, Any]:
    """An ECR imageDetail-like summary (also what ``smemu ecr push`` prints)."""
    return {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "imageDigest": image.get_image_digest(),
        "imageTags": list(image.image_tags),
        "imageSizeInBytes": image.get_image_size_in_bytes(),
        "imageManifestMediaType": image.image_manifest_media_type,
        "imageUri": ecr_uri(repository.registry_id, region, repository.name, tag=image.image_tags[-1]
                            if image.image_tags else None, digest=None if image.image_tags else image.get_image_digest()),
    }


class EcrMiddleware:
    """WSGI middleware in front of the edge application for the ECR pieces moto cannot do.

    Mount it around the edge app (``server.py``: ``EcrMiddleware(app, mirror, settings.region)``).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], mirror: EcrMirror, default_region: str) -> None:
        self.app = app
        self.mirror = mirror
        self.default_region = default_region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in (IMAGES_PATH, SYNC_PATH) and environ.get("REQUEST_METHOD") == "POST":
            return self._own_route(path, environ, start_response)
        if environ.get("HTTP_X_AMZ_TARGET") == TOKEN_TARGET:
            return self._authorization_token(environ, start_response)
        return self.app(environ, start_response)

    def _own_route(self, path: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            region = str(body.get("region") or self.default_region)
            if path == IMAGES_PATH:
                answer: Any = self.mirror.register(str(body["repositoryName"]), str(body.get("imageTag") or "latest"),
                                                   region)
            else:
                answer = {"images": self.mirror.sync(region)}
            return _json(start_response, "200 OK", answer)
        except LookupError as exc:
            return _json(start_response, "404 Not Found", {"message": str(exc)})
        except RegistryUnavailable as exc:
            return _json(start_response, "503 Service Unavailable", {"message": str(exc)})
        except (ValueError, TypeError) as exc:
            return _json(start_response, "400 Bad Request", {"message": f"bad request: {exc}"})
        except Exception as exc:  # moto refusing the image (immutable tag, ...) must still answer
            log.exception("mirroring into ECR failed")
            return _json(start_response, "409 Conflict", {"message": f"{type(exc).__name__}: {exc}"})

    def _authorization_token(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """moto's answer with ``proxyEndpoint`` naming the local registry and a live expiry."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured.update(status=status, headers=headers)

        chunks = self.app(environ, capture)
        try:
            payload = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        status = captured.get("status", "500 Internal Server Error")
        if status.startswith("200"):
            try:
                self.mirror.registry.ensure_running()  # so `docker login` right after works
            except RegistryUnavailable as exc:
                log.warning("GetAuthorizationToken: %s", exc)
            document = json.loads(payload)
            for item in document.get("authorizationData", []):
                item["proxyEndpoint"] = self.mirror.registry.url
                item["expiresAt"] = time.time() + TOKEN_LIFETIME_SECONDS
                user, _, password = base64.b64decode(item["authorizationToken"]).decode().partition(":")
                item["authorizationToken"] = base64.b64encode(f"{user or 'AWS'}:{password}".encode()).decode()
            payload = json.dumps(document).encode()
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(payload))))
        start_response(status, headers)
        return [payload]


def _json(start_response: Callable[..., Any], status: str, body: Any) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]
