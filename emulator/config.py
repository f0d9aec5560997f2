"""Every setting of the emulator, read once from ``SMEMU_*`` environment variables.

Settings are parsed explicitly when the application starts (never at import), into a
frozen object, so tests can build another one without touching the process environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_PORT = 4570
DEFAULT_HOST = "127.0.0.1"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_BASE_IMAGE = "smemu-base/python:3.11"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(value: str | None, default: bool = False) -> bool:
    """Parse a boolean setting; an unrecognised word is an error rather than a silent False."""
    if value is None:
        return default
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use one of {sorted(_TRUE | _FALSE - {''})})")


RUNTIMES = ("docker", "kubernetes")
"""SMEMU_RUNTIME's values: where containers run (emulator/runtime/factory.py)."""


@dataclass(frozen=True)
class KubernetesSettings:
    """How the Kubernetes backend uses its cluster (SMEMU_RUNTIME=kubernetes; docs/kubernetes.md).

    The cluster itself is the standard ``KUBECONFIG`` (or the in-cluster service account).
    """

    namespace: str = "smemu"
    """SMEMU_KUBE_NAMESPACE: where pods, Services and NetworkPolicies go (created when missing)."""
    helper_image: str = "busybox:1.35"
    """SMEMU_KUBE_HELPER_IMAGE: an image with sh, tar, head and kill that stages folders into pods
    and copies them out (the local cluster has Debian's static busybox under this name)."""
    images: str = "auto"
    """SMEMU_KUBE_IMAGES: how images built on this machine reach the cluster: ``containerd:SOCKET``
    (loaded into that containerd: the local cluster), ``registry:HOST:PORT`` (pushed there; the
    cluster pulls from it), ``cluster`` (used as named; the cluster pulls them), ``auto`` (the
    local cluster's containerd when the kubeconfig is scripts/kube's, else ``cluster``)."""
    request_fraction: float = 1.0
    """SMEMU_KUBE_REQUEST_FRACTION: pods request this fraction of their instance's CPU and memory
    (1: requests equal limits, an instance to itself as on SageMaker; less lets a small cluster
    run more hosts than it has cores)."""
    network_policy: bool = False
    """SMEMU_KUBE_NETWORK_POLICY: the cluster enforces NetworkPolicy, so network isolation can be
    honoured with one; without it, isolated jobs are refused (the local cluster does not enforce)."""
    start_timeout_seconds: float = 600.0
    """SMEMU_KUBE_START_TIMEOUT_SECONDS: how long a pod may take to be scheduled and started."""


