"""`smemu status` and every case of `smemu logs`, run as the real command against the session
emulator: a finished job, following a job until it completes or fails, an endpoint (followed
until it is deleted), an unknown name, AWS_ENDPOINT_URL instead of flags, and the kinds whose
records other services write (processing, transform, tuning)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from emulator import cloudwatch
from emulator.config import Settings
from tests.conftest import unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import Endpoints, poll
from tests.integration.test_training_helpers import job_request, wait_terminal

pytest_plugins = ["tests.integration.test_training_helpers"]


def smemu(*argv: str, port: int | None = None, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``smemu`` as a user would (``python -m emulator.cli``), without AWS_ENDPOINT_URL unless given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "SMEMU_"))}
    environ.update(env or {})
    command = [sys.executable, "-m", "emulator.cli", *argv, *(["--port", str(port)] if port else [])]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environ, check=False)


def stderr_last_line(completed: subprocess.CompletedProcess[str]) -> str:
    return completed.stderr.strip().splitlines()[-1]


@pytest.mark.docker
@pytest.mark.one_store
def test_logs_of_a_finished_job_found_by_name(sagemaker_client: Any, role_arn: str, training_image: str,
                                              bucket: str, emulator_settings: Settings) -> None:
    name = unique_name("train-logs")
    sagemaker_client.create_training_job(**job_request(name, training_image, role_arn, bucket,
                                                       HyperParameters={"epochs": "2"}))
    assert wait_terminal(sagemaker_client, name)["TrainingJobStatus"] == "Completed"
    completed = smemu("logs", name, port=emulator_settings.port)  # no --kind: found among every kind
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert any(line.startswith(f"{name}/algo-1-") and "epoch 1/2" in line for line in lines), completed.stdout
    assert any("epoch 2/2" in line for line in lines)
    assert stderr_last_line(completed) == f"training job {name}: Completed"


@pytest.mark.docker
@pytest.mark.one_store
def test_follow_stops_when_the_job_completes_and_honours_aws_endpoint_url(
    sagemaker_client: Any, role_arn: str, training_image: str, bucket: str, endpoint_url: str,
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="emulator.events")
    name = unique_name("train-follow")
    sagemaker_client.create_training_job(**job_request(name, training_image, role_arn, bucket, HyperParameters={
        "epochs": "3", "epoch_seconds": "1"}))
    started = time.monotonic()
    completed = smemu("logs", name, "--kind", "training", "-f", env={"AWS_ENDPOINT_URL": endpoint_url})
    assert completed.returncode == 0, completed.stderr
    assert time.monotonic() - started >= 2.5  # it followed the job; it did not print once and leave
    assert sagemaker_client.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"
    epochs = [line.split(" ", 1)[1] for line in completed.stdout.splitlines() if " epoch " in f" {line}"]
    assert epochs == ["epoch 1/3", "epoch 2/3", "epoch 3/3"], completed.stdout  # each line exactly once
    assert stderr_last_line(completed) == f"training job {name}: Completed"
    lines = [r.getMessage() for r in caplog.records if r.name == "emulator.events" and name in r.getMessage()]
    assert lines == [f"training job {name}: started (InProgress, ml.m5.large x 1)", f"training job {name}: Completed"]


@pytest.mark.docker
@pytest.mark.one_store
def test_follow_of_a_failing_job_prints_its_failure_reason_and_exits_1(
    sagemaker_client: Any, role_arn: str, training_image: str, bucket: str, emulator_settings: Settings
) -> None:
    name = unique_name("train-fails")
    sagemaker_client.create_training_job(**job_request(name, training_image, role_arn, bucket, HyperParameters={
        "epochs": "1", "fail": "1", "failure_message": "the data is not what I expected"}))
    completed = smemu("logs", name, "--follow", port=emulator_settings.port)
    assert completed.returncode == 1
    reason = sagemaker_client.describe_training_job(TrainingJobName=name)["FailureReason"]
    assert "the data is not what I expected" in reason
    assert stderr_last_line(completed) == f"training job {name}: Failed: {reason}"
    assert "Traceback" not in completed.stderr


def test_unknown_names_and_a_stopped_emulator_get_one_clear_line(emulator_settings: Settings,
                                                                 emulator: Any) -> None:
    port = emulator_settings.port
    any_kind = smemu("logs", "no-such-job-zz", port=port)
    assert any_kind.returncode == 1 and any_kind.stdout == ""
    assert any_kind.stderr == f"smemu: there is no job or endpoint named no-such-job-zz on http://localhost:{port}\n"
    one_kind = smemu("logs", "no-such-job-zz", "--kind", "processing", "-f", port=port)
    assert one_kind.returncode == 1
    assert one_kind.stderr == (f"smemu: there is no processing job named no-such-job-zz on "
                               f"http://localhost:{port}\n")
    from tests.conftest import free_port

    nobody = f"http://127.0.0.1:{free_port()}"
    for argv in (("logs", "j"), ("status",)):
        down = smemu(*argv, env={"AWS_ENDPOINT_URL": nobody})
        assert down.returncode == 1 and down.stderr.startswith(f"smemu: no sagemaker-emulator answers on {nobody}")
        assert "Traceback" not in down.stderr


@pytest.fixture()
def seeded(emulator: Any, emulator_settings: Settings) -> Iterator[dict[str, str]]:
    """Records of a processing, a transform and a tuning job (with one training job), as the
    services that run them write them, and their CloudWatch lines: the views handle these kinds
    through the kinds table alone, which is what this exercises."""
    store, account, region = emulator.platform.store, emulator_settings.account_id, emulator_settings.region
    names = {kind: unique_name(kind) for kind in ("processing", "transform", "tuning")}
    child = f"{names['tuning']}-001-abcd1234"
    arn = lambda kind, name: f"arn:aws:sagemaker:{region}:{account}:{kind}/{name}"
    now = time.time()
    records = {
        ("processing-job", names["processing"]): {"ProcessingJobStatus": "Completed", "CreationTime": now,
                                                  "ProcessingJobName": names["processing"],
                                                  "ProcessingJobArn": arn("processing-job", names["processing"])},
        ("transform-job", names["transform"]): {"TransformJobStatus": "Failed", "CreationTime": now,
                                                "FailureReason": "ClientError: no input", "TransformJobName":
                                                names["transform"], "TransformJobArn": arn("transform-job",
                                                                                          names["transform"])},
        ("hyper-parameter-tuning-job", names["tuning"]): {
            "HyperParameterTuningJobStatus": "Completed", "CreationTime": now,
            "HyperParameterTuningJobName": names["tuning"],
            "HyperParameterTuningJobArn": arn("hyper-parameter-tuning-job", names["tuning"])},
        ("training-job", child): {"TrainingJobName": child, "TrainingJobStatus": "Completed", "CreationTime": now,
                                  "TrainingJobArn": arn("training-job", child),
                                  "TuningJobArn": arn("hyper-parameter-tuning-job", names["tuning"])},
    }
    for (kind, name), record in records.items():
        store.put(kind, name, record, now)
    lines = [
        ("/aws/sagemaker/ProcessingJobs", f"{names['processing']}/algo-1-1", "processing line"),
        ("/aws/sagemaker/TransformJobs", f"{names['transform']}/i-0abc-1", "transform line"),
        ("/aws/sagemaker/TrainingJobs", f"{child}/algo-1-1", "tuning trial line"),
    ]
    for group, stream, message in lines:
        cloudwatch.put_log_lines(account, region, group, stream, [(now, message)])
    try:
        yield names
    finally:
        for kind, name in records:
            store.delete(kind, name)


def test_logs_and_status_of_processing_transform_and_tuning_jobs(seeded: dict[str, str],
                                                                 emulator_settings: Settings) -> None:
    port = emulator_settings.port
    processing = smemu("logs", seeded["processing"], "-f", port=port)
    assert processing.returncode == 0, processing.stderr
    assert processing.stdout == f"{seeded['processing']}/algo-1-1 processing line\n"
    assert stderr_last_line(processing) == f"processing job {seeded['processing']}: Completed"
    transform = smemu("logs", seeded["transform"], "--kind", "transform", "-f", port=port)
    assert transform.returncode == 1 and "transform line" in transform.stdout
    assert stderr_last_line(transform) == f"transform job {seeded['transform']}: Failed: ClientError: no input"
    tuning = smemu("logs", seeded["tuning"], "--kind", "tuning", port=port)
    assert tuning.returncode == 0 and tuning.stdout.endswith(" tuning trial line\n")
    status = json.loads(smemu("status", "--json", port=port).stdout)
    kinds = {job["Name"]: job["Kind"] for job in status["Jobs"]}
    assert kinds[seeded["processing"]] == "processing-job" and kinds[seeded["tuning"]] == "hyper-parameter-tuning-job"
    table = smemu("status", port=port).stdout
    assert any(line.split()[:3] == ["transform-job", seeded["transform"], "Failed"] for line in table.splitlines())
    assert f"  {seeded['transform']}: ClientError: no input" in table


@pytest.mark.docker
def test_status_and_logs_of_an_endpoint_followed_until_it_is_deleted(
    sagemaker_client: Any, runtime_client: Any, s3_client: Any, bucket: str, role_arn: str,
    emulator_settings: Settings
) -> None:
    engine = docker.from_env()
    image = build_sample_image("serving", client=engine)
    port = emulator_settings.port
    with Endpoints(sagemaker_client, s3_client, bucket, image, engine, role_arn) as endpoints:
        name = endpoints.endpoint(endpoints.config(("AllTraffic", endpoints.model("m"), 1.0, 1)))
        runtime_client.invoke_endpoint(EndpointName=name, Body=b"{}", ContentType="application/json")

        status = json.loads(smemu("status", "--json", port=port).stdout)
        assert status["Emulator"]["Home"] == str(emulator_settings.home)
        (endpoint,) = [e for e in status["Endpoints"] if e["Name"] == name]
        (variant,) = endpoint["Fleet"]["Active"]["Variants"]
        (instance,) = variant["Instances"]
        (container,) = instance["Containers"]
        assert container["Address"].startswith("127.0.0.1:") and container["Port"] == 8080
        table = smemu("status", port=port)
        assert table.returncode == 0
        row = next(line for line in table.stdout.splitlines() if line.startswith(name))
        assert row.split()[:5] == [name, "InService", "AllTraffic", "(ml.m5.large)", instance["InstanceId"]]
        assert container["Address"] in row and f"home       {emulator_settings.home}" in table.stdout

        def logs_with_model_loaded() -> subprocess.CompletedProcess[str] | None:
            found = smemu("logs", name, "--kind", "endpoint", port=port)
            return found if "model loaded" in found.stdout else None

        printed = poll(logs_with_model_loaded, timeout=30, what="the endpoint's log lines")
        assert printed.returncode == 0
        assert all(line.startswith(f"AllTraffic/{instance['InstanceId']} ") for line in printed.stdout.splitlines())
        assert stderr_last_line(printed) == f"endpoint {name}: InService"

        follower = subprocess.Popen([sys.executable, "-m", "emulator.cli", "logs", name, "-f", "--port", str(port)],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert follower.stdout is not None
            first = follower.stdout.readline()  # it is following: the deletion below is what ends it
            assert first.startswith(f"AllTraffic/{instance['InstanceId']} ")
            endpoints.delete(name)
            endpoints.made.remove(name)
            poll(lambda: follower.poll() is not None, timeout=60, what="the follower to end after the deletion")
            out, err = follower.stdout.read(), follower.stderr.read()  # what readline() buffered too
        finally:
            if follower.poll() is None:
                follower.kill()
        assert follower.returncode == 0, err
        assert "model loaded" in first + out and err.strip().splitlines()[-1] == f"endpoint {name}: deleted"


@pytest.mark.docker
def test_logs_follow_a_real_processing_job_found_by_name(
    sagemaker_client: Any, role_arn: str, emulator_settings: Settings
) -> None:
    name = unique_name("proc-logs")
    image = build_sample_image("processing")
    sagemaker_client.create_processing_job(
        ProcessingJobName=name, RoleArn=role_arn,
        AppSpecification={"ImageUri": image, "ContainerArguments": ["--sleep-seconds", "2"]},
        ProcessingResources={"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                               "VolumeSizeInGB": 1}},
        StoppingCondition={"MaxRuntimeInSeconds": 120})
    followed = smemu("logs", name, "-f", port=emulator_settings.port)
    assert followed.returncode == 0, followed.stderr
    assert sagemaker_client.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "Completed"
    lines = followed.stdout.splitlines()
    assert any(line.startswith(f"{name}/algo-1-") and line.endswith("heartbeat 2") for line in lines), lines
    assert stderr_last_line(followed) == f"processing job {name}: Completed"
    status = json.loads(smemu("status", "--json", port=emulator_settings.port).stdout)
    (job,) = [j for j in status["Jobs"] if j["Name"] == name]
    assert (job["Kind"], job["Status"], job["Instances"]) == ("processing-job", "Completed", "ml.m5.large x 1")
