"""What an endpoint configuration means in containers: the deployment plan (pure).

A plan is computed from *snapshots* of the endpoint configuration and its models, taken
when CreateEndpoint or UpdateEndpoint is called. That is why deleting a model or an endpoint
configuration later does not disturb a running endpoint, as on AWS, and why a restarted
emulator can rebuild the same plan from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.hosting.multi_model import MultiModelPlan
from emulator.hosting.validation import SINGLE, model_containers

DEFAULT_PORT = 8080
SAFE_PORT_BASE = 21000
SAFE_PORT_BLOCK = 1000


@dataclass(frozen=True)
class ModelData:
    """Where a container's model comes from."""

    kind: str
    """``tar`` (model.tar.gz, or S3Object+Gzip), ``prefix`` (uncompressed S3 prefix) or ``object``."""
    uri: str


@dataclass(frozen=True)
class ContainerPlan:
    """One container of every instance of a variant."""

    index: int
    """1-based position in the model's container list."""
    hostname: str
    """What TargetContainerHostname selects and what messages call it: ``primary`` for a
    PrimaryContainer, else ContainerHostname, else ``container-<index>`` (as AWS names them)."""
    image: str
    environment: dict[str, str]
    port: int
    model_data: ModelData | None
    multi_model: MultiModelPlan | None = None
    """Set for ``Mode: MultiModel``: models are loaded on demand under /opt/ml/models."""

    @property
    def download_label(self) -> str:
        """How download failures name the container (``container_1``, observed on AWS)."""
        return f"container_{self.index}"


@dataclass(frozen=True)
class VariantPlan:
    """One production variant: which containers, how many instances, what limits."""

    name: str
    model_name: str
    weight: float
    instance_count: int
    instance_type: str | None
    mode: str
    """:data:`SINGLE`, ``Serial`` or ``Direct``."""
    containers: tuple[ContainerPlan, ...]
    network_isolation: bool = False
    serverless: dict[str, Any] | None = None
    execution_role_arn: str | None = None
    """The model's role: its containers get that role's credentials (emulator/credentials.py)."""
    startup_timeout: float = 600.0
    download_timeout: float = 600.0

    @property
    def is_serverless(self) -> bool:
        """Serverless variants run on demand and stop when idle."""
        return self.serverless is not None

    @property
    def memory_bytes(self) -> int | None:
        """A serverless variant's memory limit (MemorySizeInMB); None for instance variants."""
        if self.serverless is None:
            return None
        return int(self.serverless["MemorySizeInMB"]) * 1024 * 1024

    @property
    def multi_model(self) -> MultiModelPlan | None:
        """The multi-model plan of a single-container variant, else None."""
        return self.containers[0].multi_model if len(self.containers) == 1 else None


@dataclass(frozen=True)
class DeploymentPlan:
    """Everything needed to run (and route to) one endpoint configuration."""

    endpoint_name: str
    config_name: str
    variants: tuple[VariantPlan, ...]
    async_config: dict[str, Any] | None = None
    capture_config: dict[str, Any] | None = None
    models: dict[str, Any] = field(default_factory=dict)

    def variant(self, name: str) -> VariantPlan:
        """The variant of that name (KeyError when absent)."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)


def container_plans(model: dict[str, Any], region: str) -> tuple[str, tuple[ContainerPlan, ...]]:
    """The execution mode and containers of a model record, with the environment SageMaker sets."""
    definitions, mode = model_containers(model)
    multi = mode != SINGLE
    plans = []
    for index, definition in enumerate(definitions, start=1):
        port = DEFAULT_PORT + index - 1 if multi else DEFAULT_PORT
        environment = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
        environment.update(definition.get("Environment") or {})
        low = SAFE_PORT_BASE + SAFE_PORT_BLOCK * (index - 1)
        environment["SAGEMAKER_SAFE_PORT_RANGE"] = f"{low}-{low + SAFE_PORT_BLOCK - 1}"
        if multi:
            environment["SAGEMAKER_BIND_TO_PORT"] = str(port)
        if multi:
            hostname = definition.get("ContainerHostname") or f"container-{index}"
        else:
            hostname = "primary"
        multi_model = MultiModelPlan.from_definition(definition)
        if multi_model is not None:
            environment["SAGEMAKER_MULTI_MODEL"] = "true"
        plans.append(
            ContainerPlan(
                index=index,
                hostname=hostname,
                image=definition["Image"],
                environment=environment,
                port=port,
                model_data=None if multi_model is not None else model_data_of(definition),
                multi_model=multi_model,
            )
        )
    return mode, tuple(plans)


def model_data_of(definition: dict[str, Any]) -> ModelData | None:
    """The model data a container definition names, if any."""
    url = definition.get("ModelDataUrl")
    if url:
        return ModelData("tar", url)
    source = (definition.get("ModelDataSource") or {}).get("S3DataSource")
    if not source:
        return None
    if source.get("S3DataType") == "S3Prefix":
        return ModelData("prefix", source["S3Uri"])
    if source.get("CompressionType") == "Gzip":
        return ModelData("tar", source["S3Uri"])
    return ModelData("object", source["S3Uri"])


def build_plan(
    endpoint_name: str,
    config: dict[str, Any],
    models: dict[str, dict[str, Any]],
    region: str,
    default_startup_timeout: float = 600.0,
    default_download_timeout: float = 600.0,
) -> DeploymentPlan:
    """The plan for an endpoint configuration record and the records of its models."""
    variants = []
    for variant in config["ProductionVariants"]:
        model = models[variant["ModelName"]]
        mode, containers = container_plans(model, region)
        serverless = variant.get("ServerlessConfig")
        variants.append(
            VariantPlan(
                name=variant["VariantName"],
                model_name=variant["ModelName"],
                weight=float(variant.get("InitialVariantWeight", 1.0)),
                instance_count=1 if serverless else int(variant.get("InitialInstanceCount", 1)),
                instance_type=variant.get("InstanceType"),
                mode=mode,
                containers=containers,
                network_isolation=bool(model.get("EnableNetworkIsolation")),
                serverless=dict(serverless) if serverless else None,
                execution_role_arn=model.get("ExecutionRoleArn"),
                startup_timeout=float(
                    variant.get("ContainerStartupHealthCheckTimeoutInSeconds") or default_startup_timeout
                ),
                download_timeout=float(
                    variant.get("ModelDataDownloadTimeoutInSeconds") or default_download_timeout
                ),
            )
        )
    capture = config.get("DataCaptureConfig")
    return DeploymentPlan(
        endpoint_name=endpoint_name,
        config_name=config["EndpointConfigName"],
        variants=tuple(variants),
        async_config=config.get("AsyncInferenceConfig"),
        capture_config=capture if capture and capture.get("EnableCapture", True) else None,
        models=models,
    )
