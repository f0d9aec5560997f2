"""The platform: settings, state, S3 and the services that execute SageMaker's operations.

The gateway knows wire protocols; the services here know SageMaker's behaviour. A service
is any object whose methods are named after the operations it executes
(``create_training_job(request, ctx)``), with ``start()`` (re-adopt work after a restart) and
``stop()`` hooks (:class:`Service`); what it serves on the edge it hands over as
:class:`EdgeHandlers`. The runtime backend and this machine's engine are built here once and
injected into the services (DESIGN.md decision 9).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from emulator.answers import StreamedAnswer
from emulator.config import Settings
from emulator.context import CallContext
from emulator.errors import ValidationError
from emulator.objectstore import ObjectStore
from emulator.runtime.spec import LocalEngine, RuntimeBackend
from emulator.s3 import S3Store
from emulator.store import Store

log = logging.getLogger(__name__)

RuntimeHandler = Callable[[dict[str, Any], CallContext], Mapping[str, Any]]
"""``(parsed request, ctx) -> result`` of one sagemaker-runtime operation."""
StreamingHandler = Callable[[str, dict[str, Any], CallContext], StreamedAnswer]
"""``(operation, parsed request, ctx) -> answer`` of an operation whose answer streams."""


class Service(Protocol):
    """A platform service: methods named after the operations it executes (the control plane
    finds them by name), plus the platform's two hooks."""

    def start(self) -> None:
        """Re-adopt or settle work a previous run of the emulator left."""

    def stop(self) -> None:
        """End background work (containers may be left to be re-adopted)."""


@dataclass
class EdgeHandlers:
    """What a service hands the edge, which alone speaks HTTP.

    ``runtime``: sagemaker-runtime operations answered with a result the edge serializes;
    ``streaming``: operations whose answer streams (:class:`~emulator.answers.StreamedAnswer`);
    ``views``: read-only emulator views served under /_smemu/; ``data_plane``: called with the
    edge's data plane once its front processes run (emulator/edge/supervisor.py).
    """

    runtime: dict[str, RuntimeHandler] = field(default_factory=dict)
    streaming: dict[str, StreamingHandler] = field(default_factory=dict)
    views: dict[str, Callable[[str], Any]] = field(default_factory=dict)
    data_plane: list[Callable[[Any], None]] = field(default_factory=list)

    def merge(self, other: EdgeHandlers) -> None:
        """Add ``other``'s handlers; ones already present win."""
        for mine, theirs in ((self.runtime, other.runtime), (self.streaming, other.streaming),
                             (self.views, other.views)):
            for name, handler in theirs.items():
                mine.setdefault(name, handler)  # type: ignore[attr-defined]
        self.data_plane.extend(other.data_plane)

    def runtime_handler(self) -> Callable[[str, dict[str, Any], CallContext], Mapping[str, Any]]:
        """One callable over the runtime operations (the edge's ``runtime``)."""
        operations = self.runtime

        def call(operation: str, request: dict[str, Any], ctx: CallContext) -> Mapping[str, Any]:
            handler = operations.get(operation)
            if handler is None:
                raise ValidationError(f"{operation} is not supported by the emulator.")
            return handler(request, ctx)

        return call


