"""pytest fixtures for testing your own containers and SageMaker code against the emulator.

Installed with the package (pytest11 entry point ``smemu``); nothing but the package and a
Docker engine is needed. The emulator starts once per session, on first use, on a free
loopback port with a fresh home and the in-memory S3, and everything it started is removed at
the end::

    def test_training(smemu_boto3_session):
        sm = smemu_boto3_session.client("sagemaker")   # talks to the session's emulator only
        ...

    def test_my_image_follows_the_contract(smemu_contract):
        smemu_contract.assert_conforms("my-inference:latest", "serving")

Fixtures (session-scoped unless noted):

``smemu_endpoint_url``, ``smemu_emulator``
    The emulator's URL; its :class:`~emulator.contract.EmulatorTarget` (URL, home, settings).
``smemu_boto3_session``
    A ``boto3.Session`` (dummy credentials, us-east-1) whose every client goes to the emulator.
``smemu_sagemaker_client``, ``smemu_runtime_client``, ``smemu_s3_client``, ``smemu_iam_client``, ``smemu_logs_client``
    boto3 clients from that session.
``smemu_role_arn``, ``smemu_bucket``
    An IAM role SageMaker may assume, and a bucket.
``smemu_sagemaker_session``
    A SageMaker Python SDK ``Session`` with telemetry off and ``smemu_bucket`` as default
    bucket, so nothing leaves the machine (needs the ``sagemaker`` package).
``smemu_training_job``, ``smemu_endpoint`` (function-scoped factories)
    ``smemu_training_job(image, hyperparameters=..., channels={"train": "data/"})`` runs a job and
    returns its DescribeTrainingJob answer; ``smemu_endpoint(image, model="model/")`` deploys
    and returns an endpoint to ``invoke``. Running jobs are stopped, endpoints deleted afterwards.
``smemu_contract``
    ``check(image, kind, **options)`` runs ``smemu check`` through the session's emulator and
    returns the report; ``assert_conforms`` fails the test with the table when a rule fails.
``smemu_emulator_env``
    Extra ``SMEMU_*`` settings for the session's emulator (override it in a conftest.py), e.g.
    ``{"SMEMU_TRAINING_STOP_GRACE_SECONDS": "10"}``.

Options (command line, or the same names in the ini file; environment variables in brackets):
``--smemu-emulator=process|in-process|container`` [SMEMU_PYTEST_EMULATOR] runs the emulator
as a child process (default), in the test process, or as its image in a container;
``--smemu-url=URL`` [SMEMU_PYTEST_URL] uses an emulator already running instead;
``--smemu-s3=memory|minio`` [SMEMU_PYTEST_S3] gives it MinIO (``smemu_minio``) instead of the
in-memory S3.

Container fixtures (testcontainers, local images only, never pulled): ``smemu_docker``, ``smemu_minio``,
``smemu_s3_endpoint``, ``smemu_emulator_image``, ``smemu_emulator_container``
(``emulator/testing/containers.py`` has the details). A missing image skips the test with
a reason saying how to build it, repeated at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from emulator.testing.containers import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_EMULATOR_IMAGE,
    DEFAULT_MINIO_IMAGE,
    MINIO_VERSION,
    OWNER_LABEL,
    EmulatorContainer,
    MinioProcess,
    S3Endpoint,
    build_emulator_image,
    configure_testcontainers,
    docker_client,
    ensure_minio_image,
    image_present,
    minio_binary,
    owner_id,
    project_root,
    reap_orphans,
    remove_emulator_leftovers,
    start_emulator,
    start_minio,
    stop_quietly,
    testcontainers_environment_defaults,
)

__all__ = ["DEFAULT_BASE_IMAGE", "DEFAULT_EMULATOR_IMAGE", "DEFAULT_MINIO_IMAGE", "OWNER_LABEL", "EmulatorContainer",
           "MinioProcess", "S3Endpoint", "build_emulator_image", "ensure_minio_image", "minio_binary", "owner_id",
           "reap_orphans", "remove_emulator_leftovers", "start_emulator", "start_minio"]

testcontainers_environment_defaults()  # before testcontainers is imported: it reads some at import

_unavailable: list[str] = []
"""Why fixtures skipped in this session; repeated in the terminal summary."""

_OPTIONS = {
    "smemu_emulator": ("SMEMU_PYTEST_EMULATOR", "process",
                       "run the emulator as a child 'process', 'in-process' or as its image in a 'container'"),
    "smemu_url": ("SMEMU_PYTEST_URL", "", "use this running emulator instead of starting one"),
    "smemu_s3": ("SMEMU_PYTEST_S3", "memory", "the emulator's S3: 'memory' (in-memory) or 'minio' (smemu_minio)"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--smemu-emulator``, ``--smemu-url``, ``--smemu-s3`` and their ini counterparts."""
    group = parser.getgroup("smemu", "sagemaker-emulator")
    for name, (_env, default, text) in _OPTIONS.items():
        group.addoption(f"--{name.replace('_', '-')}", dest=name, default=None, help=f"{text} (default {default!r})")
        parser.addini(name, text, default=None)


