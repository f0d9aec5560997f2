"""How an image the user has on this machine reaches a Kubernetes cluster (SMEMU_KUBE_IMAGES).

First the platform's image policy runs exactly as on Docker (``emulator.images``): a local
image of that name, else an ECR URI served by the emulator's registry, else
:class:`~emulator.images.MissingImage` naming the image. Then the image goes where the cluster
finds it:

* ``containerd:SOCKET`` (the local cluster of scripts/kube): ``docker save`` piped into that
  containerd's ``ctr images import``, once per image id (the id is kept as a label on the
  containerd image, so an unchanged image is not sent again); pods use it with
  ``imagePullPolicy: Never``, so the cluster never tries a registry.
* ``registry:HOST:PORT``: tagged and pushed there, run by digest (a registry the cluster's
  nodes can pull from: the emulator's own when the nodes reach this machine, or the user's).
* ``cluster``: used as named; the cluster pulls it (an image in a registry it can reach). A
  name the cluster cannot pull fails the pod with ErrImagePull, which the backend reports as
  :class:`~emulator.runtime.spec.ImageNotFound` naming the image.

``auto`` is ``containerd:`` for the kubeconfig that scripts/kube writes, else ``cluster``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.runtime.spec import EngineUnavailable, ImageNotFound, RuntimeError_

log = logging.getLogger(__name__)

LOCAL_CLUSTER = "smemu-kube"
"""The cluster (and context) name in scripts/kube's kubeconfig."""
LOCAL_CONTAINERD = "/run/smemu-kube/containerd.sock"
ID_LABEL = "smemu.docker-id"


@dataclass(frozen=True)
class Delivered:
    """An image as pods name it, and the pull policy that goes with it."""

    reference: str
    pull_policy: str


def choose_mode(setting: str, cluster_name: str | None) -> str:
    """The effective SMEMU_KUBE_IMAGES for ``auto``: the local cluster's containerd, else ``cluster``."""
    if setting != "auto":
        return setting
    if cluster_name == LOCAL_CLUSTER and Path(LOCAL_CONTAINERD).exists():
        return f"containerd:{LOCAL_CONTAINERD}"
    return "cluster"


def containerd_name(reference: str) -> str:
    """The name containerd (and the kubelet) give an image reference: ``docker.io/library/x:latest``."""
    name, at, digest = reference.partition("@")
    first, slash, _rest = name.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if slash else f"docker.io/library/{name}"
    last = name.rsplit("/", 1)[-1]
    if not at and ":" not in last:
        name += ":latest"
    return f"{name}@{digest}" if at else name


