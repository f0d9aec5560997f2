"""InvokeEndpointAsync: queue the request, answer 202 at once, run it in the background.

The worker reads the input from S3, invokes the endpoint's container as a real-time call
would (same routing, same ModelError mapping) with the request's InvocationTimeoutSeconds,
and writes the answer to ``<S3OutputPath>/<InferenceId>.out`` or the failure to
``<S3FailurePath>/<InferenceId>-error.out``, then publishes the SNS notification that the
AsyncInferenceConfig asks for (message format from the developer guide's
async-inference-check-predictions page).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from emulator.context import CallContext
from emulator.errors import ModelError, ServiceError, ValidationError
from emulator.hosting.invoke import Invocation, Invoker, choose_variant
from emulator.hosting.routing import EndpointRoute
from emulator.s3 import S3Location

log = logging.getLogger(__name__)

DEFAULT_INVOCATION_TIMEOUT = 900.0
DEFAULT_TTL = 21600.0
WORKERS = 4


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class AsyncInvoker:
    """Accepts InvokeEndpointAsync calls and completes them on a small worker pool."""

    def __init__(
        self,
        invoker: Invoker,
        s3_client: Callable[[], Any],
        sns_client: Callable[[], Any],
        workers: int = WORKERS,
    ) -> None:
        self.invoker = invoker
        self.s3_client = s3_client
        self.sns_client = sns_client
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="async-inference")

    def invoke_endpoint_async(self, request: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Validate, queue, and answer with where the result will appear."""
        route = self.invoker.route_for(request["EndpointName"], ctx, asynchronous=True)
        try:
            source = S3Location.parse(request["InputLocation"])
        except ValueError as exc:
            raise ValidationError(f"InputLocation must be an s3:// URI: {exc}") from exc
        inference_id = request.get("InferenceId") or str(uuid.uuid4())
        output_config = (route.async_config or {})["OutputConfig"]
        extension = request.get("S3OutputPathExtension") or ""
        output = S3Location.parse(output_config["S3OutputPath"]).join(
            extension, f"{request.get('Filename') or inference_id}.out"
        )
        failure_root = output_config.get("S3FailurePath") or output_config["S3OutputPath"]
        failure = S3Location.parse(failure_root).join(extension, f"{inference_id}-error.out")
        job = {
            "request": request,
            "inference_id": inference_id,
            "source": source,
            "output": output,
            "failure": failure,
            "received": time.time(),
        }
        self._pool.submit(self._run, route, job, ctx)
        return {"InferenceId": inference_id, "OutputLocation": output.uri, "FailureLocation": failure.uri}

    def _run(self, route: EndpointRoute, job: dict[str, Any], ctx: CallContext) -> None:
        try:
            self._complete(route, job, ctx)
        except Exception:
            log.exception("async inference %s failed unexpectedly", job["inference_id"])

    def _complete(self, route: EndpointRoute, job: dict[str, Any], ctx: CallContext) -> None:
        request = job["request"]
        s3 = self.s3_client()
        ttl = float(request.get("RequestTTLSeconds") or DEFAULT_TTL)
        timeout = float(request.get("InvocationTimeoutSeconds") or DEFAULT_INVOCATION_TIMEOUT)
        try:
            if time.time() - job["received"] > ttl:
                raise ValidationError(f"Request expired: it waited more than RequestTTLSeconds ({ttl:g} s).")
            source = job["source"]
            try:
                body = s3.get_object(Bucket=source.bucket, Key=source.key)["Body"].read()
            except Exception as exc:
                raise ValidationError(f"Could not read the input at {source.uri}: {exc}") from exc
            invocation = Invocation.from_request({**request, "Body": body})
            route = self.invoker.acquire(route.name, ctx, asynchronous=True)  # the fleet may have changed
            try:
                variant = choose_variant(route, None)
                response = self.invoker.call(route, variant, invocation, ctx, timeout)
            finally:
                route.leave()
        except ServiceError as err:
            self._fail(s3, route, job, err, ctx)
            return
        content_type = response.headers.get("Content-Type") or "application/octet-stream"
        output = job["output"]
        s3.put_object(Bucket=output.bucket, Key=output.key, Body=response.body, ContentType=content_type)
        self._notify(route, job, ctx, success=True, content_type=content_type, payload=response.body)

    def _fail(
        self, s3: Any, route: EndpointRoute, job: dict[str, Any], err: ServiceError, ctx: CallContext
    ) -> None:
        failure = job["failure"]
        text = err.original_message if isinstance(err, ModelError) and err.original_message else err.message
        try:
            s3.put_object(
                Bucket=failure.bucket, Key=failure.key, Body=text.encode(), ContentType="text/plain"
            )
        except Exception:
            log.exception("writing async failure %s failed", failure.uri)
        self._notify(
            route,
            job,
            ctx,
            success=False,
            content_type="text/plain",
            payload=text.encode(),
            reason=err.message,
        )

    def _notify(
        self,
        route: EndpointRoute,
        job: dict[str, Any],
        ctx: CallContext,
        success: bool,
        content_type: str,
        payload: bytes,
        reason: str | None = None,
    ) -> None:
        notification = ((route.async_config or {}).get("OutputConfig") or {}).get("NotificationConfig") or {}
        topic = notification.get("SuccessTopic" if success else "ErrorTopic")
        if not topic:
            return
        request = job["request"]
        message: dict[str, Any] = {
            "awsRegion": ctx.region,
            "eventTime": _iso(time.time()),
            "receivedTime": _iso(job["received"]),
            "invocationStatus": "Completed" if success else "Failed",
            "requestParameters": {
                "contentType": request.get("ContentType") or "application/octet-stream",
                "endpointName": route.name,
                "inputLocation": job["source"].uri,
            },
            "responseParameters": {"contentType": content_type},
            "inferenceId": job["inference_id"],
            "eventVersion": "1.0",
            "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        if success:
            message["responseParameters"]["outputLocation"] = job["output"].uri
        else:
            message["failureReason"] = reason
            message["responseParameters"]["failureLocation"] = job["failure"].uri
        wanted = set(notification.get("IncludeInferenceResponseIn") or [])
        if ("SUCCESS_NOTIFICATION_TOPIC" if success else "ERROR_NOTIFICATION_TOPIC") in wanted:
            try:
                message["responseBody"] = {"content": payload.decode("utf-8"), "encoding": "UTF-8"}
            except UnicodeDecodeError:
                message["responseBody"] = {
                    "content": base64.b64encode(payload).decode(),
                    "encoding": "BASE64",
                }
        try:
            self.sns_client().publish(TopicArn=topic, Message=json.dumps(message))
        except Exception:
            log.exception("publishing async inference notification to %s failed", topic)

    def stop(self) -> None:
        """Let queued invocations finish (bounded by their timeouts) and stop the workers."""
        self._pool.shutdown(wait=False, cancel_futures=True)
