"""A trivial fit(), a fit() of an 8-second job and a deploy() with the SageMaker SDK of this interpreter.

Run by benchmarks/sdk_flows.py in a fresh process per measurement, configured as a user
configures the SDK (environment variables and a sagemaker config file). Prints one line:

    TIMING {"sdk": "2.257.7", "fit": 5.3, "fit_8s": 9.1, "deploy": 31.2}

Usage: python benchmarks/sdk_probe.py '<json: images, role, bucket, prefix>'
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

INSTANCE = "ml.m5.large"


def v2(cfg: dict[str, Any]) -> dict[str, float]:
    from sagemaker.estimator import Estimator

    estimator = Estimator(image_uri=cfg["images"]["training"], role=cfg["role"], instance_count=1,
                          instance_type=INSTANCE, output_path=f"s3://{cfg['bucket']}/bench",
                          hyperparameters={"epochs": 1}, base_job_name=cfg["prefix"])
    start = time.monotonic()
    estimator.fit({"train": f"s3://{cfg['bucket']}/train/"}, logs=True)
    fit = time.monotonic() - start
    start = time.monotonic()
    predictor = estimator.deploy(1, INSTANCE, image_uri=cfg["images"]["serving"])
    deploy = time.monotonic() - start
    predictor.delete_endpoint()
    estimator.set_hyperparameters(epochs=4, epoch_seconds=2)
    start = time.monotonic()
    estimator.fit({"train": f"s3://{cfg['bucket']}/train/"}, logs=True)
    return {"fit": fit, "fit_8s": time.monotonic() - start, "deploy": deploy}


def v3(cfg: dict[str, Any]) -> dict[str, float]:
    from sagemaker.serve import ModelBuilder
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, InputData

    trainer = ModelTrainer(training_image=cfg["images"]["training"], role=cfg["role"],
                           compute=Compute(instance_type=INSTANCE, instance_count=1),
                           hyperparameters={"epochs": 1}, base_job_name=cfg["prefix"])
    start = time.monotonic()
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=f"s3://{cfg['bucket']}/train/")],
                  wait=True, logs=True)
    fit = time.monotonic() - start
    artifacts = str(trainer._latest_training_job.model_artifacts.s3_model_artifacts)
    builder = ModelBuilder(image_uri=cfg["images"]["serving"], s3_model_data_url=artifacts, role_arn=cfg["role"],
                           instance_type=INSTANCE)
    builder.build(model_name=f"{cfg['prefix']}-model")
    start = time.monotonic()
    endpoint = builder.deploy(endpoint_name=f"{cfg['prefix']}-ep", initial_instance_count=1, instance_type=INSTANCE)
    deploy = time.monotonic() - start
    endpoint.delete()
    slow = ModelTrainer(training_image=cfg["images"]["training"], role=cfg["role"],
                        compute=Compute(instance_type=INSTANCE, instance_count=1),
                        hyperparameters={"epochs": 4, "epoch_seconds": 2}, base_job_name=f"{cfg['prefix']}-8s")
    start = time.monotonic()
    slow.train(input_data_config=[InputData(channel_name="train", data_source=f"s3://{cfg['bucket']}/train/")],
               wait=True, logs=True)
    return {"fit": fit, "fit_8s": time.monotonic() - start, "deploy": deploy}


def main() -> None:
    from tests.integration.sdk import offline_guard  # noqa: F401  (first: nothing may leave the machine)

    import sagemaker

    cfg = json.loads(sys.argv[1])
    version = getattr(sagemaker, "__version__", None)
    if version is None:
        from importlib.metadata import version as installed

        version = installed("sagemaker")
    timings = v2(cfg) if version.startswith("2.") else v3(cfg)
    print("\nTIMING " + json.dumps({"sdk": version, **{k: round(v, 2) for k, v in timings.items()}}), flush=True)


if __name__ == "__main__":
    main()
