"""Operations the emulator does not run are refused at once, by name, and boto3 does not retry them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_client


@pytest.mark.parametrize("call", [
    lambda sm: sm.start_pipeline_execution(PipelineName="p"),
    lambda sm: sm.create_compilation_job(
        CompilationJobName="c", RoleArn="arn:aws:iam::123456789012:role/r",
        InputConfig={"S3Uri": "s3://b/m.tar.gz", "Framework": "PYTORCH"},
        OutputConfig={"S3OutputLocation": "s3://b/out", "TargetDevice": "ml_c5"},
        StoppingCondition={"MaxRuntimeInSeconds": 60}),
    lambda sm: sm.list_labeling_jobs(),
])
def test_unserved_operations_are_refused_by_name_and_not_retried(endpoint_url: str, call: Any) -> None:
    sagemaker = make_client("sagemaker", endpoint_url)  # botocore's default retries, unlike the shared client
    sagemaker.meta.config.retries = {"max_attempts": 5, "mode": "standard"}
    sent: list[str] = []
    sagemaker.meta.events.register("before-send.sagemaker", lambda request, **_: sent.append(request.url))
    with pytest.raises(ClientError) as refused:
        call(sagemaker)
    error = refused.value.response
    assert error["Error"]["Code"] == "NotImplemented"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert error["ResponseMetadata"]["RetryAttempts"] == 0
    assert len(sent) == 1, sent  # one request on the wire: nothing for botocore to retry or back off on
    assert "is not supported by sagemaker-emulator" in error["Error"]["Message"]


def test_stored_operations_still_answer(sagemaker_client: Any) -> None:
    sagemaker_client.create_experiment(ExperimentName="refusal-check")
    assert sagemaker_client.describe_experiment(ExperimentName="refusal-check")["ExperimentName"] == "refusal-check"
