"""The platform: settings, state, S3 and the services that execute SageMaker's operations.

The gateway knows wire protocols; the services here know SageMaker's behaviour. A service
is any object whose methods are named after the operations it executes
(``create_training_job(request, ctx)``), with optional ``start()`` (re-adopt work after a
restart) and ``stop()`` hooks.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from emulator.config import Settings
from emulator.context import CallContext
from emulator.objectstore import ObjectStore
from emulator.s3 import S3Store
from emulator.store import Store

log = logging.getLogger(__name__)


class Platform:
    """Everything the services share, built once per emulator process."""

    def __init__(self, settings: Settings, object_store: ObjectStore | None = None) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.state_dir / "resources.db")
        self.object_store = object_store
        """Where S3 objects live (started and stopped by the server, not here)."""
        self.s3 = S3Store(settings, object_store)
        self.services: list[object] = []
        self.runtime_handler: Callable[[str, dict[str, Any], CallContext], Mapping[str, Any]] | None = None
        self.streaming_handlers: dict[str, Any] = {}
        self.views: dict[str, Callable[[str], Any]] = {}
        """Read-only emulator views the edge serves under /_smemu/ (``endpoint-models``)."""
        from emulator.credentials import CredentialBroker

        self.credentials = CredentialBroker.from_settings(settings)
        self.gateway_url: str | None = None
        """Where containers reach the emulator; set by the server once the container gateway listens."""

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

    def add_service(self, service: object) -> None:
        """Register a service; earlier services win when two define the same operation."""
        self.services.append(service)

    def default_context(self) -> CallContext:
        """A context for work the platform starts by itself (recovery after a restart)."""
        return CallContext(region=self.settings.region, account_id=self.settings.account_id)

    def start(self) -> None:
        """Let each service re-adopt or settle work left from a previous run."""
        for service in self.services:
            start = getattr(service, "start", None)
            if callable(start):
                start()

    def stop(self) -> None:
        """Stop background work; running containers are left to be re-adopted next start."""
        for service in reversed(self.services):
            stop = getattr(service, "stop", None)
            if callable(stop):
                try:
                    stop()
                except Exception:
                    log.exception("stopping %s failed", type(service).__name__)
        self.store.close()


def build_platform(settings: Settings, object_store: ObjectStore | None = None) -> Platform:
    """The platform with every service this build of the emulator has."""
    from emulator.tags import TagService

    platform = Platform(settings, object_store)
    for factory in _service_factories():
        platform.add_service(factory(platform))
    platform.add_service(TagService(platform.store))
    for service in platform.services:
        if hasattr(service, "container_environment"):  # TrainingService's hook: request -> env
            service.container_environment = lambda request: platform.container_environment(request.get("RoleArn"))
    return platform


def _service_factories() -> list[Callable[[Platform], object]]:
    """Service constructors, imported lazily so the gateway starts fast."""
    factories: list[Callable[[Platform], object]] = []
    try:
        from emulator.training.service import TrainingService
    except ImportError:  # pragma: no cover - during the first builds of the package
        log.debug("training service not available")
    else:
        factories.append(TrainingService)
    try:
        from emulator.hosting.service import HostingService
    except ImportError:  # pragma: no cover
        log.debug("hosting service not available")
    else:
        factories.append(HostingService)
    return factories
