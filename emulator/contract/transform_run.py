"""Running a batch transform job of an image through the emulator (transform_rules.py judges)."""

from __future__ import annotations

import logging
import time
from typing import Any

from emulator.contract.inputs import CheckOptions, upload_model
from emulator.contract.observations import JobRun
from emulator.contract.session import EmulatorTarget, log_lines, log_tail, unique_name, wait_for
from emulator.contract.transform_rules import TransformObservations
from emulator.transform.instances import EXECUTION_PARAMETERS_ANSWER

log = logging.getLogger(__name__)

LOG_GROUP = "/aws/sagemaker/TransformJobs"
LINE_TYPES = ("text/csv", "application/json", "application/jsonlines", "application/x-jsonlines", "text/plain")
"""Content types whose records the check splits by line."""
RECORDS_PER_OBJECT = (3, 5)
"""Records in each of the check's two input objects."""


def input_objects(content_type: str, payload: bytes) -> tuple[bool, dict[str, bytes]]:
    """(split by line?, name -> body) of the check's input: two objects of a few records each."""
    base = content_type.split(";")[0].strip().lower()
    if base not in LINE_TYPES:
        return False, {"part-0": payload, "part-1": payload}
    records = [line for line in payload.split(b"\n") if line.strip()] or [payload.strip()]
    objects = {}
    for number, count in enumerate(RECORDS_PER_OBJECT):
        rows = [records[i % len(records)] for i in range(count)]
        objects[f"part-{number}"] = b"\n".join(rows) + b"\n"
    return True, objects


class TransformCheck:
    """One transform check: a model, a job over two input objects, its outputs and logs."""

    def __init__(self, target: EmulatorTarget, image: str, options: CheckOptions) -> None:
        self.target = target
        self.image = image
        self.options = options
        self.content_type, self.payload = options.requests()[0]
        self.sm = target.client("sagemaker")
        self.s3 = target.client("s3")

    def run(self) -> TransformObservations:
        """Create the model and the job, wait for it, read what it left."""
        bucket, name = self.target.bucket(), unique_name("check-transform")
        split, objects = input_objects(self.content_type, self.payload)
        for key, body in objects.items():
            self.s3.put_object(Bucket=bucket, Key=f"{name}/input/{key}", Body=body)
        definition: dict[str, Any] = {"Image": self.image}
        if self.options.model:
            definition["ModelDataUrl"] = upload_model(self.s3, bucket, f"{name}/model.tar.gz", self.options.model,
                                                      "model")
        if self.options.environment:
            definition["Environment"] = dict(self.options.environment)
        self.sm.create_model(ModelName=name, ExecutionRoleArn=self.target.role_arn(), PrimaryContainer=definition)
        try:
            job = self._transform(name, bucket, split)
        finally:
            self.sm.delete_model(ModelName=name)
        lines = log_lines(self.target, LOG_GROUP, f"{name}/")
        answers = [m.group("answer") for line in lines if (m := EXECUTION_PARAMETERS_ANSWER.match(line))]
        return TransformObservations(
            job=job, execution_parameters=answers[0] if answers else None, split=split,
            records_in={key: (body.count(b"\n") if split else 1) for key, body in objects.items()},
            records_out={key: self._records_out(bucket, f"{name}/output/{key}.out", split) for key in objects},
        )

    def _transform(self, name: str, bucket: str, split: bool) -> JobRun:
        started = time.monotonic()
        self.sm.create_transform_job(
            TransformJobName=name, ModelName=name,
            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                            "S3Uri": f"s3://{bucket}/{name}/input/"}},
                            "ContentType": self.content_type, "SplitType": "Line" if split else "None"},
            TransformOutput={"S3OutputPath": f"s3://{bucket}/{name}/output", "AssembleWith": "Line" if split else "None"},
            TransformResources={"InstanceType": self.options.instance_type, "InstanceCount": 1},
        )
        try:
            record = wait_for(f"transform job {name} to end", lambda: self._ended(name), self.options.job_timeout)
        except TimeoutError:
            record = self.sm.describe_transform_job(TransformJobName=name)
        return JobRun(name, str(record["TransformJobStatus"]), record.get("FailureReason"),
                      time.monotonic() - started, log_tail(self.target, LOG_GROUP, f"{name}/"))

    def _ended(self, name: str) -> dict[str, Any] | None:
        record: dict[str, Any] = self.sm.describe_transform_job(TransformJobName=name)
        return record if record["TransformJobStatus"] in ("Completed", "Failed", "Stopped") else None

    def _records_out(self, bucket: str, key: str, split: bool) -> int | None:
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.s3.exceptions.ClientError:
            return None
        return sum(1 for line in body.split(b"\n") if line.strip()) if split else (1 if body else 0)


def check_transform(target: EmulatorTarget, image: str, options: CheckOptions) -> TransformObservations:
    """Run an image's batch transform contract check through ``target``."""
    return TransformCheck(target, image, options).run()
