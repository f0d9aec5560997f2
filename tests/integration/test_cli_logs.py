"""`smemu logs` prints a finished job's container output from CloudWatch Logs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from emulator.config import Settings
from tests.conftest import unique_name
from tests.integration.test_training_helpers import job_request, wait_terminal

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]


@pytest.mark.one_store
def test_smemu_logs_prints_a_training_jobs_output(sagemaker_client: Any, role_arn: str, training_image: str,
                                                  bucket: str, emulator_settings: Settings) -> None:
    name = unique_name("train-logs")
    sagemaker_client.create_training_job(**job_request(name, training_image, role_arn, bucket,
                                                       HyperParameters={"epochs": "2"}))
    assert wait_terminal(sagemaker_client, name)["TrainingJobStatus"] == "Completed"
    completed = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "logs", name, "--port", str(emulator_settings.port)],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert any(line.startswith(f"{name}/algo-1-") and "epoch 1/2" in line for line in lines), completed.stdout
    assert any("epoch 2/2" in line for line in lines)


def test_smemu_logs_of_an_unknown_job_fails(emulator_settings: Settings, emulator: Any) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "logs", "no-such-job-zz", "--port", str(emulator_settings.port)],
        capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 1
    assert completed.stdout == ""
