"""Testing your own SageMaker containers with the emulator's pytest plugin: copy this file.

Installing sagemaker-emulator (``pip install sagemaker-emulator``) installs the plugin; a
Docker engine is the only other need. The session's emulator starts on first use, on a free
loopback port with a fresh home and an in-memory S3, and everything it ran is removed at the
end. Nothing talks to AWS.

Point the two images at yours (they must exist locally, or in the emulator's ECR)::

    TRAINING_IMAGE=my-trainer:latest SERVING_IMAGE=my-model-server:latest pytest test_my_container.py

The project's own test suite runs this file against its sample containers.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

TRAINING_IMAGE = os.environ.get("TRAINING_IMAGE", "my-trainer:latest")
SERVING_IMAGE = os.environ.get("SERVING_IMAGE", "my-model-server:latest")


@pytest.fixture(scope="session")
def smemu_emulator_env() -> dict[str, str]:
    """Settings of the session's emulator: a container that ignores SIGTERM is killed after
    10 s here instead of SageMaker's 120 s (training) and 30 s (endpoints)."""
    return {"SMEMU_TRAINING_STOP_GRACE_SECONDS": "10", "SMEMU_CONTAINER_STOP_GRACE_SECONDS": "10"}


@pytest.fixture()
def training_data(tmp_path: Path) -> Path:
    """A small channel; use your own data folder instead."""
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "part-0.csv").write_text("1.0,2.0\n3.0,4.0\n")
    return folder


def test_the_training_image_follows_sagemakers_contract(smemu_contract: Any, training_data: Path) -> None:
    """Runs the image as SageMaker would (train, hyperparameters, channels, failure, SIGTERM) and
    fails with a table of the broken rules, each with its evidence and documentation page."""
    smemu_contract.assert_conforms(TRAINING_IMAGE, "training", channels={"train": str(training_data)},
                                   hyperparameters={"epochs": "1"})


def test_the_inference_image_follows_sagemakers_contract(smemu_contract: Any) -> None:
    """/ping, /invocations per content type, concurrency, 6 MiB bodies, ports, SIGTERM."""
    smemu_contract.assert_conforms(SERVING_IMAGE, "serving", content_types=("application/json", "text/csv"))


def test_training_writes_a_model(smemu_training_job: Any, smemu_s3_client: Any, training_data: Path) -> None:
    """A training job with your hyperparameters and data, and the model it uploads."""
    job = smemu_training_job(TRAINING_IMAGE, hyperparameters={"epochs": "1"}, channels={"train": str(training_data)})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    bucket, _, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").partition("/")
    archive = smemu_s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert [m.name for m in tar.getmembers() if m.isfile()], "the model archive is empty"


def test_the_endpoint_answers(smemu_endpoint: Any) -> None:
    """An endpoint of your image, invoked through the SageMaker runtime API."""
    endpoint = smemu_endpoint(SERVING_IMAGE)
    answer = endpoint.invoke(json.dumps({"instances": [[1.0, 2.0]]}), content_type="application/json")
    assert answer, "the model answered with an empty body"


def test_the_sagemaker_sdk_trains_against_the_emulator(smemu_sagemaker_session: Any, smemu_role_arn: str,
                                                      smemu_bucket: str, training_data: Path) -> None:
    """The SageMaker Python SDK, unchanged: telemetry is off and every call stays on this machine."""
    from sagemaker.estimator import Estimator

    inputs = smemu_sagemaker_session.upload_data(str(training_data), bucket=smemu_bucket, key_prefix="sdk/train")
    estimator = Estimator(image_uri=TRAINING_IMAGE, role=smemu_role_arn, instance_count=1,
                          instance_type="ml.m5.large", hyperparameters={"epochs": "1"},
                          output_path=f"s3://{smemu_bucket}/sdk/output", sagemaker_session=smemu_sagemaker_session)
    estimator.fit({"train": inputs}, logs=False)
    assert estimator.model_data.endswith("/output/model.tar.gz")
