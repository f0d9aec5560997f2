"""A training job on the project's local Kubernetes cluster versus on Docker, and the cluster's costs.

    sudo .venv/bin/python benchmarks/kubernetes_training.py [--jobs 3] [--hosts 2]

Measures, printed as tables (measured, not asserted):

* **the cluster**: `scripts/kube up` wall time (a cached build; "already running" when another
  session holds it), the resident memory of its processes, and a first pod's time from
  ``start`` to its exit through the backend (the helper image, ``true``);
* **a training job**: CreateTrainingJob until Completed for the same 2-host job (the sample
  trainer, ShardedByS3Key data) on two emulators in this process, one per runtime, run
  alternately; the ratio is Kubernetes over Docker.

The cluster is left running only if another session holds it (scripts/kube --holder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.config import KubernetesSettings, load_settings
from tests.conftest import create_sagemaker_role, free_port, make_client
from tests.integration.sample_images import build_sample_image
from tests.integration.test_training_helpers import job_request, s3_channel, wait_terminal


def cluster_up() -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run([str(ROOT / "scripts" / "kube"), "up", "--holder", str(os.getpid())],
                          stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout.strip().splitlines()[-1], time.perf_counter() - started


def cluster_memory_mib() -> float:
    total = 0
    for pid_file in Path("/run/smemu-kube/pids").iterdir():
        status = Path(f"/proc/{pid_file.read_text().strip()}/status")
        if status.exists():
            rss = next(line for line in status.read_text().splitlines() if line.startswith("VmRSS"))
            total += int(rss.split()[1])
    return total / 1024


def first_pod_seconds(settings: Any) -> float:
    from emulator.runtime.kubernetes_backend import KubernetesBackend
    from emulator.runtime.spec import ContainerSpec

    backend = KubernetesBackend(settings)
    labels = {"smemu.kind": "benchmark", "smemu.name": "first-pod", "smemu.home": "benchmark"}
    started = time.perf_counter()
    pod = backend.start(ContainerSpec(name="smemu-benchmark-first-pod", image=settings.kubernetes.helper_image,
                                      entrypoint=["true"], labels=labels))
    backend.wait(pod, timeout=120)
    elapsed = time.perf_counter() - started
    backend.remove_labelled(labels)
    return elapsed


def run_job(url: str, image: str, hosts: int, number: int) -> float:
    sagemaker, s3 = make_client("sagemaker", url), make_client("s3", url)
    role = create_sagemaker_role(url)
    bucket = f"bench-{os.getpid()}-{number}"
    s3.create_bucket(Bucket=bucket)
    for part in range(4):
        s3.put_object(Bucket=bucket, Key=f"shards/part-{part}.txt", Body=b"x" * 1024)
    name = f"bench-{os.getpid()}-{number}"
    started = time.perf_counter()
    sagemaker.create_training_job(**job_request(
        name, image, role, bucket,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": hosts, "VolumeSizeInGB": 1},
        HyperParameters={"peer_check": "1"} if hosts > 1 else {},
        InputDataConfig=[s3_channel("train", f"s3://{bucket}/shards/",
                                    source={"S3DataDistributionType": "ShardedByS3Key"})]))
    job = wait_terminal(sagemaker, name, timeout=600)
    elapsed = time.perf_counter() - started
    if job["TrainingJobStatus"] != "Completed":
        raise RuntimeError(f"{name}: {job['TrainingJobStatus']} {job.get('FailureReason')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=2)
    args = parser.parse_args()
    from emulator.server import EmulatorServer

    kubeconfig, up_seconds = cluster_up()
    os.environ["KUBECONFIG"] = kubeconfig
    image = build_sample_image("training")
    with tempfile.TemporaryDirectory() as docker_home, tempfile.TemporaryDirectory() as kube_home:
        base = load_settings({})
        docker_settings = base.with_overrides(home=Path(docker_home), port=free_port())
        kube_settings = base.with_overrides(home=Path(kube_home), port=free_port(), runtime="kubernetes",
                                            kubernetes=KubernetesSettings(namespace=f"smemu-bench-{os.getpid()}",
                                                                          request_fraction=0.05))
        pod_seconds = first_pod_seconds(kube_settings)
        memory = cluster_memory_mib()
        servers = {"docker": EmulatorServer(docker_settings).start(),
                   "kubernetes": EmulatorServer(kube_settings).start()}
        times: dict[str, list[float]] = {name: [] for name in servers}
        try:
            for runtime, server in servers.items():  # a warm-up each: image loads, first connections
                run_job(f"http://127.0.0.1:{server.port}", image, args.hosts, 1000)
            for number in range(args.jobs):
                for runtime, server in servers.items():
                    times[runtime].append(run_job(f"http://127.0.0.1:{server.port}", image, args.hosts, number))
        finally:
            for server in servers.values():
                server.stop()
    subprocess.run([str(ROOT / "scripts" / "kube"), "down", "--holder", str(os.getpid())], check=False)

    print("\nlocal cluster (scripts/kube)")
    print(f"  {'scripts/kube up (cached build)':<34}{up_seconds:8.1f} s")
    print(f"  {'resident memory of its processes':<34}{memory:8.0f} MiB")
    print(f"  {'a first pod, start to exit':<34}{pod_seconds:8.1f} s")
    print(f"\n{args.hosts}-host training job, CreateTrainingJob to Completed ({args.jobs} runs each)")
    print(f"  {'runtime':<12}{'median s':>10}{'min s':>10}{'max s':>10}")
    for runtime, values in times.items():
        print(f"  {runtime:<12}{statistics.median(values):10.2f}{min(values):10.2f}{max(values):10.2f}")
    ratio = statistics.median(times["kubernetes"]) / statistics.median(times["docker"])
    print(f"  kubernetes / docker: {ratio:.2f}x")


if __name__ == "__main__":
    main()