class ImageDelivery:
    """Brings images to the cluster according to the mode (see the module docstring)."""

    def __init__(self, mode: str, settings: Any) -> None:
        self.mode = mode
        self.settings = settings
        self._loaded: dict[str, str] = {}
        """containerd name -> Docker image id already there (this process's cache)."""
        self._lock = threading.Lock()

    @property
    def pull_policy(self) -> str:
        """``Never`` where images are loaded into the nodes' runtime, else ``IfNotPresent``."""
        return "Never" if self.mode.startswith("containerd:") else "IfNotPresent"

    def deliver(self, image: str) -> Delivered:
        """The reference pods run for ``image``; raises ImageNotFound (MissingImage) naming it."""
        if self.mode == "cluster":
            return Delivered(image, "IfNotPresent")
        local = self._resolve(image)
        if self.mode.startswith("containerd:"):
            self._load(local, self.mode.removeprefix("containerd:"))
            return Delivered(local, "Never")
        return Delivered(self._push(local, self.mode.removeprefix("registry:")), "IfNotPresent")

    def deliver_helper(self, image: str) -> Delivered:
        """The helper image: loaded from this machine when it has it, else as the cluster has it."""
        if self.mode.startswith("containerd:"):
            socket = self.mode.removeprefix("containerd:")
            if self._containerd_has(socket, containerd_name(image)):
                return Delivered(image, "Never")
            try:
                return self.deliver(image)
            except ImageNotFound as exc:
                raise RuntimeError_(f"the helper image {image} (SMEMU_KUBE_HELPER_IMAGE) is neither in the "
                                    f"cluster's containerd nor on this machine: {exc}") from exc
        return Delivered(image, "IfNotPresent")

    # -- the platform's image policy on this machine's engine ------------------------------------

    def _docker(self) -> Any:
        try:
            from emulator.runtime.docker_backend import get_backend

            return get_backend().client
        except EngineUnavailable as exc:
            raise EngineUnavailable(f"images reach the cluster through this machine's Docker engine "
                                    f"(SMEMU_KUBE_IMAGES={self.mode}): {exc}") from exc

    def _resolve(self, image: str) -> str:
        from emulator.images import resolver_for

        from emulator.runtime.factory import local_engine

        self._docker()  # the engine must answer: say why images need it
        return resolver_for(self.settings, local_engine()).resolve(image)

    # -- containerd: docker save | ctr import ---------------------------------------------------

    def _load(self, reference: str, socket: str) -> None:
        name = containerd_name(reference)
        image_id = str(self._docker().images.get(reference).id)
        with self._lock:
            if self._loaded.get(name) == image_id:
                return
            if self._containerd_id(socket, name) != image_id:
                self._import(reference, name, image_id, socket)
            self._loaded[name] = image_id

    def _ctr(self, socket: str, *arguments: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        ctr = shutil.which("ctr")
        if ctr is None:
            raise EngineUnavailable("ctr (Debian's containerd package) is needed to load images into the "
                                    "local cluster; scripts/kube up installs it")
        return subprocess.run([ctr, "--address", socket, "--namespace", "k8s.io", *arguments],
                              capture_output=True, check=False, **kwargs)

    def _containerd_id(self, socket: str, name: str) -> str | None:
        listing = self._ctr(socket, "images", "ls", f"name=={name}", timeout=60)
        if listing.returncode != 0:
            raise EngineUnavailable(f"cannot list the images of the cluster's containerd at {socket}: "
                                    f"{listing.stderr.decode(errors='replace').strip()}")
        for line in listing.stdout.decode(errors="replace").splitlines()[1:]:
            for word in line.split():
                for label in word.split(","):
                    if label.startswith(f"{ID_LABEL}="):
                        return label.split("=", 1)[1]
        return None

    def _containerd_has(self, socket: str, name: str) -> bool:
        listing = self._ctr(socket, "images", "ls", "-q", f"name=={name}", timeout=60)
        return listing.returncode == 0 and bool(listing.stdout.strip())

    def _import(self, reference: str, name: str, image_id: str, socket: str) -> None:
        log.info("loading image %s (%s) into the cluster's containerd", reference, image_id[:19])
        ctr = shutil.which("ctr") or "ctr"
        process = subprocess.Popen([ctr, "--address", socket, "--namespace", "k8s.io", "images", "import", "-"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdin is not None
        try:
            for chunk in self._docker().images.get(reference).save(named=True):
                process.stdin.write(chunk)
        except BrokenPipeError:
            pass
        finally:
            process.stdin.close()
            process.stdin = None  # communicate() would flush it
        _out, err = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError_(f"loading {reference} into the cluster's containerd failed: "
                                f"{err.decode(errors='replace').strip()}")
        labelled = self._ctr(socket, "images", "label", name, f"{ID_LABEL}={image_id}", timeout=60)
        if labelled.returncode != 0:
            log.warning("could not label %s in containerd: %s", name, labelled.stderr.decode(errors="replace"))

    # -- registry: docker push -------------------------------------------------------------------

    def _push(self, reference: str, registry: str) -> str:
        from emulator.images import parse_image

        ref = parse_image(reference)
        target = f"{registry}/{ref.repository}"
        tag = ref.effective_tag or "latest"
        docker = self._docker()
        image = docker.images.get(reference)
        image.tag(target, tag=tag)
        digest = None
        for event in docker.api.push(target, tag=tag, stream=True, decode=True):
            if event.get("error"):
                raise RuntimeError_(f"pushing {reference} to {registry} failed: {event['error']}")
            digest = (event.get("aux") or {}).get("Digest") or digest
        return f"{target}@{digest}" if digest else f"{target}:{tag}"
