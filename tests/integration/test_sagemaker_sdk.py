"""The SageMaker Python SDK (v2) runs fit, deploy and predict against the emulator unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sample_images import build_sample_image

pytest.importorskip("sagemaker", reason="the SageMaker SDK is a test dependency (setup.cfg [test])")

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.one_store  # the SDK flow, not the store, is under test; deploy alone waits 30 s
def test_estimator_fit_deploy_predict(
    endpoint_url: str, role_arn: str, bucket: str, s3_client: Any, sagemaker_client: Any, tmp_path: Path
) -> None:
    train_image = build_sample_image("training")
    serve_image = build_sample_image("serving")
    s3_client.put_object(Bucket=bucket, Key="train/rows.csv", Body=b"1,2\n3,4\n")
    config = tmp_path / "sagemaker-config.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  PythonSDK:\n"
        "    Modules:\n"
        f"      Session: {{DefaultS3Bucket: {bucket}}}\n"
        "      TelemetryOptOut: true\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "tests.integration.sdk.fit_deploy_predict", train_image, serve_image,
         role_arn, bucket],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=400,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 1, completed.stdout[-3000:]
    seen = json.loads(results[0][len("RESULT "):])
    assert seen["status"] == "Completed"
    assert seen["model_data"].startswith(f"s3://{bucket}/sdk-output/")
    assert seen["model_data"].endswith("/output/model.tar.gz")
    assert seen["metrics"] == ["train:loss"]
    assert seen["answer"]["body"] == "1,2,3"
    assert seen["answer"]["content_type"] == "text/csv"
    # logs=True streamed the container's output from CloudWatch Logs into the SDK's stdout
    assert "epoch 1/1" in completed.stdout
