"""``smemu doctor``: is every piece the emulator runs on present, and if not, what fixes it."""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from emulator.config import Settings
from emulator.runtime.spec import LocalEngine, RuntimeError_

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, whether it is fine, what was seen and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _script(name: str) -> str:
    path = REPO_ROOT / "scripts" / name
    return str(path) if path.exists() else f"scripts/{name} (in the sagemaker-emulator checkout)"


def check_engine() -> tuple[Check, LocalEngine | None]:
    """The Docker engine answers on its socket (through the runtime seam: emulator/runtime)."""
    from emulator.runtime.factory import local_engine

    try:
        engine = local_engine()
        return Check("docker engine", True, engine.engine_version()), engine
    except RuntimeError_ as exc:
        return Check("docker engine", False, f"not reachable: {exc}", f"sudo {_script('install-docker')}"), None


def check_base_image(engine: LocalEngine | None, settings: Settings) -> Check:
    """The offline base image that sample containers build from exists."""
    if engine is None:
        return Check("base image", False, "engine not reachable", f"sudo {_script('install-docker')}")
    image_id = engine.image_id(settings.base_image)
    if image_id is None:
        return Check("base image", False, f"{settings.base_image} missing",
                     "sudo smemu base-image (needs mmdebstrap), or build FROM an image you can pull")
    return Check("base image", True, f"{settings.base_image} {image_id.removeprefix('sha256:')[:12]}")


def check_nvidia(engine: LocalEngine | None, runtime: str = "nvidia") -> Check:
    """The GPU runtime (SMEMU_GPU_RUNTIME) is registered with the engine (only for GPU types)."""
    if engine is None:
        return Check("nvidia runtime", False, "engine not reachable")
    if engine.gpus_available():
        return Check("nvidia runtime", True, f"runtime {runtime!r} registered")
    return Check(
        "nvidia runtime", True,
        "not registered: GPU instance types (ml.g*, ml.p*) will be refused; CPU types work",
        "only for GPUs: see scripts/gpu-smoke and docs/gpu.md",
    )


def check_registry() -> Check:
    """Debian's Distribution registry, used for ECR pushes."""
    if shutil.which("docker-registry"):
        return Check("registry", True, "docker-registry installed")
    return Check("registry", False, "docker-registry not installed", "sudo apt-get install -y docker-registry")


def check_s3(settings: Settings) -> Check:
    """The S3 store can run (MinIO binary) or answers (an external S3)."""
    if settings.s3_kind == "minio":
        from emulator.objectstore.minio import find_minio_binary

        binary = find_minio_binary(settings)
        if binary is None:
            return Check("s3", False, "the default store (MinIO run by the emulator) has no MinIO binary",
                         f"{_script('build-minio')} --binary-only   (or SMEMU_MINIO_BINARY, SMEMU_S3_ENDPOINT, "
                         "or SMEMU_S3_STORE=memory: not durable)")
        return Check("s3", True, f"MinIO run by the emulator ({binary}), data in {settings.s3_data_dir}")
    if settings.s3_kind == "memory":
        return Check("s3", True, "moto's in-memory S3 (SMEMU_S3_STORE=memory): NOT durable")
    url = settings.s3_endpoint or settings.endpoint_url
    try:
        with urllib.request.urlopen(url + "/", timeout=3) as response:  # noqa: S310 - loopback URL from config
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except Exception as exc:
        fix = "smemu serve" if not settings.s3_endpoint else f"start the S3 server at {url}"
        return Check("s3", False, f"{url} not reachable: {exc}", fix)
    return Check("s3", True, f"{url} answers (HTTP {status})")


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in dependency order."""
    from emulator.runtime.docker_backend import configure_gpu_runtime

    configure_gpu_runtime(settings.gpu_runtime)  # the engine's GPU check looks for this runtime
    found, engine = check_engine()
    return [
        found,
        check_base_image(engine, settings),
        check_registry(),
        check_nvidia(engine, settings.gpu_runtime),
        check_s3(settings),
    ]
