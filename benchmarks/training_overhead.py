"""What a training job costs on top of the container itself, and how fast channels stage.

    python benchmarks/training_overhead.py [--jobs 5] [--staging-mib 1024]

Starts ``smemu serve`` as its own process and measures, against the same image:

* **overhead of a no-op trainer**: from CreateTrainingJob to the moment the job's record says
  Completed (its LastModifiedTime; DescribeTrainingJob is polled every 50 ms, so the polling
  neither adds its interval nor steals the CPU the job needs), for a job whose container runs
  ``true``, versus the same container created, started, waited for and removed with
  docker-py directly. The two alternate, run after run, and the medians are compared. The difference is the
  emulator's: config files, the per-job scratch folder, log following, copying the model and
  output folders out, packing and uploading model.tar.gz and output.tar.gz, cleanup.
* **File-mode staging**: the Downloading phase of a job whose channel is one object of
  ``--staging-mib`` MiB (from SecondaryStatusTransitions), versus a plain s3transfer
  ``download_file`` of the same object from the same store.

Measured, not asserted (DESIGN.md): the aims are under 1 s of overhead and staging at
80 % or more of the plain download's speed. On 2 cores the client, the emulator, the S3
store and the container share the CPUs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import docker
from botocore.exceptions import BotoCoreError, ClientError

from benchmarks.harness import describe_machine, machine
from tests.conftest import create_sagemaker_role, free_port, make_client
from tests.integration.sample_images import build_sample_image


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SMEMU_HOME": str(home), "SMEMU_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            make_client("sagemaker", f"http://127.0.0.1:{port}").list_training_jobs()
            return process
        except (BotoCoreError, ClientError):
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("smemu serve did not answer within 60 s")


def run_job(sm: Any, name: str, image: str, bucket: str, role: str, **members: Any) -> tuple[float, dict[str, Any]]:
    started = time.time()
    sm.create_training_job(
        TrainingJobName=name, RoleArn=role,
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File", "ContainerEntrypoint": ["true"]},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}, **members)
    while True:
        job = sm.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return job["LastModifiedTime"].timestamp() - started, job
        time.sleep(0.05)


def bare_container(client: docker.DockerClient, image: str, network: str | None = None) -> float:
    started = time.perf_counter()
    container = client.containers.create(image, entrypoint=["true"], labels={"smemu.kind": "bench"},
                                         network=network)
    container.start()
    container.wait()
    container.remove(v=True)
    return time.perf_counter() - started


def gateway_network(client: docker.DockerClient) -> str | None:
    """The shared network the emulator puts single-host containers on (the container gateway's)."""
    names = sorted(n.name for n in client.networks.list() if n.name.startswith("smemu-containers"))
    return names[0] if names else None


def phase_seconds(job: dict[str, Any], status: str) -> float:
    entry = next(t for t in job["SecondaryStatusTransitions"] if t["Status"] == status)
    return float((entry["EndTime"] - entry["StartTime"]).total_seconds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--staging-mib", type=int, default=1024)
    args = parser.parse_args()

    info = machine()
    image = build_sample_image("training")
    client = docker.from_env()
    home = Path(tempfile.mkdtemp(prefix="smemu-bench-"))
    port = free_port()
    server = start_server(home, port)
    url = f"http://127.0.0.1:{port}"
    try:
        sm, s3 = make_client("sagemaker", url), make_client("s3", url)
        s3.create_bucket(Bucket="bench")
        role = create_sagemaker_role(url)
        bare, on_network, jobs = [], [], []
        for i in range(args.jobs):  # alternating, so a busy moment of the machine hits both
            bare.append(bare_container(client, image))
            jobs.append(run_job(sm, f"noop-{i}", image, "bench", role))
            network = gateway_network(client)
            if network is not None:
                on_network.append(bare_container(client, image, network))
        assert all(job["TrainingJobStatus"] == "Completed" for _, job in jobs), jobs[-1][1].get("FailureReason")
        job_p50, bare_p50 = statistics.median(t for t, _ in jobs), statistics.median(bare)
        print(describe_machine(info))
        print(f"no-op trainer: job {job_p50:.3f} s (p50 of {args.jobs}), bare container {bare_p50:.3f} s, "
              f"overhead {job_p50 - bare_p50:.3f} s")
        if on_network:
            network_p50 = statistics.median(on_network)
            print(f"  the same bare container on the emulator's container network: {network_p50:.3f} s "
                  f"(overhead over it {job_p50 - network_p50:.3f} s; joining that network is what lets a "
                  "container reach the emulator's gateway)")
        for status in ("Starting", "Downloading", "Training", "Uploading"):
            print(f"  {status:<12} {statistics.median(phase_seconds(j, status) for _, j in jobs):.3f} s")

        size = args.staging_mib * 1024 * 1024
        with tempfile.TemporaryDirectory() as scratch:
            blob = Path(scratch) / "blob"
            with blob.open("wb") as handle:
                handle.truncate(size)  # zeros: the store and the network do the same work for any bytes
            s3.upload_file(str(blob), "bench", "big/blob.bin")
            blob.unlink()
            started = time.perf_counter()
            s3.download_file("bench", "big/blob.bin", str(Path(scratch) / "plain"))
            plain = time.perf_counter() - started
        _, job = run_job(sm, "staging", image, "bench", role, InputDataConfig=[{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bench/big/"}}}])
        staged = phase_seconds(job, "Downloading")
        print(f"staging {args.staging_mib} MiB: job Downloading {staged:.2f} s, plain s3transfer {plain:.2f} s, "
              f"speed {plain / staged * 100:.0f} % of plain")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
