"""One deployment of an endpoint: a configuration snapshot and the fleet running it.

An endpoint has one *active* deployment (serving) and, during UpdateEndpoint, one
*pending* deployment (being brought up). Both are persisted in the store (kind
``hosting-deployment``, one record per endpoint) with the snapshots they were built from,
so a restarted emulator rebuilds the same plan and re-finds the containers by label.
The functions at the bottom shape what DescribeEndpoint shows about them.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from emulator.hosting.fleet import RunningInstance
from emulator.hosting.plan import DeploymentPlan, build_plan

DEPLOYMENT_KIND = "hosting-deployment"
EVENTS_KIND = "hosting-events"
"""Store kind of an endpoint's health events (instances replaced), shown by the dashboard."""


@dataclass
class Deployment:
    """A configuration snapshot, the weights and counts in force, and its running instances."""

    id: str
    config: dict[str, Any]
    models: dict[str, dict[str, Any]]
    plan: DeploymentPlan
    weights: dict[str, float]
    counts: dict[str, int]
    images: dict[str, str] = field(default_factory=dict)
    resolution_time: float = 0.0
    instances: dict[str, list[RunningInstance]] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        endpoint: str,
        config: dict[str, Any],
        models: dict[str, dict[str, Any]],
        region: str,
        startup_timeout: float,
        download_timeout: float,
    ) -> Deployment:
        """A fresh deployment of ``config`` with its initial weights and instance counts."""
        plan = build_plan(endpoint, config, models, region, startup_timeout, download_timeout)
        return cls(
            id=uuid.uuid4().hex[:12],
            config=config,
            models=models,
            plan=plan,
            weights={v.name: v.weight for v in plan.variants},
            counts={v.name: v.instance_count for v in plan.variants},
        )

    def to_record(self) -> dict[str, Any]:
        """What the store keeps (instances are found again by label, not stored)."""
        return {
            "Id": self.id,
            "Config": self.config,
            "Models": self.models,
            "Weights": self.weights,
            "Counts": self.counts,
            "Images": self.images,
            "ResolutionTime": self.resolution_time,
        }

    @classmethod
    def from_record(
        cls,
        record: dict[str, Any],
        endpoint: str,
        region: str,
        startup_timeout: float,
        download_timeout: float,
    ) -> Deployment:
        """Rebuild a deployment (without instances) from :meth:`to_record`'s output."""
        plan = build_plan(
            endpoint, record["Config"], record["Models"], region, startup_timeout, download_timeout
        )
        return cls(
            id=record["Id"],
            config=record["Config"],
            models=record["Models"],
            plan=plan,
            weights={k: float(v) for k, v in record["Weights"].items()},
            counts={k: int(v) for k, v in record["Counts"].items()},
            images=dict(record.get("Images") or {}),
            resolution_time=float(record.get("ResolutionTime") or 0.0),
        )

    def retain_from(self, current: Deployment, exclude: set[str]) -> None:
        """RetainAllVariantProperties: keep the current weights and counts of same-named variants,
        except the properties listed in ExcludeRetainedVariantProperties."""
        for name in self.weights:
            if name in current.weights and "DesiredWeight" not in exclude:
                self.weights[name] = current.weights[name]
            if name in current.counts and "DesiredInstanceCount" not in exclude:
                self.counts[name] = current.counts[name]


@dataclass
class EndpointState:
    """In-memory bookkeeping of one endpoint: its deployments and the worker changing them."""

    name: str
    region: str
    account_id: str
    active: Deployment | None = None
    pending: Deployment | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held by the worker thread of a Create/Update/Rescale/Delete, so they run one at a time."""
    serverless_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while a serverless variant cold-starts or idles out (not held by long operations)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set by DeleteEndpoint (or emulator shutdown): a bring-up in progress stops and cleans up."""
    worker: threading.Thread | None = None

    def to_record(self) -> dict[str, Any]:
        """The ``hosting-deployment`` store record."""
        return {
            "EndpointName": self.name,
            "Region": self.region,
            "AccountId": self.account_id,
            "Active": self.active.to_record() if self.active else None,
            "Pending": self.pending.to_record() if self.pending else None,
        }


# -- what DescribeEndpoint shows ---------------------------------------------------------


def variant_summaries(deployment: Deployment, live: bool = False) -> list[dict[str, Any]]:
    """``ProductionVariants`` of DescribeEndpoint for a deployment in service.

    ``live``: CurrentInstanceCount is the number of instances running now (fewer than desired
    while a failed instance is being replaced).
    """
    summaries = []
    for variant in deployment.plan.variants:
        images = []
        for container in variant.containers:
            image: dict[str, Any] = {"SpecifiedImage": container.image}
            if container.image in deployment.images:
                image["ResolvedImage"] = deployment.images[container.image]
                image["ResolutionTime"] = deployment.resolution_time
            images.append(image)
        weight = deployment.weights[variant.name]
        summary: dict[str, Any] = {
            "VariantName": variant.name,
            "DeployedImages": images,
            "CurrentWeight": weight,
            "DesiredWeight": weight,
        }
        if variant.serverless is not None:
            summary["CurrentServerlessConfig"] = dict(variant.serverless)
            summary["DesiredServerlessConfig"] = dict(variant.serverless)
        else:
            count = deployment.counts[variant.name]
            current = len(deployment.instances.get(variant.name, [])) if live else count
            summary["CurrentInstanceCount"] = current
            summary["DesiredInstanceCount"] = count
        summaries.append(summary)
    return summaries


def pending_summary(deployment: Deployment, started: float) -> dict[str, Any]:
    """``PendingDeploymentSummary`` while UpdateEndpoint brings a new fleet up."""
    variants = []
    for variant in deployment.plan.variants:
        item: dict[str, Any] = {
            "VariantName": variant.name,
            "DeployedImages": [{"SpecifiedImage": c.image} for c in variant.containers],
            "DesiredWeight": deployment.weights[variant.name],
            "VariantStatus": [{"Status": "Creating", "StartTime": started}],
        }
        if variant.serverless is not None:
            item["DesiredServerlessConfig"] = dict(variant.serverless)
        else:
            item["DesiredInstanceCount"] = deployment.counts[variant.name]
            item["InstanceType"] = variant.instance_type
        variants.append(item)
    return {
        "EndpointConfigName": deployment.plan.config_name,
        "ProductionVariants": variants,
        "StartTime": started,
    }


def capture_summary(config: dict[str, Any]) -> dict[str, Any] | None:
    """``DataCaptureConfig`` of DescribeEndpoint (a summary of the configuration's)."""
    capture = config.get("DataCaptureConfig")
    if not capture:
        return None
    enabled = bool(capture.get("EnableCapture", True))
    return {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": int(capture.get("InitialSamplingPercentage", 0)),
        "DestinationS3Uri": capture["DestinationS3Uri"],
        "KmsKeyId": capture.get("KmsKeyId", ""),
    }
