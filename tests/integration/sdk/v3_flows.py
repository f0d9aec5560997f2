"""The SageMaker Python SDK v3's flows, unchanged, against the emulator.

Run by tests/integration/test_sagemaker_sdk.py with the interpreter of the SDK v3 environment
(scripts/install-sdk-v3), configured only as a user configures the SDK (AWS_ENDPOINT_URL,
dummy credentials, a region, SAGEMAKER_USER_CONFIG_OVERRIDE). Prints one JSON line:

    RESULT {"trainer": {...}, "builder": {...}, "unprivileged": {...}}

``trainer``: ModelTrainer.train() of the sample training image; ``builder``: ModelBuilder
builds a model of the trained artifacts with the sample serving image, deploys it, invokes it
and deletes it; ``unprivileged``: a role without permission policies is refused by the SDK's
own role check (iam:SimulatePrincipalPolicy evaluates the role's real policies).

Usage: python -m tests.integration.sdk.v3_flows '<json: images, role, bare_role, bucket, prefix>'
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import time
import traceback
from typing import Any

from tests.integration.sdk import offline_guard  # noqa: F401  (first: guard the network)

import boto3  # noqa: E402
from sagemaker.serve import ModelBuilder  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.configs import Compute, InputData  # noqa: E402

INSTANCE = "ml.m5.large"


def _tar_members(uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return sorted(tar.getnames())


def train(cfg: dict[str, Any]) -> dict[str, Any]:
    trainer = ModelTrainer(training_image=cfg["images"]["training"], role=cfg["role"],
                           compute=Compute(instance_type=INSTANCE, instance_count=1),
                           hyperparameters={"epochs": 1, "model_name": "v3-model"},
                           base_job_name=f"{cfg['prefix']}-v3")
    start = time.monotonic()
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=f"s3://{cfg['bucket']}/train/")],
                  wait=True, logs=True)
    seconds = round(time.monotonic() - start, 2)
    job = trainer._latest_training_job  # the SDK's handle on the job it just ran
    job.refresh()
    artifacts = str(job.model_artifacts.s3_model_artifacts)
    return {"train_seconds": seconds, "name": job.training_job_name, "status": job.training_job_status,
            "secondary": [t.status for t in job.secondary_status_transitions], "model_data": artifacts,
            "model_members": _tar_members(artifacts)}


def build_deploy_invoke(cfg: dict[str, Any], model_data: str) -> dict[str, Any]:
    name = f"{cfg['prefix']}-v3-model"
    builder = ModelBuilder(image_uri=cfg["images"]["serving"], s3_model_data_url=model_data, role_arn=cfg["role"],
                           instance_type=INSTANCE)
    model = builder.build(model_name=name)
    start = time.monotonic()
    endpoint = builder.deploy(endpoint_name=f"{name}-ep", initial_instance_count=1, instance_type=INSTANCE)
    seconds = round(time.monotonic() - start, 2)
    answer = endpoint.invoke(body=b"9,8,7", content_type="text/csv")
    body = json.loads(answer.body.read())
    endpoint.delete()
    model.delete()
    return {"deploy_seconds": seconds, "endpoint": endpoint.endpoint_name,
            "variant": answer.invoked_production_variant, "answer": body}


def unprivileged(cfg: dict[str, Any]) -> dict[str, Any]:
    try:
        ModelTrainer(training_image=cfg["images"]["training"], role=cfg["bare_role"],
                     compute=Compute(instance_type=INSTANCE, instance_count=1), base_job_name=f"{cfg['prefix']}-bare")
    except Exception as exc:  # the SDK's RoleValidationError is what this flow is about
        return {"refused": True, "error": type(exc).__name__, "message": str(exc)}
    return {"refused": False}


def _run(flow: Any, *args: Any) -> dict[str, Any]:
    try:
        return {"ok": True, **flow(*args)}
    except Exception:  # reported per flow: one broken flow must not hide the others' results
        return {"ok": False, "error": traceback.format_exc()}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    results = {"unprivileged": _run(unprivileged, cfg), "trainer": _run(train, cfg)}
    model_data = results["trainer"].get("model_data") or cfg["model_data"]
    results["builder"] = _run(build_deploy_invoke, cfg, model_data)
    print("\nRESULT " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
