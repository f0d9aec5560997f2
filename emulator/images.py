"""Image resolution (DESIGN.md decision 4): which image a job or endpoint really runs.

1. A local image of exactly the requested name is used as it is (a locally built or tagged
   image, ECR-named or not).
2. An ECR URI, ``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` or ``...@sha256:...``,
   is looked up in the local registry as ``127.0.0.1:<port>/<repo>:<tag>`` and pulled from it
   (a pull of layers already present takes ~0.2 s). That is where ``smemu ecr push`` puts it,
   so "passes here" implies "was pushed", as on AWS.
3. Anything else fails with :class:`MissingImage`, naming the image and how to push it. It is
   never pulled from the internet.

Deliberately *not* done: an ECR URI does not fall back to a local ``<repo>:<tag>`` of the same
name. On AWS such a job fails because the image was never pushed, and the emulator promises
that what runs here will not fail on AWS for a missing image; the error names the local image
and the exact ``smemu ecr push`` line instead.

:class:`MissingImage` carries SageMaker's own wording for each kind of job
(:meth:`MissingImage.reason`), so the platform can put exactly what AWS says in FailureReason
or a ValidationException.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from emulator.registry import Manifest, RegistryUnavailable
from emulator.runtime.spec import EngineUnavailable, ImageNotFound, LocalEngine, RuntimeError_

DEFAULT_TAG = "latest"
_ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?P<fips>-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?P<cn>\.cn)?$"
)
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_ECR_PULL_ACTIONS = "ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer"


class Registry(Protocol):
    """What resolution needs of the local registry (``emulator.registry.LocalRegistry``)."""

    @property
    def address(self) -> str: ...

    def ensure_running(self) -> str: ...

    def manifest(self, repository: str, reference: str) -> Manifest | None: ...

    def tags(self, repository: str) -> list[str]: ...


class InvalidImageReference(ValueError):
    """The text is not a Docker image reference."""


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference: ``[registry/]repository[:tag][@digest]``."""

    original: str
    registry: str | None
    """``host[:port]`` when the first component names one (has '.' or ':' or is localhost)."""
    repository: str
    """The path below the registry, e.g. ``team/model``."""
    tag: str | None
    digest: str | None

    @property
    def ecr_account(self) -> str | None:
        """The registry's account when this is an ECR URI."""
        match = _ECR_HOST.match(self.registry or "")
        return match.group("account") if match else None

    @property
    def ecr_region(self) -> str | None:
        """The registry's region when this is an ECR URI."""
        match = _ECR_HOST.match(self.registry or "")
        return match.group("region") if match else None

    @property
    def is_ecr(self) -> bool:
        """Whether this names an image in (private) Amazon ECR."""
        return self.ecr_account is not None

    @property
    def reference(self) -> str:
        """What to ask a registry for: the digest if given, else the tag (``latest`` by default)."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def effective_tag(self) -> str | None:
        """The tag, ``latest`` when neither tag nor digest is given (as Docker and SageMaker do)."""
        if self.tag:
            return self.tag
        return None if self.digest else DEFAULT_TAG

    def in_registry(self, address: str) -> str:
        """The same repository and tag/digest in another registry: ``<address>/<repo>:<tag>``."""
        if self.digest:
            return f"{address}/{self.repository}@{self.digest}"
        return f"{address}/{self.repository}:{self.effective_tag}"

    @property
    def short(self) -> str:
        """``<repo>:<tag>`` (or ``<repo>@<digest>``), the form ``smemu ecr push`` takes."""
        if self.digest and not self.tag:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.effective_tag}"


def parse_image(image: str) -> ImageReference:
    """Split a Docker image reference; raises :class:`InvalidImageReference` for malformed text."""
    text = image.strip()
    if not text or any(c.isspace() for c in text) or text != text.strip("/"):
        raise InvalidImageReference(f"not an image reference: {image!r}")
    name, at, digest = text.partition("@")
    if at and not _DIGEST.match(digest):
        raise InvalidImageReference(f"invalid digest in image reference {image!r}")
    registry: str | None = None
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    tag: str | None = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidImageReference(f"invalid tag {tag!r} in image reference {image!r}")
    if not _REPOSITORY.match(name):
        raise InvalidImageReference(f"invalid repository in image reference {image!r}")
    return ImageReference(image, registry, name, tag, digest or None)


def parse_repository_and_tag(text: str) -> tuple[str, str]:
    """``repo[:tag]`` (as ``smemu ecr push`` takes it) -> ``(repo, tag)``, tag ``latest`` by default."""
    ref = parse_image(text)
    if ref.registry or ref.digest:
        raise InvalidImageReference(f"expected REPOSITORY[:TAG] without a registry or digest, got {text!r}")
    return ref.repository, ref.effective_tag or DEFAULT_TAG


def ecr_uri(account_id: str, region: str, repository: str, tag: str | None = None, digest: str | None = None) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` (or ``@<digest>``)."""
    host = f"{account_id}.dkr.ecr.{region}.amazonaws.com" + (".cn" if region.startswith("cn-") else "")
    return f"{host}/{repository}@{digest}" if digest else f"{host}/{repository}:{tag or DEFAULT_TAG}"


