"""The GPU smoke test's trainer: what a SageMaker training container sees of its GPUs.

Runs inside the training container as ``train`` (the image maker, image.py, installs it with
a shebang naming the image's Python). It records what the container sees -- the NVIDIA
variables, /dev/nvidia* nodes, ``nvidia-smi`` and PyTorch's view of CUDA, with one matrix
product on the GPU -- in /opt/ml/model/model.json, so the model artifact proves it.

``train --probe FILE`` runs the same PyTorch work on the host and writes the modules and
shared libraries it loaded, from which image.py builds the smallest image that can do it.
Standard library plus (optionally) torch; never fails the job: the verdict is in model.json.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODEL = Path("/opt/ml/model")
CONFIG = Path("/opt/ml/input/config")
SMI_PLACES = ("/usr/bin/nvidia-smi", "/usr/local/nvidia/bin/nvidia-smi", "/usr/local/bin/nvidia-smi")


def log(message: str) -> None:
    print(f"[gpu-smoke trainer] {message}", flush=True)


def torch_report(run_matmul: bool = True) -> dict[str, Any]:
    """PyTorch's view of CUDA, with one matrix product on the first GPU."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is the answer
        return {"imported": False, "error": f"{type(exc).__name__}: {exc}"}
    report: dict[str, Any] = {"imported": True, "version": torch.__version__, "cuda_build": torch.version.cuda}
    try:
        report["cuda_available"] = bool(torch.cuda.is_available())
        report["device_count"] = torch.cuda.device_count()
        devices = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append({"index": index, "name": props.name, "capability": f"{props.major}.{props.minor}",
                            "memory_gib": round(props.total_memory / 1024**3, 1),
                            "multiprocessors": props.multi_processor_count})
        report["devices"] = devices
        if run_matmul and report["cuda_available"]:
            a = torch.randn(4096, 4096, device="cuda")
            b = torch.randn(4096, 4096, device="cuda")
            torch.cuda.synchronize()
            start = time.perf_counter()
            c = a @ b
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            expected = (a[:8].double() @ b.double()[:, :8]).cpu()
            report["matmul"] = {"shape": list(c.shape), "device": str(c.device), "seconds": round(seconds, 4),
                                "max_abs_error_vs_fp64": float((c[:8, :8].double().cpu() - expected).abs().max())}
    except Exception as exc:  # noqa: BLE001
        report["error"] = f"{type(exc).__name__}: {exc}"
    return report


def smi_report() -> dict[str, Any]:
    smi = shutil.which("nvidia-smi") or next((p for p in SMI_PLACES if os.access(p, os.X_OK)), None)
    if smi is None:
        return {"found": False}
    report: dict[str, Any] = {"found": True, "path": smi}
    for key, args in (("list", ["-L"]), ("query", ["--query-gpu=index,name,uuid,memory.total,driver_version",
                                                   "--format=csv,noheader"])):
        try:
            done = subprocess.run([smi, *args], capture_output=True, text=True, timeout=60, check=False)
            report[key] = {"returncode": done.returncode, "stdout": done.stdout.strip(),
                           "stderr": done.stderr.strip()[-2000:]}
        except (OSError, subprocess.SubprocessError) as exc:
            report[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def probe(out: str) -> int:
    """On the host: do the torch work, then list what was loaded (see image.py)."""
    report = torch_report()
    modules = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
    libraries = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                libraries.add(parts[5].strip().removesuffix(" (deleted)"))
    Path(out).write_text(json.dumps({"torch": report, "modules": modules, "libraries": sorted(libraries),
                                     "executable": sys.executable, "prefix": sys.prefix,
                                     "version": f"python{sys.version_info.major}.{sys.version_info.minor}",
                                     "base_prefix": sys.base_prefix, "path": sys.path}, indent=1))
    log(f"probe: torch {report.get('version')} cuda_available={report.get('cuda_available')}; "
        f"{len(modules)} modules, {len(libraries)} mapped files")
    return 0


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--probe":
        return probe(sys.argv[2])
    hyperparameters = {}
    if (CONFIG / "hyperparameters.json").exists():
        hyperparameters = json.loads((CONFIG / "hyperparameters.json").read_text())
    resource = json.loads((CONFIG / "resourceconfig.json").read_text()) if (CONFIG / "resourceconfig.json").exists() \
        else {}
    report: dict[str, Any] = {
        "instance_type": resource.get("current_instance_type"),
        "hostname": os.uname().nodename,
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("NVIDIA_", "CUDA_", "SMEMU_FAKE")) or k in ("LD_LIBRARY_PATH", "PATH")},
        "dev_nodes": sorted(glob.glob("/dev/nvidia*")),
        "nvidia_smi": smi_report(),
        "cgroup_memory_limit": _read_first(("/sys/fs/cgroup/memory.max",
                                            "/sys/fs/cgroup/memory/memory.limit_in_bytes")),
        "hyperparameters": hyperparameters,
    }
    if hyperparameters.get("expect") == "fake":
        fake = Path("/usr/local/nvidia-fake/gpu")
        report["fake_gpu_file"] = fake.read_text().strip() if fake.exists() else None
    report["torch"] = torch_report()
    time.sleep(float(hyperparameters.get("linger_seconds", "2")))  # lets the driver inspect the container
    MODEL.mkdir(parents=True, exist_ok=True)
    (MODEL / "model.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    for line in json.dumps(report, indent=1, sort_keys=True).splitlines():
        log(line)
    return 0


def _read_first(paths: tuple[str, ...]) -> str | None:
    for path in paths:
        try:
            return Path(path).read_text().strip()
        except OSError:
            continue
    return None


if __name__ == "__main__":
    sys.exit(main())
