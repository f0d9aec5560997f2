"""Running the emulator: the control process's WSGI server (cheroot) and the edge's fronts.

:class:`EmulatorServer` owns the whole process-level lifecycle: lock the home, start the
object store, replay the AWS state journal, build the platform, serve; on stop, stop serving,
let services settle, close the journal and stop the store. ``smemu serve`` runs it in the
foreground; tests and the pytest plugin run it in a thread.

With ``SMEMU_EDGE_WORKERS`` above 0 (the default) the edge port belongs to the front processes
(``emulator/edge``): they serve invocations themselves and forward everything else to the
WSGI application, which then listens on a private Unix socket only they can reach. With 0
the WSGI server listens on the edge port itself, as a single process.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cheroot import wsgi

from emulator.awsstate import AwsState
from emulator.config import Settings
from emulator.gateway.app import EdgeApplication
from emulator.gateway.aws import MotoBridge
from emulator.gateway.control import ControlPlane
from emulator.gateway.hold import StatusHold
from emulator.gateway.protocol import load_service_model
from emulator.homelock import HomeLock
from emulator.objectstore import ObjectStore, open_store
from emulator.platform import Platform, build_platform
from emulator.polling import poll_until
from emulator.runtime.docker_backend import configure_gpu_runtime, configure_host_paths
from emulator.runtime.naming import configure_home, home_id

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024**3 + 64 * 1024
"""The server's backstop for bodies without Content-Length (chunked): S3's largest PUT and a margin."""


def build_application(settings: Settings, object_store: ObjectStore,
                      aws_state: AwsState) -> tuple[EdgeApplication, Platform]:
    """The edge application with its platform; the AWS state is replayed into moto here."""
    configure_host_paths(settings.home, settings.host_home)
    configure_home(settings.home)
    configure_gpu_runtime(settings.gpu_runtime)
    moto = MotoBridge(aws_state)
    aws_state.restore(moto.app)
    platform = build_platform(settings, object_store)
    from emulator.observe.events import log_lifecycle

    platform.store.subscribe(log_lifecycle)
    operations = load_service_model("sagemaker").operation_names
    control = ControlPlane(platform.services, operations, hold=StatusHold(settings.hold_seconds))
    app = EdgeApplication(
        control=control,
        moto=moto,
        default_region=settings.region,
        account_id=settings.account_id,
        runtime=platform.edge.runtime_handler(),
        streaming=platform.edge.streaming,
        views=platform.edge.views,
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


class ForwardedClient:
    """WSGI middleware for the private socket: the client's address as the fronts saw it.

    Fronts send it in ``X-Smemu-Client`` (dropping any value a client sent); only fronts can
    reach the private socket, so the header is trusted here and removed.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], port: Callable[[], int]) -> None:
        self.app = app
        self.port = port

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        client = environ.pop("HTTP_X_SMEMU_CLIENT", "")
        address, _, port = client.rpartition(":")
        environ["REMOTE_ADDR"] = address
        environ["REMOTE_PORT"] = port
        environ["SERVER_PORT"] = str(self.port())
        return self.app(environ, start_response)


def _private_socket_path(settings: Settings) -> Path:
    """Where the control process listens for its fronts: a folder only this user can enter
    (cheroot makes the socket itself world-writable), short enough for a Unix socket path."""
    folder = settings.state_dir / "edge"
    if len(str(folder / "control.sock")) < 100:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    else:
        folder = Path(tempfile.mkdtemp(prefix="smemu-edge-"))
    return folder / "control.sock"


def with_policy(app: Any, settings: Settings) -> Any:
    """The app behind the edge's request policy: Host and Origin checks, /moto-api, sizes (http_policy.py)."""
    from emulator.gateway.policy_middleware import EdgePolicy

    return EdgePolicy(app, settings)