class Platform:
    """Everything the services share, built once per emulator process."""

    def __init__(self, settings: Settings, object_store: ObjectStore | None = None, *,
                 engine: LocalEngine | None = None, backend: RuntimeBackend | None = None) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.state_dir / "resources.db")
        self.object_store = object_store
        """Where S3 objects live (started and stopped by the server, not here)."""
        self.s3 = S3Store(settings, object_store)
        self.services: list[Service] = []
        self.edge = EdgeHandlers()
        """What the services hand the edge: runtime operations, streamed answers, read-only views."""
        from emulator.credentials import CredentialBroker

        self.credentials = CredentialBroker.from_settings(settings)
        self.gateway_url: str | None = None
        """Where containers reach the emulator; set by the server once the container gateway listens."""
        from emulator.runtime.factory import backend_for, local_engine
        from emulator.runtime.lazy import LazyBackend, LazyEngine

        self.engine: LocalEngine = engine or LazyEngine(local_engine)
        """This machine's engine (images, registry pushes, the gateway network), connected on first use."""
        self.backend: RuntimeBackend = backend or (
            LazyBackend(lambda: backend_for(settings)) if settings.runtime == "kubernetes" else self.engine)
        """The runtime backend SMEMU_RUNTIME names, injected into the services (connected on first use)."""

    def resolve_image(self, image: str) -> str:
        """The image reference to run: emulator/images.py's policy, then the backend's exact lookup.

        Raises ImageNotFound (``images.MissingImage``, with ``reason(kind)``) naming the image,
        or EngineUnavailable.
        """
        from emulator.images import resolver_for

        if self.settings.runtime == "kubernetes":  # the backend applies the policy for its cluster
            return self.backend.ensure_image(image)
        return self.backend.ensure_image(resolver_for(self.settings, self.engine).resolve(image))

    @property
    def home_id(self) -> str:
        """The emulator home's id in every container, network and volume label (``smemu.home``)."""
        from emulator.runtime.naming import home_id

        return home_id(self.settings.home)

    def check_role(self, role_arn: str | None, operation: str, ctx: CallContext, source_arn: str | None = None) -> None:
        """SageMaker's ValidationException unless SageMaker could assume the role (emulator/iam.py)."""
        from emulator import iam

        iam.check_role(role_arn, operation, ctx.account_id, region=ctx.region, source_arn=source_arn)

    def role_s3_client(self, role_arn: str | None, ctx: CallContext, default: Callable[[], Any]) -> Callable[[], Any]:
        """``default`` unless strict mode is on; then a client factory checking the role's S3 permissions."""
        from emulator import iam

        if not iam.enforcing(self.settings):
            return default
        return iam.role_s3_client_factory(self.s3, role_arn, ctx.account_id, ctx.region, True)

    def container_environment(self, role_arn: str | None, region: str | None = None) -> dict[str, str]:
        """AWS variables (credentials endpoint, endpoints, region) for a container running as ``role_arn``."""
        from emulator.credentials import container_environment

        if self.gateway_url is None:
            return {}
        return container_environment(role_arn, self.settings, self.credentials, gateway_url=self.gateway_url,
                                     region=region)

    def add_service(self, service: Service, handlers: EdgeHandlers | None = None) -> None:
        """Register a service, with what it hands the edge; earlier services win when two define
        the same operation."""
        self.services.append(service)
        if handlers is not None:
            self.edge.merge(handlers)

    def default_context(self) -> CallContext:
        """A context for work the platform starts by itself (recovery after a restart)."""
        return CallContext(region=self.settings.region, account_id=self.settings.account_id)

    def start(self) -> None:
        """Let each service re-adopt or settle work left from a previous run."""
        for service in self.services:
            service.start()

    def stop(self) -> None:
        """Stop background work; running containers are left to be re-adopted next start."""
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)
        self.store.close()


def build_platform(settings: Settings, object_store: ObjectStore | None = None) -> Platform:
    """The platform with every service of the emulator.

    Imports happen here, not at module import, so the gateway starts fast; an import that
    fails stops the emulator with the error instead of leaving operations to someone else.
    """
    from emulator.hosting.service import HostingService
    from emulator.processing.service import ProcessingService
    from emulator.search import SearchService
    from emulator.tags import TagService
    from emulator.training.service import TrainingService
    from emulator.transform.service import TransformService
    from emulator.tuning.service import TuningService

    platform = Platform(settings, object_store)
    training = TrainingService(platform, platform.backend)
    training.container_environment = lambda request: platform.container_environment(request.get("RoleArn"))
    platform.add_service(training)
    hosting = HostingService(platform, platform.backend)
    platform.add_service(hosting, hosting.edge_handlers())
    platform.add_service(ProcessingService(platform, platform.backend))
    platform.add_service(TransformService(platform, platform.backend))
    platform.add_service(TuningService(platform, training))
    platform.add_service(TagService(platform.store))
    platform.add_service(SearchService(platform.store))
    return platform


def service_classes() -> list[type]:
    """The classes of every service :func:`build_platform` registers, in order (for docs/compatibility.md)."""
    from emulator.hosting.service import HostingService
    from emulator.processing.service import ProcessingService
    from emulator.search import SearchService
    from emulator.tags import TagService
    from emulator.training.service import TrainingService
    from emulator.transform.service import TransformService
    from emulator.tuning.service import TuningService

    return [TrainingService, HostingService, ProcessingService, TransformService, TuningService, TagService,
            SearchService]
