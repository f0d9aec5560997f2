"""The SageMaker Python SDK's everyday flow, unchanged, against the emulator.

Run by tests/integration/test_sagemaker_sdk.py in its own process with AWS_ENDPOINT_URL and
SAGEMAKER_USER_CONFIG_OVERRIDE set, exactly as a user configures it. Prints one JSON line of
what it observed.
"""

from __future__ import annotations

import json
import sys

from tests.integration.sdk import offline_guard  # noqa: F401  (first: guard the network)

import sagemaker  # noqa: E402
from sagemaker.estimator import Estimator  # noqa: E402


def main() -> None:
    train_image, serve_image, role, bucket = sys.argv[1:5]
    session = sagemaker.Session()
    estimator = Estimator(
        image_uri=train_image,
        role=role,
        instance_count=1,
        instance_type="ml.m5.large",
        output_path=f"s3://{bucket}/sdk-output",
        hyperparameters={"epochs": 1, "model_name": "sdk-model"},
        metric_definitions=[{"Name": "train:loss", "Regex": "train_loss=([0-9.]+)"}],
        sagemaker_session=session,
    )
    estimator.fit({"train": f"s3://{bucket}/train/"}, logs=True)
    job = estimator.latest_training_job.describe()
    predictor = estimator.deploy(
        initial_instance_count=1, instance_type="ml.m5.large", image_uri=serve_image,
        endpoint_name=f"{job['TrainingJobName']}-ep",
    )
    answer = predictor.predict(b"1,2,3", initial_args={"ContentType": "text/csv"})
    predictor.delete_endpoint()
    print("\nRESULT " + json.dumps({
        "status": job["TrainingJobStatus"],
        "model_data": estimator.model_data,
        "metrics": [m["MetricName"] for m in job.get("FinalMetricDataList", [])],
        "answer": json.loads(answer),
    }), flush=True)


if __name__ == "__main__":
    main()
