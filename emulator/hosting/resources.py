"""Models and endpoint configurations: records in the store, nothing runs.

Create* validates and stores the request as the Describe* answer; Delete* removes the record
even while an endpoint uses it (the endpoint works from its own snapshot, as on AWS, and the
SageMaker SDK deletes the configuration before the endpoint). Missing resources are
``ValidationException`` "Could not find ...", which the SDK and waiters match on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from emulator.context import CallContext
from emulator.errors import ValidationException, already_exists, could_not_find
from emulator.hosting.listing import list_page
from emulator.hosting.model_data import prefix_exists
from emulator.hosting.validation import model_containers, validate_endpoint_config, validate_model
from emulator.store import Store

Request = dict[str, Any]


class ModelOperations:
    """CreateModel, DescribeModel, ListModels, DeleteModel and the same for endpoint configs."""

    store: Store
    s3_client: Callable[[], Any]
    platform: Any
    """The platform (``check_role``: SageMaker's ValidationException for a role it could not assume)."""

    # -- models -------------------------------------------------------------------------

    def create_model(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """CreateModel: validate, check an uncompressed model prefix exists, store."""
        validate_model(request)
        self.platform.check_role(request.get("ExecutionRoleArn"), "CreateModel", ctx)
        containers, _mode = model_containers(request)
        for container in containers:
            source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
            if source.get("S3DataType") == "S3Prefix" and not prefix_exists(
                self.s3_client(), source["S3Uri"]
            ):
                raise ValidationException(f"Could not find model data at {source['S3Uri']}.")
        arn = ctx.arn("model", request["ModelName"])
        now = time.time()
        record = {k: v for k, v in request.items() if k != "Tags"}
        record.update(ModelArn=arn, CreationTime=now)
        record.setdefault("EnableNetworkIsolation", False)
        if not self.store.insert("model", request["ModelName"], record, now):
            raise already_exists("model", arn)
        self._tag(arn, request)
        return {"ModelArn": arn}

    def describe_model(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """DescribeModel."""
        return self._get("model", request["ModelName"], "model", ctx)

    def list_models(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """ListModels."""
        page, token = list_page(
            self.store.list("model"),
            request,
            "ModelName",
            summary=lambda r: {k: r[k] for k in ("ModelName", "ModelArn", "CreationTime")},
        )
        return {"Models": page, **({"NextToken": token} if token else {})}

    def delete_model(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """DeleteModel (allowed while an endpoint uses the model)."""
        self._delete("model", request["ModelName"], "model", ctx)
        return {}

    # -- endpoint configurations ----------------------------------------------------------

    def create_endpoint_config(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """CreateEndpointConfig: every variant's model must exist now."""
        validate_endpoint_config(request, lambda n: self.store.get("model", n), lambda n: ctx.arn("model", n))
        name = request["EndpointConfigName"]
        arn = ctx.arn("endpoint-config", name)
        now = time.time()
        record = {k: v for k, v in request.items() if k != "Tags"}
        record["ProductionVariants"] = [
            {**v, "InitialVariantWeight": v.get("InitialVariantWeight", 1.0)}
            for v in request["ProductionVariants"]
        ]
        record.update(EndpointConfigArn=arn, CreationTime=now)
        if not self.store.insert("endpoint-config", name, record, now):
            raise already_exists("endpoint configuration", arn)
        self._tag(arn, request)
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """DescribeEndpointConfig."""
        return self._get("endpoint-config", request["EndpointConfigName"], "endpoint configuration", ctx)

    def list_endpoint_configs(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """ListEndpointConfigs."""
        page, token = list_page(
            self.store.list("endpoint-config"),
            request,
            "EndpointConfigName",
            summary=lambda r: {k: r[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")},
        )
        return {"EndpointConfigs": page, **({"NextToken": token} if token else {})}

    def delete_endpoint_config(self, request: Request, ctx: CallContext) -> dict[str, Any]:
        """DeleteEndpointConfig (allowed while an endpoint uses it; the endpoint keeps serving)."""
        self._delete("endpoint-config", request["EndpointConfigName"], "endpoint configuration", ctx)
        return {}

    # -- shared -----------------------------------------------------------------------------

    def _get(self, kind: str, name: str, label: str, ctx: CallContext) -> dict[str, Any]:
        record = self.store.get(kind, name)
        if record is None:
            raise could_not_find(label, ctx.arn(kind, name))
        return record

    def _delete(self, kind: str, name: str, label: str, ctx: CallContext) -> None:
        record = self._get(kind, name, label, ctx)
        self.store.delete(kind, name)
        arn = record.get("ModelArn") or record.get("EndpointConfigArn") or ctx.arn(kind, name)
        self.store.delete_tags(arn.lower())

    def _tag(self, arn: str, request: Request) -> None:
        if request.get("Tags"):
            self.store.add_tags(arn.lower(), request["Tags"])