def _option(config: pytest.Config, name: str) -> str:
    env, default, _text = _OPTIONS[name]
    value = config.getoption(name) or config.getini(name) or os.environ.get(env) or default
    return str(value)


def _skip(reason: str) -> NoReturn:
    _unavailable.append(reason)
    pytest.skip(reason)


# -- the session's emulator -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smemu_emulator_env() -> dict[str, str]:
    """Extra SMEMU_* settings for the session's emulator (local or container); override to configure it."""
    return {}


@pytest.fixture(scope="session")
def smemu_session_env(request: pytest.FixtureRequest, smemu_emulator_env: dict[str, str]) -> dict[str, str]:
    """``smemu_emulator_env`` plus MinIO's settings when ``--smemu-s3=minio``."""
    store = _option(request.config, "smemu_s3")
    if store not in ("memory", "minio"):
        raise pytest.UsageError(f"--smemu-s3 must be memory or minio, not {store!r}")
    env = dict(smemu_emulator_env)
    if store == "minio":
        env.update(request.getfixturevalue("smemu_minio").emulator_environment())
    return env


@pytest.fixture(scope="session")
def smemu_emulator(request: pytest.FixtureRequest, smemu_session_env: dict[str, str]) -> Iterator[Any]:
    """The session's emulator as an :class:`~emulator.contract.EmulatorTarget` (started on first use)."""
    from emulator.contract.session import EmulatorTarget
    from emulator.testing.local import MODES, LocalEmulator

    url = _option(request.config, "smemu_url")
    if url:
        home = os.environ.get("SMEMU_PYTEST_HOME")
        yield EmulatorTarget(url.rstrip("/"), Path(home) if home else None)
        return
    mode = _option(request.config, "smemu_emulator")
    if mode == "container":
        handle = request.getfixturevalue("smemu_emulator_container")
        yield EmulatorTarget(handle.url, handle.home)
        return
    if mode not in MODES:
        raise pytest.UsageError(f"--smemu-emulator must be process, in-process or container, not {mode!r}")
    emulator = LocalEmulator(mode, smemu_session_env)
    target = emulator.start()
    try:
        yield target
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def smemu_endpoint_url(smemu_emulator: Any) -> str:
    """The URL of the session's emulator (``http://127.0.0.1:<port>``): AWS_ENDPOINT_URL for your code."""
    return str(smemu_emulator.url)


@pytest.fixture(scope="session")
def smemu_boto3_session(smemu_emulator: Any) -> Any:
    """A ``boto3.Session`` whose clients and resources all talk to the session's emulator."""
    from emulator.testing.clients import EmulatorBoto3Session

    return EmulatorBoto3Session(smemu_emulator.url, smemu_emulator.region)


@pytest.fixture(scope="session")
def smemu_sagemaker_client(smemu_boto3_session: Any) -> Any:
    """boto3 ``sagemaker`` client on the emulator."""
    return smemu_boto3_session.client("sagemaker")


@pytest.fixture(scope="session")
def smemu_runtime_client(smemu_boto3_session: Any) -> Any:
    """boto3 ``sagemaker-runtime`` client on the emulator."""
    return smemu_boto3_session.client("sagemaker-runtime")


@pytest.fixture(scope="session")
def smemu_s3_client(smemu_boto3_session: Any) -> Any:
    """boto3 ``s3`` client on the emulator's S3."""
    return smemu_boto3_session.client("s3")


@pytest.fixture(scope="session")
def smemu_iam_client(smemu_boto3_session: Any) -> Any:
    """boto3 ``iam`` client on the emulator."""
    return smemu_boto3_session.client("iam")


@pytest.fixture(scope="session")
def smemu_logs_client(smemu_boto3_session: Any) -> Any:
    """boto3 ``logs`` client (CloudWatch Logs) on the emulator."""
    return smemu_boto3_session.client("logs")


@pytest.fixture(scope="session")
def smemu_role_arn(smemu_emulator: Any) -> str:
    """An IAM role that trusts sagemaker.amazonaws.com, as CreateTrainingJob and CreateModel require."""
    return str(smemu_emulator.role_arn())


@pytest.fixture(scope="session")
def smemu_bucket(smemu_emulator: Any) -> str:
    """A bucket in the emulator's S3 for the session."""
    return str(smemu_emulator.bucket())


@pytest.fixture(scope="session")
def smemu_sagemaker_session(smemu_boto3_session: Any, smemu_bucket: str) -> Any:
    """A SageMaker SDK (v2) ``Session``: telemetry off, default bucket set, every client on the emulator."""
    pytest.importorskip("sagemaker", reason="smemu_sagemaker_session needs the SageMaker SDK (pip install sagemaker)")
    from emulator.testing.clients import sagemaker_session

    return sagemaker_session(smemu_boto3_session, smemu_bucket)