def with_dashboard(app: Any, platform: Platform) -> Any:
    """The app behind the dashboard and its read-only API (``/_smemu/``): for the edge port only,
    never for the container gateway."""
    from emulator.observe.dashboard import DashboardMiddleware
    from emulator.observe.views import Observer

    return DashboardMiddleware(app, Observer(platform.store, platform.settings, platform.edge.views), platform.settings)


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
            self.aws_state = AwsState(settings.state_dir / "aws-journal.jsonl", settings.aws_journal_compact_after)
            self.app, self.platform = build_application(settings, self.object_store, self.aws_state)
            self.object_store.wait_ready()
        except BaseException:
            self._release()
            raise
        self.wsgi_app = with_own_routes(self.app, self.platform)
        self.edge_app = with_dashboard(self.wsgi_app, self.platform)
        self._gateway: Any = None
        self.supervisor: Any = None
        self._sockets: list[socket.socket] = []
        self._control_path: Path | None = None
        if settings.edge_workers > 0:
            self._control_path = _private_socket_path(settings)
            bind: Any = str(self._control_path)
            app: Any = ForwardedClient(with_policy(self.edge_app, settings), lambda: self.port)
        else:
            bind, app = (settings.host, settings.port), with_policy(self.edge_app, settings)
        self._server = wsgi.Server(
            bind,
            app,
            numthreads=settings.threads,
            server_name="smemu",
            request_queue_size=128,
            timeout=75,
            shutdown_timeout=5,
        )
        self._server.max_request_header_size = settings.max_header_bytes
        self._server.max_request_body_size = MAX_BODY_BYTES
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when the settings asked for port 0)."""
        if self._sockets:
            return int(self._sockets[0].getsockname()[1])
        bound = self._server.bind_addr
        return int(bound[1]) if isinstance(bound, tuple) else self.settings.port

    def start(self) -> EmulatorServer:
        """Bind, start services, and serve in a background thread; returns when accepting.

        The edge port is bound first, so a port in use fails before anything starts; a later
        failure stops whatever did start before it is raised.
        """
        if self.settings.edge_workers > 0:
            from emulator.edge.sockets import bind_edge

            self._sockets = bind_edge(self.settings.host, self.settings.port, self.settings.edge_workers)
        try:
            self._server.prepare()
            if self.settings.edge_workers > 0:
                self._start_fronts()
            if self.settings.container_gateway:
                self._start_gateway()
            self.platform.credentials.restore_identities()
            self.platform.start()
            self._thread = threading.Thread(target=self._server.serve, name="smemu-edge", daemon=True)
            self._thread.start()
            _wait_until_accepting(self.settings.host, self.port, deadline=10.0)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_fronts(self) -> None:
        """Start the front processes that serve the edge port (emulator/edge)."""
        from emulator.edge.supervisor import EdgeSupervisor, invoke_header_rules

        settings = self.settings
        assert self._control_path is not None
        self.supervisor = EdgeSupervisor(
            settings.with_overrides(port=self.port),
            self._sockets,
            str(self._control_path),
            settings.work_dir / "edge-spool",
            invoke_header_rules(),
        ).start()
        self.platform.edge.views["data-plane"] = self.supervisor.describe
        for attach in self.platform.edge.data_plane:
            attach(self.supervisor)

    def _start_gateway(self) -> None:
        """Serve the container gateway on 169.254.170.2 (emulator/container_gateway.py).

        Without it containers get no credentials and no endpoints (the emulator still serves).
        """
        from emulator.container_gateway import ContainerGateway, GatewayAuth

        settings = self.settings
        home = home_id(settings.home)
        engine = self.platform.engine
        try:
            auth = GatewayAuth(with_policy(self.wsgi_app, settings), self.platform.credentials,
                               iam_enforce=lambda: bool(self.platform.settings.iam_enforce),
                               max_body_bytes=settings.max_request_bytes,
                               subnets=lambda: [*engine.container_subnets(home), *self._cluster_subnets(home)])
            self._gateway = ContainerGateway(auth, self.port, engine.ensure_gateway_network,
                                             max_body_bytes=MAX_BODY_BYTES,
                                             watch_network=engine.watch_gateway_network).start()
            self.platform.gateway_url = self._gateway.url
        except Exception as exc:  # no engine, or not on the Docker host: the emulator still serves
            log.warning("containers will not reach the emulator: %s", exc)

    def _cluster_subnets(self, home: str) -> list[str]:
        """Where the runtime's containers reach the gateway from when they do not run on this
        machine's engine (SMEMU_RUNTIME=kubernetes: the cluster's pods); none otherwise."""
        if self.platform.backend is self.platform.engine:
            return []
        try:
            return self.platform.backend.container_subnets(home)
        except Exception as exc:  # no cluster now: its pods cannot be calling either
            log.debug("no pod addresses for the gateway: %s", exc)
            return []

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
            if self.supervisor is not None:
                self.supervisor.stop()  # fronts finish what they have in flight first
            self._server.stop()
            if self._gateway is not None:
                self._gateway.stop()
        finally:
            for sock in self._sockets:
                sock.close()
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

    def accepting() -> bool:
        try:
            with socket.create_connection((connect_host, port), timeout=0.5):
                return True
        except OSError:
            return False

    if not poll_until(accepting, deadline, 0.02):
        raise RuntimeError(f"the edge port {connect_host}:{port} did not open in {deadline} s")