class MissingImage(ImageNotFound):
    """An image that is neither local nor in the local registry.

    ``str()`` is a self-contained explanation; :meth:`reason` gives SageMaker's own wording
    for the kind of job, followed by the emulator's hint on how to push the image.
    """

    def __init__(self, image: str, ref: ImageReference | None, *, repository_exists: bool = False,
                 local_candidate: str | None = None, registry_address: str | None = None,
                 registry_problem: str | None = None) -> None:
        self.image = image
        self.ref = ref
        self.repository_exists = repository_exists
        self.local_candidate = local_candidate
        """A local image ``<repo>:<tag>`` that would match once pushed."""
        self.registry_address = registry_address
        self.registry_problem = registry_problem
        """Why the registry could not be asked (not installed, port taken), if that happened."""
        super().__init__(self._explanation())

    @property
    def hint(self) -> str:
        """How to make the image available to the emulator."""
        if self.registry_problem:
            return f"The local image registry is unavailable: {self.registry_problem}"
        if self.ref is None:
            return "Use a local image name or an ECR URI."
        target = self.ref.short
        if not self.ref.is_ecr:
            return (f"Build or tag it on this machine (`docker build -t {self.image} .`), or push a local "
                    f"image to the emulator's ECR with `smemu ecr push LOCAL_IMAGE {target}` and use the ECR URI.")
        source = self.local_candidate or "LOCAL_IMAGE"
        return f"To make {self.image} available, push it: `smemu ecr push {source} {target}`."

    def _explanation(self) -> str:
        if self.ref is None or not self.ref.is_ecr:
            return (f"The image '{self.image}' does not exist on this machine, and only ECR URIs are looked up "
                    f"in the emulator's registry; the emulator never pulls images from the internet. {self.hint}")
        where = f"in the emulator's registry ({self.registry_address})" if self.registry_address else "anywhere"
        what = "has no image" if self.repository_exists else "does not exist"
        return (f"The image '{self.image}' was not found: it is not a local image, and repository "
                f"'{self.ref.repository}' {what} {where} with {'digest' if self.ref.digest else 'tag'} "
                f"'{self.ref.reference}'. {self.hint}")

    def reason(self, kind: str, role_arn: str | None = None, variant: str | None = None) -> str:
        """SageMaker's message for a missing image, plus the emulator's hint.

        ``kind``: ``training`` (the text of CreateTrainingJob's ValidationException, also used
        for hyperparameter tuning), ``processing`` / ``transform`` (their FailureReason without the
        ``ClientError: `` prefix), or ``hosting`` (CreateEndpoint's FailureReason for ``variant``).
        A missing local (non-ECR) image gets ``str(self)`` except for hosting.
        """
        ref = self.ref
        if kind != "hosting" and (ref is None or not ref.is_ecr):
            return str(self)  # SageMaker only runs ECR images; a local name gets the emulator's own text
        if kind == "hosting":
            text = (f"Please make sure all images included in the model for the production variant {variant} "
                    f"exist, and that the execution role used to create the model has permissions to access them.")
        elif kind in ("processing", "transform"):
            text = (f"API error (404): manifest for {self.image} not found: manifest unknown: "
                    f"Requested image not found")
        elif ref is not None and ref.is_ecr and not self.repository_exists:
            text = (f"Cannot find repository: {ref.repository} in registry ID: {ref.ecr_account} Please check if "
                    f"your ECR repository exists and role {role_arn} has proper pull permissions for SageMaker: "
                    f"{_ECR_PULL_ACTIONS}")
        else:
            tag = (ref.effective_tag if ref else None) or "null"
            digest = (ref.digest if ref else None) or "null"
            text = (f"Cannot find the requested image: {self.image} with tag: {tag} and digest: {digest}. Please "
                    f"check if your ECR image exists and role {role_arn} has proper pull permissions for "
                    f"SageMaker: {_ECR_PULL_ACTIONS}")
        return f"{text} (smemu: {self.hint})"


