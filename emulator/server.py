"""Running the edge application: a multi-threaded production WSGI server (cheroot).

:class:`EmulatorServer` owns the whole process-level lifecycle: lock the home, start the
object store, replay the AWS state journal, build the platform, serve; on stop, stop serving,
let services settle, close the journal and stop the store. ``smemu serve`` runs it in the
foreground; tests and the pytest plugin run it in a thread.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from cheroot import wsgi

from emulator.awsstate import AwsState
from emulator.config import Settings
from emulator.gateway.app import EdgeApplication
from emulator.gateway.aws import MotoBridge
from emulator.gateway.control import ControlPlane
from emulator.gateway.protocol import load_service_model
from emulator.homelock import HomeLock
from emulator.objectstore import ObjectStore, open_store
from emulator.platform import Platform, build_platform
from emulator.runtime.docker_backend import configure_gpu_runtime, configure_host_paths

log = logging.getLogger(__name__)


def build_application(settings: Settings, object_store: ObjectStore,
                      aws_state: AwsState) -> tuple[EdgeApplication, Platform]:
    """The edge application with its platform; the AWS state is replayed into moto here."""
    configure_host_paths(settings.home, settings.host_home)
    configure_gpu_runtime(settings.gpu_runtime)
    moto = MotoBridge(aws_state)
    aws_state.restore(moto.app)
    platform = build_platform(settings, object_store)
    from emulator.observe.events import log_lifecycle

    platform.store.subscribe(log_lifecycle)
    operations = load_service_model("sagemaker").operation_names
    control = ControlPlane(platform.services, operations)
    app = EdgeApplication(
        control=control,
        moto=moto,
        default_region=settings.region,
        account_id=settings.account_id,
        runtime=platform.runtime_handler,
        streaming=platform.streaming_handlers,
        views=platform.views,
        s3=object_store.edge_app(moto),
        status=lambda: {"s3": object_store.describe(), "aws_state": aws_state.describe()},
    )
    return app, platform


def with_own_routes(app: Any, platform: Platform) -> Any:
    """The edge app behind the ECR (``/_smemu/ecr/*``, GetAuthorizationToken) and credentials routes."""
    from emulator.credentials import CredentialsMiddleware
    from emulator.ecr import EcrMiddleware, EcrMirror
    from emulator.registry import get_registry

    mirror = EcrMirror(get_registry(platform.settings), platform.settings.account_id)
    return EcrMiddleware(CredentialsMiddleware(app, platform.credentials), mirror, platform.settings.region)


def with_dashboard(app: Any, platform: Platform) -> Any:
    """The app behind the dashboard and its read-only API (``/_smemu/``): for the edge port only,
    never for the container gateway."""
    from emulator.observe.dashboard import DashboardMiddleware
    from emulator.observe.views import Observer

    return DashboardMiddleware(app, Observer(platform.store, platform.settings, platform.views), platform.settings)


class EmulatorServer:
    """The emulator on one port, startable in the foreground or in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.home_lock = HomeLock(settings.home).acquire()
        self.object_store: ObjectStore | None = None
        self.aws_state: AwsState | None = None
        try:
            self.object_store = open_store(settings)
            self.object_store.start()  # MinIO starts while the journal replays and the platform builds
            self.aws_state = AwsState(settings.state_dir / "aws-journal.jsonl")
            self.app, self.platform = build_application(settings, self.object_store, self.aws_state)
            self.object_store.wait_ready()
        except BaseException:
            self._release()
            raise
        self.wsgi_app = with_own_routes(self.app, self.platform)
        self.edge_app = with_dashboard(self.wsgi_app, self.platform)
        self._gateway: Any = None
        self._server = wsgi.Server(
            (settings.host, settings.port),
            self.edge_app,
            numthreads=settings.threads,
            server_name="smemu",
            request_queue_size=128,
            timeout=75,
            shutdown_timeout=5,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when the settings asked for port 0)."""
        bound = self._server.bind_addr
        return int(bound[1]) if isinstance(bound, tuple) else self.settings.port

    def start(self) -> EmulatorServer:
        """Bind, start services, and serve in a background thread; returns when accepting."""
        self._server.prepare()
        if self.settings.container_gateway:
            self._start_gateway()
        self.platform.start()
        self._thread = threading.Thread(target=self._server.serve, name="smemu-edge", daemon=True)
        self._thread.start()
        _wait_until_accepting(self.settings.host, self.port, deadline=10.0)
        return self

    def _start_gateway(self) -> None:
        """Serve the edge on 169.254.170.2 for containers; without it they get no credentials."""
        from emulator.credentials import ContainerGateway

        try:
            import docker

            self._gateway = ContainerGateway(self.wsgi_app, self.port, docker.from_env()).start()
            self.platform.gateway_url = self._gateway.url
        except Exception as exc:  # no engine, or not on the Docker host: the emulator still serves
            log.warning("containers will not reach the emulator: %s", exc)

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (SIGINT/SIGTERM handled by the caller)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, stop the services' background work, close the journal, stop the store."""
        try:
            self._server.stop()
            if self._gateway is not None:
                self._gateway.stop()
        finally:
            try:
                self.platform.stop()
            finally:
                self._release()

    def _release(self) -> None:
        """Close the journal, stop the object store and unlock the home (each at most once)."""
        try:
            if self.aws_state is not None:
                self.aws_state.close()
        finally:
            try:
                if self.object_store is not None:
                    self.object_store.stop()
            finally:
                self.home_lock.release()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def port_is_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with socket.create_connection((connect_host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_until_accepting(host: str, port: int, deadline: float) -> None:
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    end = time.monotonic() + deadline
    while True:
        try:
            with socket.create_connection((connect_host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"the edge port {connect_host}:{port} did not open in {deadline} s")
            time.sleep(0.02)
