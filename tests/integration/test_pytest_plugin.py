"""The pytest plugin as a user's project meets it: plain ``pytest`` in a folder outside this
repository, the installed package's entry point, a real emulator, real containers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from tests.integration.sample_images import build_sample_image

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("SMEMU_BASE_IMAGE", "smemu-base/python:3.11")

OUTSIDE_TEST = '''
import os
import uuid
from pathlib import Path

TRUST = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
         '"Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}')
TRAIN = "from pathlib import Path; Path('/opt/ml/model/model.txt').write_text('trained'); print('done')"


def test_a_training_job_completes(smemu_boto3_session):
    Path(os.environ["SMEMU_TEST_REPORT"]).write_text(smemu_boto3_session.endpoint_url)
    sm = smemu_boto3_session.client("sagemaker")
    role = smemu_boto3_session.client("iam").create_role(
        RoleName="SageMakerRole", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    smemu_boto3_session.client("s3").create_bucket(Bucket="outside")
    name = f"outside-{uuid.uuid4().hex[:8]}"
    sm.create_training_job(
        TrainingJobName=name, RoleArn=role,
        AlgorithmSpecification={"TrainingImage": os.environ["SMEMU_TEST_IMAGE"], "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["python3", "-c", TRAIN]},
        OutputDataConfig={"S3OutputPath": "s3://outside/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    job = sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://outside/output/{name}/output/model.tar.gz"
'''


def plain_pytest(folder: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m pytest`` in ``folder`` with the installed package: nothing of this repository's config."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "PYTEST_"))}
    environment.update({"HOME": str(folder), "AWS_EC2_METADATA_DISABLED": "true", **(env or {})})
    environment.pop("PYTHONPATH", None)
    environment.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=folder, env=environment, capture_output=True, text=True, timeout=timeout,
                          check=False)


def test_a_test_file_outside_the_repository_runs_a_training_job_with_only_smemu_boto3_session(
        tmp_path: Path) -> None:
    project = tmp_path / "user-project"
    project.mkdir()
    (project / "test_outside.py").write_text(OUTSIDE_TEST)
    report = tmp_path / "endpoint-url.txt"
    done = plain_pytest(project, env={"SMEMU_TEST_IMAGE": BASE_IMAGE, "SMEMU_TEST_REPORT": str(report)})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    url = report.read_text()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":4570"), "a free port, not the default"
    # the session's emulator stopped with the session and left nothing on the engine
    host, port = url.removeprefix("http://").split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
    leftovers = [c.name for c in docker.from_env().containers.list(all=True, filters={"label": "smemu.kind"})
                 if c.labels.get("smemu.name", "").startswith("outside-")]
    assert leftovers == []


def test_the_documented_example_runs_against_the_sample_images(tmp_path: Path) -> None:
    """examples/test_my_container.py, copied into a project of its own, with the emulator in-process."""
    pytest.importorskip("sagemaker", reason="the example's SDK test needs the SageMaker SDK (setup.cfg [test])")
    project = tmp_path / "example-project"
    project.mkdir()
    shutil.copy(REPO / "examples" / "test_my_container.py", project)
    env = {"TRAINING_IMAGE": build_sample_image("training"), "SERVING_IMAGE": build_sample_image("serving"),
           "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    done = plain_pytest(project, "--smemu-emulator=in-process", "-rs", env=env)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout, done.stdout[-3000:]


def test_a_broken_container_fails_the_users_test_with_the_rule_table(tmp_path: Path) -> None:
    from tests.integration.sample_images import build_broken_image

    project = tmp_path / "broken-project"
    project.mkdir()
    (project / "test_contract.py").write_text(
        "import os\n\n"
        "def test_conforms(smemu_contract):\n"
        "    smemu_contract.assert_conforms(os.environ['IMAGE'], 'serving')\n")
    done = plain_pytest(project, env={"IMAGE": build_broken_image("serving", "serving.safe-port-range")})
    assert done.returncode == 1, done.stdout[-4000:]
    assert "serving.safe-port-range" in done.stdout and "FAIL" in done.stdout
    assert "inference-pipeline-real-time" in done.stdout
