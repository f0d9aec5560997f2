"""What the emulator does with each SageMaker operation: execute it, store it, or refuse it.

Every operation of botocore's ``sagemaker`` model is in exactly one of three states:

* **executed**: a platform service has a handler named after it (training, processing,
  transform, tuning, hosting, tags, search). The work really happens (containers, S3).
* **stored**: moto's SageMaker backend answers it, and what moto does is what AWS does:
  keep a record and give it back (experiments, model packages and cards, pipeline
  definitions, monitoring job definitions, ...). :data:`STORED` lists them by name; nothing
  gets there by default.
* **refused**: everything else. On AWS these run containers, compile or package models,
  provision notebooks, clusters or domains, or send work to people; a stored record would
  read "Completed" for work nobody did. They are answered at once with
  :class:`~emulator.errors.OperationNotSupported` (501, never retried by botocore), naming
  the operation and why.

A handler of an executed operation may raise ``NotImplementedError`` for a request that is
not about the platform's own resources (tags of an experiment, a Search over model
packages); the gateway then hands it to moto only if the operation is also in
:data:`STORED`, and refuses it otherwise. docs/compatibility.md is generated from this module
(scripts/compatibility).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from emulator.errors import OperationNotSupported

EXECUTED = "executed"
STORED_STATUS = "stored"
REFUSED = "refused"

STORED: frozenset[str] = frozenset(
    {
        # Experiments: records that training code and the SDK attach to jobs.
        "CreateExperiment", "DescribeExperiment", "DeleteExperiment", "ListExperiments",
        "CreateTrial", "DescribeTrial", "DeleteTrial", "ListTrials",
        "CreateTrialComponent", "DescribeTrialComponent", "DeleteTrialComponent", "ListTrialComponents",
        "UpdateTrialComponent", "AssociateTrialComponent", "DisassociateTrialComponent",
        # Model registry and model cards: metadata about models.
        "CreateModelPackage", "DescribeModelPackage", "ListModelPackages", "UpdateModelPackage",
        "CreateModelPackageGroup", "DescribeModelPackageGroup", "ListModelPackageGroups",
        "CreateModelCard", "DescribeModelCard", "DeleteModelCard", "ListModelCards", "ListModelCardVersions",
        "UpdateModelCard",
        # Feature group definitions (records go through featurestore-runtime, not served).
        "CreateFeatureGroup", "DescribeFeatureGroup",
        # Model monitor job definitions: configurations only; schedules that run them are refused.
        "CreateDataQualityJobDefinition", "DescribeDataQualityJobDefinition", "DeleteDataQualityJobDefinition",
        "ListDataQualityJobDefinitions",
        "CreateModelBiasJobDefinition", "DescribeModelBiasJobDefinition", "DeleteModelBiasJobDefinition",
        "ListModelBiasJobDefinitions",
        "CreateModelExplainabilityJobDefinition", "DescribeModelExplainabilityJobDefinition",
        "DeleteModelExplainabilityJobDefinition", "ListModelExplainabilityJobDefinitions",
        "CreateModelQualityJobDefinition", "DescribeModelQualityJobDefinition", "DeleteModelQualityJobDefinition",
        "ListModelQualityJobDefinitions",
        # Pipeline definitions. Executions are refused, so these only ever find none.
        "CreatePipeline", "DescribePipeline", "DeletePipeline", "ListPipelines", "UpdatePipeline",
        "DescribePipelineExecution", "ListPipelineExecutions", "DescribePipelineDefinitionForExecution",
        "ListPipelineParametersForExecution",
        # Notebook lifecycle configurations: scripts kept for notebooks (which are refused).
        "CreateNotebookInstanceLifecycleConfig", "DescribeNotebookInstanceLifecycleConfig",
        "DeleteNotebookInstanceLifecycleConfig",
        # Tags and Search of resources the platform does not own (its own are executed).
        "AddTags", "ListTags", "DeleteTags", "Search",
    }
)
"""Operations moto's SageMaker backend answers as AWS would: by keeping and returning records."""

#: Stored operations refused for some requests: the request asks for work to be done.
_STORED_UNLESS: dict[str, tuple[Callable[[Mapping[str, Any]], bool], str]] = {
    "CreateModelPackage": (
        lambda request: bool(request.get("ValidationSpecification")),
        "a ValidationSpecification makes SageMaker run batch transform jobs to validate the package",
    ),
}

#: Why a family of operations is refused, by a pattern over the operation name (first match).
_WHY: tuple[tuple[str, str], ...] = (
    (r"PipelineExecution|PipelineExecutionStep", "a pipeline execution runs the pipeline's steps"),
    (r"CompilationJob|EdgePackagingJob|OptimizationJob|EdgeDeployment", "it compiles, optimizes or packages a model"),
    (r"AutoMLJob|CandidatesForAutoMLJob", "an AutoML job trains and tunes candidate models"),
    (r"LabelingJob|Workteam|Workforce|HumanTaskUi|FlowDefinition|UiTemplate",
     "it sends work to human labelers"),
    (r"InferenceRecommendations|AIBenchmark|AIRecommendation|AIWorkload|InferenceExperiment|ScalingConfiguration",
     "it load-tests models on real instances"),
    (r"MonitoringSchedule|MonitoringExecution|MonitoringAlert", "a monitoring schedule runs processing jobs on a timer"),
    (r"NotebookInstance|Domain|UserProfile|Space|App\b|Apps\b|AppImageConfig|Studio|PresignedDomainUrl|Session",
     "it provisions SageMaker Studio or notebook infrastructure"),
    (r"Cluster|ReservedCapacity|TrainingPlan|UltraServer|ComputeQuota",
     "it provisions a HyperPod cluster or reserved capacity"),
    (r"Mlflow|PartnerApp", "it provisions a managed application server"),
    (r"InferenceComponent", "inference components share endpoint instances, which the emulator does not model"),
    (r"TrainingJob|ProcessingJob|TransformJob|HyperParameterTuningJob",
     "the emulator runs these jobs but does not implement this operation on them"),
)

_GENERIC_WHY = "the emulator neither executes it nor stores it faithfully"


def refusal_reason(operation: str) -> str:
    """Why ``operation`` is refused, in a phrase."""
    for pattern, why in _WHY:
        if re.search(pattern, operation):
            return why
    return _GENERIC_WHY


def refusal(operation: str, why: str | None = None) -> OperationNotSupported:
    """The error that refuses ``operation``: 501, code NotImplemented, the operation named."""
    return OperationNotSupported(
        f"SageMaker.{operation} is not supported by sagemaker-emulator: {why or refusal_reason(operation)}. "
        "The emulator refuses it rather than answer with a result it did not produce; "
        "docs/compatibility.md lists every operation as executed, stored or refused."
    )


def stored_refusal(operation: str, request: Mapping[str, Any]) -> OperationNotSupported | None:
    """The refusal of a stored operation whose request asks for real work, else None."""
    guard = _STORED_UNLESS.get(operation)
    if guard is not None and guard[0](request):
        return refusal(operation, guard[1])
    return None


def classify(operations: Iterable[str], executed: Iterable[str]) -> dict[str, str]:
    """Each operation's status: ``executed``, ``stored`` or ``refused``."""
    handled = set(executed)
    return {
        op: EXECUTED if op in handled else STORED_STATUS if op in STORED else REFUSED
        for op in operations
    }
