"""Run the GPU smoke training job through a running emulator and judge what the container saw.

    python drive.py --endpoint http://127.0.0.1:PORT --image TAG [--instance-type ml.g5.xlarge]
                    [--expect gpu|fake] [--out DIR]

CreateTrainingJob (boto3, as any user would) -> wait -> download model.tar.gz -> print the
trainer's model.json. While the job runs, the container's HostConfig is read from the engine
(DOCKER_HOST) to show the device request and runtime the emulator sent. Exit status 0 only
when the container saw what ``--expect`` asks for: ``gpu``, a CUDA device in nvidia-smi and
torch.cuda with a matrix product done on it; ``fake`` (the rehearsal without a GPU), the
fake device that the rehearsal's CDI spec injects.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config


def client(service: str, endpoint: str) -> Any:
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"max_attempts": 2}))


def watch_container(job: str, seen: dict[str, Any], done: threading.Event) -> None:
    """Record the job's container configuration while it exists (docker-py, DOCKER_HOST)."""
    import docker

    engine = docker.from_env()
    while not done.is_set() and not seen:
        for container in engine.containers.list(all=True, filters={"label": f"smemu.name={job}"}):
            host = container.attrs["HostConfig"]
            env = [e for e in container.attrs["Config"].get("Env") or [] if e.startswith("NVIDIA_")]
            seen.update({"Runtime": host.get("Runtime"), "DeviceRequests": host.get("DeviceRequests"),
                         "Memory": host.get("Memory"), "NanoCpus": host.get("NanoCpus"),
                         "NetworkMode": host.get("NetworkMode"), "Env(NVIDIA_*)": env})
            break
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--instance-type", default="ml.g5.xlarge")
    parser.add_argument("--expect", choices=("gpu", "fake"), default="gpu")
    parser.add_argument("--out", default=None)
    parser.add_argument("--timeout", type=float, default=420.0)
    args = parser.parse_args()

    sagemaker, s3, iam, logs = (client(s, args.endpoint) for s in ("sagemaker", "s3", "iam", "logs"))
    bucket = f"gpu-smoke-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    role = iam.create_role(RoleName=f"smoke-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "sagemaker.amazonaws.com"}}]}))["Role"]["Arn"]
    name = f"gpu-smoke-{uuid.uuid4().hex[:8]}"
    seen: dict[str, Any] = {}
    done = threading.Event()
    watcher = threading.Thread(target=watch_container, args=(name, seen, done), daemon=True)
    watcher.start()
    started = time.monotonic()
    sagemaker.create_training_job(
        TrainingJobName=name, RoleArn=role,
        AlgorithmSpecification={"TrainingImage": args.image, "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        ResourceConfig={"InstanceType": args.instance_type, "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": int(args.timeout)},
        HyperParameters={"expect": args.expect, "linger_seconds": "2"},
        EnableNetworkIsolation=True,  # the trainer needs no network; a bundle's engine has no bridge
    )
    print(f"drive.py: CreateTrainingJob {name} on {args.instance_type} with {args.image}", flush=True)
    job: dict[str, Any] = {}
    while time.monotonic() - started < args.timeout + 60:
        job = sagemaker.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(1)
    done.set()
    print(f"drive.py: {job.get('TrainingJobStatus')} / {job.get('SecondaryStatus')} after "
          f"{time.monotonic() - started:.0f} s; transitions "
          f"{[t['Status'] for t in job.get('SecondaryStatusTransitions', [])]}", flush=True)
    if job.get("FailureReason"):
        print(f"drive.py: FailureReason: {job['FailureReason']}", flush=True)
    print(f"drive.py: the training container as the engine saw it: {json.dumps(seen, sort_keys=True)}", flush=True)
    try:
        streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                            logStreamNamePrefix=f"{name}/")["logStreams"]
        for stream in streams:
            events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                         logStreamName=stream["logStreamName"], startFromHead=True)["events"]
            print(f"drive.py: CloudWatch {stream['logStreamName']}: {len(events)} lines (last 5 below)")
            for event in events[-5:]:
                print(f"    {event['message']}")
    except Exception as exc:  # noqa: BLE001 - logs only decorate the verdict
        print(f"drive.py: could not read the job's logs: {exc}")
    if job.get("TrainingJobStatus") != "Completed":
        print("GPU SMOKE: FAIL (the job did not complete)")
        return 1
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    key = artifact.split(f"s3://{bucket}/", 1)[1]
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        member = archive.extractfile("model.json")
        assert member is not None
        report = json.loads(member.read())
    print(f"drive.py: {artifact} ({len(body)} bytes) holds model.json:")
    print(json.dumps(report, indent=2, sort_keys=True))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "model.json").write_text(json.dumps(report, indent=2, sort_keys=True))
        Path(args.out, "model.tar.gz").write_bytes(body)
        Path(args.out, "container.json").write_text(json.dumps(seen, indent=2, sort_keys=True))
    verdict = judge(report, seen, args.expect)
    print(("GPU SMOKE: PASS " if not verdict else "GPU SMOKE: FAIL ") + "; ".join(verdict or ["all checks held"]))
    return 0 if not verdict else 1


def judge(report: dict[str, Any], seen: dict[str, Any], expect: str) -> list[str]:
    """What is missing from the container's view (empty: all good)."""
    problems = []
    requests = seen.get("DeviceRequests") or []
    if not requests or ["gpu"] not in (requests[0].get("Capabilities") or []):
        problems.append(f"no GPU device request on the container ({seen})")
    if expect == "fake":
        listed = (report.get("nvidia_smi") or {}).get("list") or {}
        if listed.get("returncode") != 0 or "FAKE" not in listed.get("stdout", ""):
            problems.append(f"the stand-in nvidia-smi did not answer: {listed}")
        if report.get("fake_gpu_file") is None:
            problems.append("the fake CDI device's file is not in the container")
        if "/dev/nvidia0" not in report.get("dev_nodes", []):
            problems.append("/dev/nvidia0 was not injected")
        return problems
    smi = report.get("nvidia_smi") or {}
    if (smi.get("list") or {}).get("returncode") != 0 or "GPU 0" not in (smi.get("list") or {}).get("stdout", ""):
        problems.append(f"nvidia-smi -L did not list a GPU: {smi}")
    torch = report.get("torch") or {}
    if not torch.get("cuda_available"):
        problems.append(f"torch.cuda.is_available() is not True: {torch}")
    elif not (torch.get("matmul") or {}).get("device", "").startswith("cuda"):
        problems.append(f"the matrix product did not run on the GPU: {torch}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
