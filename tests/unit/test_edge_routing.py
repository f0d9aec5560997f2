"""Pure parts of the edge: credential scopes, ARNs, handler discovery, tag ownership."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator.context import CallContext
from emulator.gateway.app import credential_scope
from emulator.gateway.control import ControlPlane
from emulator.store import Store
from emulator.tags import TagService, parse_arn


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/sagemaker/aws4_request, SignedHeaders=host, "
         "Signature=abc", ("eu-west-1", "sagemaker")),
        ("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, "
         "Signature=abc", ("us-east-1", "s3")),
        ("", (None, None)),
        ("AWS AKID:signature", (None, None)),
    ],
)
def test_credential_scope(header: str, expected: tuple[str | None, str | None]) -> None:
    assert credential_scope({"HTTP_AUTHORIZATION": header}) == expected


def test_arns_lower_case_the_name() -> None:
    ctx = CallContext(region="eu-west-1", account_id="111122223333")
    assert ctx.arn("endpoint", "My-Endpoint") == "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/my-endpoint"


class _Service:
    def create_training_job(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        return {"TrainingJobArn": ctx.arn("training-job", request["TrainingJobName"])}


def test_handlers_are_found_by_operation_name() -> None:
    control = ControlPlane([_Service()], ["CreateTrainingJob", "CreateExperiment"])
    assert control.handles("CreateTrainingJob")
    assert not control.handles("CreateExperiment")
    result = control.call("CreateTrainingJob", {"TrainingJobName": "J"}, CallContext("us-east-1", "1"))
    assert result == {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j"}


def test_parse_arn() -> None:
    assert parse_arn("arn:aws:sagemaker:us-east-1:1:training-job/j") == ("training-job", "j")
    assert parse_arn("arn:aws:s3:::bucket") is None
    assert parse_arn("nonsense") is None


def test_tags_on_foreign_arns_fall_through(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    tags = TagService(store)
    ctx = CallContext("us-east-1", "1")
    with pytest.raises(NotImplementedError):
        tags.list_tags({"ResourceArn": "arn:aws:sagemaker:us-east-1:1:experiment/e"}, ctx)
    with pytest.raises(NotImplementedError):  # a training job the platform does not know
        tags.list_tags({"ResourceArn": "arn:aws:sagemaker:us-east-1:1:training-job/ghost"}, ctx)
    store.put("training-job", "j", {}, 1.0)
    arn = "arn:aws:sagemaker:us-east-1:1:training-job/j"
    assert tags.add_tags({"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]}, ctx) == {
        "Tags": [{"Key": "k", "Value": "v"}]}
    tags.delete_tags({"ResourceArn": arn, "TagKeys": ["k"]}, ctx)
    assert tags.list_tags({"ResourceArn": arn}, ctx) == {"Tags": []}
