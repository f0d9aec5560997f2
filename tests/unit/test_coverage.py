"""Every SageMaker operation is executed, stored by moto, or refused; docs/compatibility.md says which."""

from __future__ import annotations

from botocore import xform_name

from emulator import compatibility
from emulator.errors import OperationNotSupported
from emulator.gateway import coverage
from emulator.gateway.protocol import load_service_model


def test_compatibility_doc_is_current() -> None:
    assert compatibility.DOC.read_text() == compatibility.render(), (
        "docs/compatibility.md is stale: run `python -m emulator.compatibility`")


def test_stored_operations_are_all_answered_by_moto() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    operations = set(load_service_model("sagemaker").operation_names)
    assert coverage.STORED <= operations
    assert [op for op in sorted(coverage.STORED) if not hasattr(SageMakerResponse, xform_name(op))] == []


def test_jobs_the_emulator_runs_are_executed_and_work_nobody_does_is_refused() -> None:
    statuses = coverage.classify(load_service_model("sagemaker").operation_names,
                                 compatibility.executed_operations())
    for op in ("CreateTrainingJob", "CreateProcessingJob", "CreateTransformJob", "CreateHyperParameterTuningJob",
               "ListTrainingJobsForHyperParameterTuningJob", "Search", "StopTransformJob"):
        assert statuses[op] == coverage.EXECUTED, op
    for op in ("StartPipelineExecution", "CreateCompilationJob", "CreateAutoMLJobV2", "CreateNotebookInstance",
               "CreateLabelingJob", "CreateMonitoringSchedule", "CreateCluster"):
        assert statuses[op] == coverage.REFUSED, op
    assert statuses["CreateExperiment"] == coverage.STORED_STATUS


def test_a_refusal_names_the_operation_and_is_not_a_retried_status() -> None:
    error = coverage.refusal("StartPipelineExecution")
    assert isinstance(error, OperationNotSupported)
    assert (error.code, error.status) == ("NotImplemented", 501)
    assert error.message.startswith("SageMaker.StartPipelineExecution is not supported by sagemaker-emulator: "
                                    "a pipeline execution runs the pipeline's steps.")
    assert coverage.stored_refusal("CreateModelPackage", {"ValidationSpecification": {"x": 1}}) is not None
    assert coverage.stored_refusal("CreateModelPackage", {"ModelPackageGroupName": "g"}) is None