@dataclass(frozen=True)
class Settings:
    """The emulator's configuration. Each field maps to one ``SMEMU_*`` variable."""

    host: str = DEFAULT_HOST
    """SMEMU_HOST: address the edge port binds to; loopback unless the user opens it."""
    port: int = DEFAULT_PORT
    """SMEMU_PORT: the one edge port for every AWS service the emulator answers."""
    home: Path = field(default_factory=lambda: Path.home() / ".smemu")
    """SMEMU_HOME: state (SQLite), the embedded S3's snapshot, job scratch space and logs."""
    region: str = DEFAULT_REGION
    """SMEMU_REGION: region used in ARNs when a request does not name one."""
    account_id: str = DEFAULT_ACCOUNT
    """SMEMU_ACCOUNT_ID: account used in ARNs (moto's default account)."""
    s3_store: str = "minio"
    """SMEMU_S3_STORE: where S3 objects live. 'minio' (default): a MinIO server the emulator runs
    itself, data under SMEMU_HOME/s3, durable; 'memory': moto's in-memory S3, NOT durable (every
    object is lost when the emulator stops); 'external': SMEMU_S3_ENDPOINT (set by that variable)."""
    s3_endpoint: str | None = None
    """SMEMU_S3_ENDPOINT: an external S3 (MinIO, Ceph, ...); setting it selects the 'external' store."""
    s3_access_key: str = "minioadmin"
    """SMEMU_S3_ACCESS_KEY: credentials for the external S3."""
    s3_secret_key: str = "minioadmin"
    """SMEMU_S3_SECRET_KEY: credentials for the external S3."""
    host_home: Path | None = None
    """SMEMU_HOST_HOME: SMEMU_HOME as the Docker engine's host sees it, when the emulator runs in
    a container with its home mounted at another path (runtime/paths.py)."""
    base_image: str = DEFAULT_BASE_IMAGE
    """SMEMU_BASE_IMAGE: the offline base image that sample containers build from."""
    threads: int = 64
    """SMEMU_THREADS: worker threads of the control process's WSGI server."""
    edge_workers: int = field(default_factory=lambda: default_edge_workers())
    """SMEMU_EDGE_WORKERS: front processes serving the edge port (default: one per CPU, at most 8).
    0 serves the edge from the control process alone (no data plane of its own)."""
    max_header_bytes: int = 64 * 1024
    """SMEMU_MAX_HEADER_BYTES: request line and headers together at most (431 beyond)."""
    request_header_timeout_seconds: float = 30.0
    """SMEMU_REQUEST_HEADER_TIMEOUT_SECONDS: a request's head must arrive within this (408 beyond)."""
    request_body_timeout_seconds: float = 30.0
    """SMEMU_REQUEST_BODY_TIMEOUT_SECONDS: longest pause while a request body arrives (408 beyond)."""
    keepalive_timeout_seconds: float = 75.0
    """SMEMU_KEEPALIVE_TIMEOUT_SECONDS: an idle client connection is closed after this."""
    container_host: str = "127.0.0.1"
    """SMEMU_CONTAINER_HOST: address on which published container ports are reached."""
    resource_limits: bool = True
    """SMEMU_RESOURCE_LIMITS: apply the instance type's memory and CPU to containers."""
    gpus: str | None = None
    """SMEMU_GPUS: the GPUs containers may get: 'all' (default: every GPU the engine has), 'none'
    (GPUs off), or device indexes/UUIDs '0,1' (docs/gpu.md)."""
    gpu_runtime: str = "nvidia"
    """SMEMU_GPU_RUNTIME: the engine's runtime that gives containers GPUs ('default': the engine's
    default runtime, for hosts where `docker run --gpus` works without naming one)."""
    gpu_fallback: str = "off"
    """SMEMU_GPU_FALLBACK: when a GPU instance type cannot get its GPUs here: 'off' (refuse, the
    default), 'cpu' (run without GPUs, with a warning), 'share' (hosts share too few GPUs)."""
    registry_port: int = 4571
    """SMEMU_REGISTRY_PORT: loopback port of the local image registry behind ECR."""
    iam_enforce: bool = False
    """SMEMU_IAM_ENFORCE: evaluate the role's identity policies for every S3 access of a job or endpoint."""
    s3_sync: bool = False
    """SMEMU_S3_SYNC: make the managed MinIO sync(2) after every object it commits (MINIO_FS_OSYNC), so
    an acknowledged PUT also survives a power loss at once rather than after the filesystem's next
    journal commit. Off by default: sync(2) flushes the whole machine's dirty pages on every PUT."""
    aws_journal_compact_after: int = 500
    """SMEMU_AWS_JOURNAL_COMPACT_AFTER: changes to moto's AWS state (IAM, Logs, ECR...) journaled after the
    last checkpoint before the journal is compacted into a new one; bounds what a restart replays
    (docs/state-format.md). 0 turns compaction off: every start replays the whole journal."""
    minio_binary: Path | None = None
    """SMEMU_MINIO_BINARY: the MinIO server to run for the 'minio' store (default: scripts/build-minio's
    cache under SMEMU_CACHE, then `minio` on PATH)."""
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "smemu")
    """SMEMU_CACHE: where scripts/build-minio caches the MinIO binary it builds (``<cache>/minio/minio``)."""
    container_gateway: bool = True
    """SMEMU_CONTAINER_GATEWAY: serve the edge on 169.254.170.2 so containers get credentials and endpoints."""
    invocation_timeout_seconds: float = 60.0
    """SMEMU_INVOCATION_TIMEOUT_SECONDS: how long InvokeEndpoint waits for a container (AWS: 60)."""
    endpoint_startup_timeout_seconds: float = 240.0
    """SMEMU_ENDPOINT_STARTUP_TIMEOUT_SECONDS: default ContainerStartupHealthCheckTimeoutInSeconds."""
    endpoint_download_timeout_seconds: float = 600.0
    """SMEMU_ENDPOINT_DOWNLOAD_TIMEOUT_SECONDS: default ModelDataDownloadTimeoutInSeconds."""
    serverless_idle_seconds: float = 300.0
    """SMEMU_SERVERLESS_IDLE_SECONDS: idle time after which a serverless container is stopped."""
    container_stop_grace_seconds: float = 30.0
    """SMEMU_CONTAINER_STOP_GRACE_SECONDS: SIGTERM-to-SIGKILL grace when an endpoint stops."""
    training_stop_grace_seconds: float = 120.0
    """SMEMU_TRAINING_STOP_GRACE_SECONDS: StopTrainingJob's SIGTERM-to-SIGKILL wait (AWS: 120)."""
    training_checkpoint_sync_seconds: float = 5.0
    """SMEMU_TRAINING_CHECKPOINT_SYNC_SECONDS: how often /opt/ml/checkpoints is synced to S3."""
    hold_seconds: float = 10.0
    """SMEMU_HOLD_SECONDS: the first describe of a job or endpoint after its Create/Update/Stop answers
    once its status has settled, waiting at most this long, so that a quick resource is seen settled
    there (gateway/hold.py); 0 answers at once."""
    mme_cache_models: int | None = None
    """SMEMU_MME_CACHE_MODELS: at most this many models per multi-model instance (loaded or on
    disk); the least recently used is unloaded and deleted beyond it. Unset: no count limit."""
    mme_cache_bytes: int | None = None
    """SMEMU_MME_CACHE_BYTES: at most this many extracted model bytes per multi-model instance."""
    allowed_hosts: tuple[str, ...] = ()
    """SMEMU_ALLOWED_HOSTS: Host header names answered besides localhost, 127.0.0.1, ::1 and the
    container gateway's address (e.g. a compose service name); ``*`` turns the check off."""
    allowed_origins: tuple[str, ...] = ()
    """SMEMU_ALLOWED_ORIGINS: browser origins (``http://localhost:3000``) allowed to call the edge
    cross-origin; ``*`` allows every origin. None by default: only same-origin pages (the dashboard)."""
    moto_api: bool = False
    """SMEMU_MOTO_API: serve moto's own ``/moto-api`` (reset, state dashboard); off by default."""
    host_folders: tuple[Path, ...] = ()
    """SMEMU_HOST_FOLDERS: folders (separated by ``:``) under which ``file://`` channels and inputs
    may name host folders. None by default: every ``file://`` URI is refused."""
    instance_quotas: tuple[tuple[str, str, int], ...] = ()
    """SMEMU_INSTANCE_QUOTAS: per-instance-type quotas, ``[usage/]type=count`` entries separated
    by commas (``ml.m5.large=40,endpoint/ml.g5.xlarge=2,*=20``); see emulator/quotas.py."""
    max_request_bytes: int = 16 * 1024 * 1024
    """SMEMU_MAX_REQUEST_BYTES: the largest request body the edge reads for control-plane and other
    AWS API calls (S3 objects and invocations have AWS's own limits)."""
    runtime: str = "docker"
    """SMEMU_RUNTIME: where containers run: ``docker`` (this machine's engine) or ``kubernetes``."""
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    """SMEMU_KUBE_*: the Kubernetes backend's settings."""
    endpoint_health_check_seconds: float = 5.0
    """SMEMU_ENDPOINT_HEALTH_CHECK_SECONDS: how often InService endpoint instances are checked
    (container running, GET /ping); a failed instance is replaced. 0 turns the checks off."""

    @property
    def state_dir(self) -> Path:
        """Folder holding the SQLite database and the AWS services' snapshot."""
        return self.home / "state"

    @property
    def s3_kind(self) -> str:
        """The store in use: 'external' whenever SMEMU_S3_ENDPOINT is set, else ``s3_store``."""
        return "external" if self.s3_endpoint else self.s3_store

    @property
    def s3_data_dir(self) -> Path:
        """Folder holding the managed MinIO's objects (its one drive)."""
        return self.home / "s3"

    @property
    def work_dir(self) -> Path:
        """Folder holding per-job and per-endpoint scratch space."""
        return self.home / "work"

    @property
    def endpoint_url(self) -> str:
        """URL a client on this machine uses to reach the edge port."""
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields replaced, ignoring ``None`` (unset command-line flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def default_edge_workers() -> int:
    """One front process per CPU, at most 8 (the edge's throughput follows the cores)."""
    return max(1, min(os.cpu_count() or 1, 8))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``SMEMU_*`` variables (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    defaults = Settings()

    def text(name: str, default: str) -> str:
        value = env.get(f"SMEMU_{name}")
        return value if value else default

    return Settings(
        host=text("HOST", defaults.host),
        port=int(text("PORT", str(defaults.port))),
        home=Path(text("HOME", str(defaults.home))).expanduser(),
        region=text("REGION", env.get("AWS_DEFAULT_REGION") or defaults.region),
        account_id=text("ACCOUNT_ID", defaults.account_id),
        host_home=Path(env["SMEMU_HOST_HOME"]).expanduser() if env.get("SMEMU_HOST_HOME") else None,
        s3_store=_s3_store(env.get("SMEMU_S3_STORE"), env.get("SMEMU_S3_ENDPOINT")),
        s3_endpoint=env.get("SMEMU_S3_ENDPOINT") or None,
        s3_sync=parse_bool(env.get("SMEMU_S3_SYNC"), False),
        aws_journal_compact_after=_count(text("AWS_JOURNAL_COMPACT_AFTER", str(defaults.aws_journal_compact_after)),
                                         "SMEMU_AWS_JOURNAL_COMPACT_AFTER"),
        minio_binary=Path(env["SMEMU_MINIO_BINARY"]).expanduser() if env.get("SMEMU_MINIO_BINARY") else None,
        cache_dir=Path(text("CACHE", str(defaults.cache_dir))).expanduser(),
        s3_access_key=text("S3_ACCESS_KEY", defaults.s3_access_key),
        s3_secret_key=text("S3_SECRET_KEY", defaults.s3_secret_key),
        base_image=text("BASE_IMAGE", defaults.base_image),
        threads=int(text("THREADS", str(defaults.threads))),
        edge_workers=_count(text("EDGE_WORKERS", str(defaults.edge_workers)), "SMEMU_EDGE_WORKERS"),
        max_header_bytes=int(text("MAX_HEADER_BYTES", str(defaults.max_header_bytes))),
        request_header_timeout_seconds=float(
            text("REQUEST_HEADER_TIMEOUT_SECONDS", str(defaults.request_header_timeout_seconds))),
        request_body_timeout_seconds=float(
            text("REQUEST_BODY_TIMEOUT_SECONDS", str(defaults.request_body_timeout_seconds))),
        keepalive_timeout_seconds=float(text("KEEPALIVE_TIMEOUT_SECONDS", str(defaults.keepalive_timeout_seconds))),
        container_host=text("CONTAINER_HOST", defaults.container_host),
        resource_limits=parse_bool(env.get("SMEMU_RESOURCE_LIMITS"), True),
        gpus=_gpus(env.get("SMEMU_GPUS")),
        gpu_runtime=text("GPU_RUNTIME", defaults.gpu_runtime),
        gpu_fallback=_gpu_fallback(env.get("SMEMU_GPU_FALLBACK")),
        registry_port=int(text("REGISTRY_PORT", str(defaults.registry_port))),
        iam_enforce=parse_bool(env.get("SMEMU_IAM_ENFORCE"), False),
        container_gateway=parse_bool(env.get("SMEMU_CONTAINER_GATEWAY"), True),
        invocation_timeout_seconds=float(text("INVOCATION_TIMEOUT_SECONDS", str(defaults.invocation_timeout_seconds))),
        endpoint_startup_timeout_seconds=float(
            text("ENDPOINT_STARTUP_TIMEOUT_SECONDS", str(defaults.endpoint_startup_timeout_seconds))),
        endpoint_download_timeout_seconds=float(
            text("ENDPOINT_DOWNLOAD_TIMEOUT_SECONDS", str(defaults.endpoint_download_timeout_seconds))),
        serverless_idle_seconds=float(text("SERVERLESS_IDLE_SECONDS", str(defaults.serverless_idle_seconds))),
        container_stop_grace_seconds=float(
            text("CONTAINER_STOP_GRACE_SECONDS", str(defaults.container_stop_grace_seconds))),
        training_stop_grace_seconds=float(
            text("TRAINING_STOP_GRACE_SECONDS", str(defaults.training_stop_grace_seconds))),
        training_checkpoint_sync_seconds=float(
            text("TRAINING_CHECKPOINT_SYNC_SECONDS", str(defaults.training_checkpoint_sync_seconds))),
        hold_seconds=_non_negative("HOLD_SECONDS", text("HOLD_SECONDS", str(defaults.hold_seconds))),
        mme_cache_models=int(env["SMEMU_MME_CACHE_MODELS"]) if env.get("SMEMU_MME_CACHE_MODELS") else None,
        mme_cache_bytes=int(env["SMEMU_MME_CACHE_BYTES"]) if env.get("SMEMU_MME_CACHE_BYTES") else None,
        allowed_hosts=_words(env.get("SMEMU_ALLOWED_HOSTS")),
        allowed_origins=_origins(env.get("SMEMU_ALLOWED_ORIGINS")),
        moto_api=parse_bool(env.get("SMEMU_MOTO_API"), False),
        host_folders=_folders(env.get("SMEMU_HOST_FOLDERS")),
        instance_quotas=_quotas(env.get("SMEMU_INSTANCE_QUOTAS")),
        max_request_bytes=int(text("MAX_REQUEST_BYTES", str(defaults.max_request_bytes))),
        endpoint_health_check_seconds=float(
            text("ENDPOINT_HEALTH_CHECK_SECONDS", str(defaults.endpoint_health_check_seconds))),
        runtime=_runtime(env.get("SMEMU_RUNTIME")),
        kubernetes=_kubernetes(env),
    )


def _runtime(value: str | None) -> str:
    word = (value or "docker").strip().lower()
    if word not in RUNTIMES:
        raise ValueError(f"SMEMU_RUNTIME must be one of {', '.join(RUNTIMES)} (got {value!r})")
    return word


def _kubernetes(env: Mapping[str, str]) -> KubernetesSettings:
    defaults = KubernetesSettings()
    images = env.get("SMEMU_KUBE_IMAGES") or defaults.images
    if images not in ("auto", "cluster") and not images.startswith(("containerd:", "registry:")):
        raise ValueError(f"SMEMU_KUBE_IMAGES must be auto, cluster, containerd:SOCKET or registry:HOST:PORT "
                         f"(got {images!r})")
    fraction = float(env.get("SMEMU_KUBE_REQUEST_FRACTION") or defaults.request_fraction)
    if not 0 <= fraction <= 1:
        raise ValueError(f"SMEMU_KUBE_REQUEST_FRACTION must be between 0 and 1 (got {fraction})")
    return KubernetesSettings(
        namespace=env.get("SMEMU_KUBE_NAMESPACE") or defaults.namespace,
        helper_image=env.get("SMEMU_KUBE_HELPER_IMAGE") or defaults.helper_image,
        images=images,
        request_fraction=fraction,
        network_policy=parse_bool(env.get("SMEMU_KUBE_NETWORK_POLICY"), False),
        start_timeout_seconds=float(env.get("SMEMU_KUBE_START_TIMEOUT_SECONDS") or defaults.start_timeout_seconds),
    )


def _count(value: str, name: str) -> int:
    """A whole number that may be 0 but not negative, checked at start."""
    number = int(value)
    if number < 0:
        raise ValueError(f"{name} must be 0 or more (got {value!r})")
    return number


S3_STORES = ("minio", "memory", "external")


def _s3_store(store: str | None, endpoint: str | None) -> str:
    """SMEMU_S3_STORE, checked against SMEMU_S3_ENDPOINT (which alone selects 'external')."""
    choice = (store or "").strip().lower() or ("external" if endpoint else "minio")
    if choice not in S3_STORES:
        raise ValueError(f"SMEMU_S3_STORE must be one of {', '.join(S3_STORES)} (got {store!r})")
    if (choice == "external") != bool(endpoint):
        raise ValueError("SMEMU_S3_STORE=external goes with SMEMU_S3_ENDPOINT, and SMEMU_S3_ENDPOINT with no "
                         f"other store (got SMEMU_S3_STORE={store!r}, SMEMU_S3_ENDPOINT={endpoint!r})")
    return choice


def _words(value: str | None) -> tuple[str, ...]:
    """A comma-separated list, lower-cased, blanks dropped."""
    return tuple(word.strip().lower() for word in (value or "").split(",") if word.strip())


def _origins(value: str | None) -> tuple[str, ...]:
    """SMEMU_ALLOWED_ORIGINS: ``scheme://host[:port]`` each (no path), or ``*``."""
    origins = tuple(word.rstrip("/") for word in _words(value))
    for origin in origins:
        if origin not in ("*", "null") and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ValueError(f"SMEMU_ALLOWED_ORIGINS: {origin!r} is not an origin such as http://localhost:3000")
    return origins


def _folders(value: str | None) -> tuple[Path, ...]:
    """SMEMU_HOST_FOLDERS, checked now: absolute folders, never a sensitive one (emulator/host_paths.py)."""
    from emulator.host_paths import check_allowed_root

    roots = [part.strip() for part in (value or "").split(os.pathsep) if part.strip()]
    return tuple(check_allowed_root(Path(root).expanduser()) for root in roots)


def _quotas(value: str | None) -> tuple[tuple[str, str, int], ...]:
    from emulator.quotas import parse_quotas

    return parse_quotas(value or "")


def _gpus(value: str | None) -> str | None:
    """SMEMU_GPUS, checked now so that a typo stops the start rather than a job later."""
    from emulator.gpus import parse_selection

    if not value:
        return None
    parse_selection(value)
    return value.strip()


def _gpu_fallback(value: str | None) -> str:
    from emulator.gpus import parse_fallback

    return parse_fallback(value)


def _non_negative(name: str, value: str) -> float:
    """A number of seconds that may be 0 (off) but not negative, checked at start."""
    seconds = float(value)
    if seconds < 0:
        raise ValueError(f"SMEMU_{name} must be 0 or more seconds (got {value!r})")
    return seconds
