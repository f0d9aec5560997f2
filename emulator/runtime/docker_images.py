"""This machine's images and registry pushes on Docker: the image half of ``LocalEngine``.

The user's images are the engine's; ``emulator.images`` asks here whether one exists and pulls
an ECR image from the emulator's registry (the only registry reachable), and ``emulator.ecr``
pushes into that registry. Nothing here pulls from the internet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker.errors

from emulator.runtime.docker_translate import translated as _translated
from emulator.runtime.spec import ContainerNotFound, ImageNotFound, RuntimeError_


class DockerImages:
    """Image methods of :class:`~emulator.runtime.docker_backend.DockerBackend` (over its ``client``)."""

    client: Any

    def image_id(self, image: str) -> str | None:
        """The local image's id; None when there is none or the name is malformed (never pulls)."""
        try:
            with _translated(f"looking up image {image}"):
                return str(self.client.api.inspect_image(image)["Id"])
        except (ImageNotFound, ContainerNotFound):
            return None
        except RuntimeError_ as exc:
            cause = exc.__cause__
            if isinstance(cause, docker.errors.APIError) and cause.status_code in (400, 404):
                return None  # a malformed name is simply not a local image
            raise

    def pull_image(self, reference: str) -> None:
        """Pull ``reference`` (from the emulator's registry on this machine: nothing else is reachable)."""
        name, at, digest = reference.partition("@")
        repository, tag = (name, digest) if at else _split_tag(name)
        with _translated(f"pulling {reference}"):
            for event in self.client.api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in event or "errorDetail" in event:
                    message = event.get("error") or (event.get("errorDetail") or {}).get("message")
                    raise RuntimeError_(f"pulling {reference} failed: {message}")

    def push_image(self, local_image: str, target: str, tag: str,
                   progress: Callable[[str], None] | None = None) -> str:
        """Tag ``local_image`` as ``target:tag`` and push it; the digest the registry reports ("" if none)."""
        with _translated(f"tagging {local_image} as {target}:{tag}"):
            self.client.api.tag(local_image, target, tag=tag)
        digest = ""
        with _translated(f"pushing {target}:{tag}"):
            for event in self.client.api.push(target, tag=tag, stream=True, decode=True):
                if "error" in event or "errorDetail" in event:
                    message = event.get("error") or (event.get("errorDetail") or {}).get("message")
                    raise RuntimeError_(f"pushing {local_image} to {target}:{tag} failed: {message}")
                digest = (event.get("aux") or {}).get("Digest", digest)
                if progress is not None and event.get("status") and not event.get("progressDetail"):
                    progress(f"{event.get('id', '')} {event['status']}".strip())
        return str(digest or "")

    def login(self, registry: str, username: str, password: str) -> str:
        """``docker login`` through the API (the CLI is preferred where installed: it stores the credentials)."""
        with _translated(f"logging in to {registry}"):
            return str(self.client.login(username=username, password=password, registry=registry).get("Status", "ok"))

    def engine_version(self) -> str:
        """``Docker <version> API <api version>``."""
        with _translated("asking the Docker engine its version"):
            version = self.client.version()
        return f"Docker {version.get('Version')} API {version.get('ApiVersion')}"


def _split_tag(name: str) -> tuple[str, str]:
    """``(repository, tag)`` of ``host:port/repo:tag`` (``latest`` when it names none)."""
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        return name, "latest"
    return repository, tag