class ImageResolver:
    """Resolves image references to images this machine's engine can run, without the internet.

    ``engine`` is this machine's :class:`~emulator.runtime.spec.LocalEngine` (the runtime seam);
    ``registry`` the emulator's local registry (None: ECR URIs resolve only to local images of
    that exact name).
    """

    def __init__(self, engine: LocalEngine, registry: Registry | None) -> None:
        self.engine = engine
        self.registry = registry

    def resolve(self, image: str) -> str:
        """The reference to run for ``image``; pulls from the local registry when needed.

        Raises :class:`MissingImage` (an ``ImageNotFound``) naming the image and how to push it.
        """
        if self._local(image):
            return image
        found = self._missing_or_source(image)
        if isinstance(found, MissingImage):
            raise found
        self._pull(image, found)
        return found

    def find_missing(self, image: str) -> MissingImage | None:
        """Without pulling anything: None when ``image`` would resolve, else the error to report.

        Cheap (a manifest HEAD-equivalent on loopback), so CreateTrainingJob can validate an ECR
        image synchronously, as AWS does.
        """
        if self._local(image):
            return None
        missing = self._missing_or_source(image)
        return missing if isinstance(missing, MissingImage) else None

    def _missing_or_source(self, image: str) -> MissingImage | str:
        try:
            ref = parse_image(image)
        except InvalidImageReference:
            return MissingImage(image, None)
        if not ref.is_ecr:
            return MissingImage(image, ref)
        candidate = ref.short if not ref.digest and self._local(ref.short) else None
        if self.registry is None:
            return MissingImage(image, ref, local_candidate=candidate)
        try:
            self.registry.ensure_running()
            found = self.registry.manifest(ref.repository, ref.reference)
            exists = found is not None or bool(self.registry.tags(ref.repository))
        except RegistryUnavailable as exc:
            return MissingImage(image, ref, local_candidate=candidate, registry_problem=str(exc))
        if found is None:
            return MissingImage(image, ref, repository_exists=exists, local_candidate=candidate,
                                registry_address=self.registry.address)
        return ref.in_registry(self.registry.address)

    def _local(self, image: str) -> bool:
        return self.engine.image_id(image) is not None

    def _pull(self, image: str, source: str) -> None:
        try:
            self.engine.pull_image(source)
        except EngineUnavailable:
            raise
        except RuntimeError_ as exc:
            raise MissingImage(image, parse_image(image), registry_problem=f"pulling {source} failed: {exc}") from exc


def resolver_for(settings: Any, engine: LocalEngine) -> ImageResolver:
    """The resolver the platform uses: this machine's engine plus the settings' local registry."""
    from emulator.registry import get_registry

    return ImageResolver(engine, get_registry(settings))
