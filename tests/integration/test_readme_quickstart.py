"""The README's quick start runs as written (against the session emulator): the job completes
and prints its artifacts; with an image that does not exist it prints the FailureReason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unique_name
from tests.integration.sample_images import build_sample_image

pytestmark = [pytest.mark.docker, pytest.mark.one_store]
README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start() -> str:
    """The quick start's Python block."""
    section = README.read_text().split("## Quick start with boto3", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's quick start has no Python block"
    assert "docker build -t smemu-sample-training" in section
    return match.group(1)


def run_quick_start(code: str, endpoint_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint_url, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env,
                          check=False)


def personalised(code: str, image: str) -> tuple[str, str]:
    """The quick start with names of its own (the session emulator is shared) and ``image``; and its bucket."""
    bucket = unique_name("my-bucket")
    names = {"smemu-sample-training:latest": image, '"first-job"': f'"{unique_name("first-job")}"',
             "my-bucket": bucket, '"SageMakerRole"': f'"{unique_name("SageMakerRole")}"'}
    for old, new in names.items():
        assert old in code, f"the quick start no longer says {old}"
        code = code.replace(old, new)
    return code, bucket


def test_the_quick_start_completes_and_a_failing_one_says_why(endpoint_url: str) -> None:
    image = build_sample_image("training")  # what the README's `docker build` makes, under its content tag
    code, bucket = personalised(quick_start(), image)
    done = run_quick_start(code, endpoint_url)
    assert done.returncode == 0, done.stderr
    status, artifacts = done.stdout.splitlines()[:2]
    assert status.strip() == "Completed"
    assert artifacts.startswith(f"s3://{bucket}/output/") and "'MetricName': 'train_loss'" in artifacts

    code, _bucket = personalised(quick_start(), "no-such-image-zz:latest")
    failed = run_quick_start(code, endpoint_url)
    assert failed.returncode == 0, failed.stderr
    first_line = failed.stdout.splitlines()[0]
    assert first_line.startswith("Failed ") and "no-such-image-zz" in first_line and "smemu ecr push" in first_line