@pytest.fixture()
def smemu_training_job(smemu_emulator: Any) -> Iterator[Any]:
    """Factory: ``smemu_training_job(image, hyperparameters=..., channels=...)`` -> DescribeTrainingJob answer."""
    from emulator.testing.factories import TrainingJobs

    jobs = TrainingJobs(smemu_emulator)
    try:
        yield jobs
    finally:
        jobs.close()


@pytest.fixture()
def smemu_endpoint(smemu_emulator: Any) -> Iterator[Any]:
    """Factory: ``smemu_endpoint(image, model=...)`` -> an endpoint to ``invoke``; deleted afterwards."""
    from emulator.testing.factories import Endpoints

    deployed = Endpoints(smemu_emulator)
    try:
        yield deployed
    finally:
        deployed.close()


@pytest.fixture(scope="session")
def smemu_contract(smemu_emulator: Any) -> Any:
    """Contract checks through the session's emulator: ``check(image, kind, **options)``, ``assert_conforms``."""
    from emulator.testing.factories import ContractChecks

    return ContractChecks(smemu_emulator)


# -- containers (testcontainers) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def smemu_docker() -> Iterator[Any]:
    """A docker-py client; skips when no engine answers. Configures testcontainers once."""
    from emulator.runtime.docker_client import docker_errors

    try:
        client = docker_client()
        client.ping()
    except docker_errors.DockerException as exc:
        _skip(f"Docker UNAVAILABLE: no engine answers ({exc}); start one (scripts/install-docker)")
    configure_testcontainers(client)
    reap_orphans(client)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def smemu_minio(smemu_docker: Any, pytestconfig: pytest.Config) -> Iterator[S3Endpoint]:
    """MinIO from a local image via testcontainers; yields its :class:`S3Endpoint`."""
    image = os.environ.get("SMEMU_MINIO_IMAGE", DEFAULT_MINIO_IMAGE)
    if ensure_minio_image(smemu_docker, image, project_root(pytestconfig.rootpath)) is None:
        _skip(f"MinIO UNAVAILABLE: image {image} is not on this machine and images are never pulled; "
              f"build it with scripts/build-minio (go install github.com/minio/minio@{MINIO_VERSION}) "
              f"or set SMEMU_MINIO_IMAGE to a local MinIO image")
    container, endpoint = start_minio(image)
    try:
        yield endpoint
    finally:
        stop_quietly(container)


@pytest.fixture(scope="session")
def smemu_s3_endpoint(smemu_minio: S3Endpoint) -> S3Endpoint:
    """The external S3 tests use: MinIO unless a conftest overrides this fixture."""
    return smemu_minio


@pytest.fixture(scope="session")
def smemu_emulator_image(smemu_docker: Any, pytestconfig: pytest.Config) -> str:
    """The emulator image: built from the checkout when the tests run in one, else must be local."""
    image = os.environ.get("SMEMU_EMULATOR_IMAGE", DEFAULT_EMULATOR_IMAGE)
    root = project_root(pytestconfig.rootpath)
    if root is not None and os.environ.get("SMEMU_EMULATOR_IMAGE") is None:
        from emulator.runtime.docker_client import docker_errors

        try:
            build_emulator_image(smemu_docker, image, root)
        except (docker_errors.DockerException, RuntimeError) as exc:
            _skip(f"emulator image UNAVAILABLE: building {image} from {root}/Dockerfile failed: {exc}")
    elif not image_present(smemu_docker, image):
        _skip(f"emulator image UNAVAILABLE: {image} is not on this machine and images are never pulled; "
              f"build it: docker build -t {image} <sagemaker-emulator checkout>")
    return image


@pytest.fixture(scope="session")
def smemu_emulator_container(smemu_docker: Any, smemu_emulator_image: str,
                             smemu_session_env: dict[str, str]) -> Iterator[EmulatorContainer]:
    """The emulator as a container driving this engine; yields an :class:`EmulatorContainer`."""
    home = Path(tempfile.mkdtemp(prefix=f"smemu-pytest-{uuid.uuid4().hex[:6]}-"))
    container, handle = start_emulator(smemu_emulator_image, home, smemu_session_env)
    try:
        yield handle
    finally:
        stop_quietly(container)
        remove_emulator_leftovers(smemu_docker, home)
        shutil.rmtree(home, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Repeat why MinIO or the emulator image could not be had: a skip must not go unnoticed."""
    if _unavailable:
        terminalreporter.section("smemu: services unavailable", sep="!", red=True, bold=True)
        for reason in dict.fromkeys(_unavailable):
            terminalreporter.line(reason, red=True)
