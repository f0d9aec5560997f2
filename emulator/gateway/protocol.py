"""The two wire protocols the emulator speaks, driven only by botocore's service models.

* ``JsonRpcProtocol``: AWS JSON 1.1, used by the ``sagemaker`` control plane. ``POST /`` with
  ``X-Amz-Target: SageMaker.<Operation>``, a JSON object of the input shape, a JSON answer.
* ``RestJsonProtocol``: rest-json, used by ``sagemaker-runtime``. The operation comes from
  method and path (``POST /endpoints/{EndpointName}/invocations``), scalar members travel in
  headers, and the payload member is the raw body.

No Flask and no I/O here: the gateway hands in bytes and headers and gets back dicts, bytes and
header lists, so every rule below is tested without a server (STYLE.md principle 1).

Requests are checked in two steps, both in ``validation``: ``decode_json`` turns JSON into
Python values of the shape (a wrong JSON type is a SerializationException in Coral's words;
unknown members are ignored; ``null`` is absent), then ``validate`` checks required members,
lengths, ranges, patterns and enums and the protocol raises ValidationException (runtime:
ValidationError) with AWS's message. Responses keep only members the output shape defines.

Where AWS sends a SerializationException or UnknownOperationException with no message at all
(malformed JSON, an unknown target), we send a short explanation instead: no client can
depend on an absent message, and a person reading the error gains from one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.utils import parse_timestamp

from emulator.errors import (
    UnknownOperationException,
    ValidationError,
    ValidationException,
)
from emulator.gateway.validation import (
    decode_json,
    load_json_object,
    type_mismatch,
    validate,
    validation_message,
)
from emulator.gateway.wire_errors import JSON_CONTENT_TYPE, REST_JSON_CONTENT_TYPE, error_response


@functools.cache
def load_service_model(name: str) -> ServiceModel:
    """The newest botocore model of service ``name`` (``sagemaker``, ``sagemaker-runtime``).

    Loaded once per process with botocore's own loader, the same files (and the same
    ``~/.aws/models`` overrides) the user's boto3 client reads.
    """
    return ServiceModel(Loader().load_service_model(name, "service-2"), service_name=name)


# -- JSON encoding (responses) ----------------------------------------------------------


def epoch_seconds(value: dt.datetime) -> float:
    """A datetime as epoch seconds with millisecond precision; naive means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return round(value.timestamp(), 3)


def encode_json(value: Any, shape: Shape, path: str = "") -> Any:
    """A handler's result as the JSON value of ``shape``.

    Keeps only members the shape defines, drops ``None`` and empty optional structures, writes
    timestamps as epoch seconds and blobs as base64. A value that cannot be of the shape is a
    bug in the emulator, reported as TypeError naming the member path.
    """
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            raise TypeError(f"{path or 'result'}: expected a mapping for {shape.name}, got {value!r}")
        out: dict[str, Any] = {}
        required = shape.required_members
        for name, member in shape.members.items():
            item = value.get(name)
            if item is None:
                continue
            encoded = encode_json(item, member, f"{path}.{name}" if path else name)
            if encoded == {} and member.type_name == "structure" and name not in required:
                continue
            out[name] = encoded
        return out
    if kind == "list":
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, set, frozenset)):
            raise TypeError(f"{path}: expected a list for {shape.name}, got {value!r}")
        return [encode_json(item, shape.member, f"{path}[]") for item in value if item is not None]
    if kind == "map":
        if not isinstance(value, Mapping):
            raise TypeError(f"{path}: expected a mapping for {shape.name}, got {value!r}")
        return {str(k): encode_json(v, shape.value, f"{path}.{k}") for k, v in value.items() if v is not None}
    return _encode_scalar(value, shape, path)


def _encode_scalar(value: Any, shape: Shape, path: str) -> Any:
    kind = shape.type_name
    if isinstance(value, enum.Enum):
        value = value.value
    if kind == "string" and isinstance(value, str):
        return value
    if kind in ("integer", "long") and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind in ("float", "double") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            return epoch_seconds(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return epoch_seconds(parse_timestamp(value))
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{path}: {value!r} is not a valid {kind} for {shape.name}")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


# -- AWS JSON 1.1 (sagemaker) --------------------------------------------------------------


class JsonRpcProtocol:
    """AWS JSON 1.1: operation from ``X-Amz-Target``, JSON object in, JSON object out."""

    def __init__(self, service_name: str = "sagemaker") -> None:
        self.service_model: ServiceModel = load_service_model(service_name)
        self.target_prefix: str = self.service_model.metadata["targetPrefix"]
        self._operation_names = frozenset(self.service_model.operation_names)

    def operation_from_target(self, target: str | None) -> OperationModel:
        """The operation named by an ``X-Amz-Target`` header such as ``SageMaker.CreateModel``."""
        if not target:
            raise UnknownOperationException(
                f"Missing X-Amz-Target header; expected {self.target_prefix}.<Operation>"
            )
        prefix, _, name = target.partition(".")
        if prefix != self.target_prefix or name not in self._operation_names:
            raise UnknownOperationException(
                f"Unknown operation {target!r}: not an operation of {self.service_model.service_name} "
                f"{self.service_model.api_version} in this botocore's model"
            )
        return self.service_model.operation_model(name)

    def parse(self, operation: OperationModel, body: bytes) -> dict[str, Any]:
        """The request body as validated input members (PascalCase keys, Python values)."""
        document = load_json_object(body) if body.strip() else {}
        shape = operation.input_shape
        if shape is None:
            return {}
        params: dict[str, Any] = decode_json(document, shape)
        problems = validate(params, shape)
        if problems:
            raise ValidationException(validation_message(problems))
        return params

    def serialize(self, operation: OperationModel, result: Mapping[str, Any]) -> bytes:
        """A handler's result as the JSON body of the operation's output shape."""
        shape = operation.output_shape
        if shape is None:
            return b"{}"
        return _dumps(encode_json(result, shape))


# -- rest-json (sagemaker-runtime) ------------------------------------------------------------


@dataclass(frozen=True)
class _RestPlan:
    """Everything about one rest-json operation that does not change between calls."""

    operation: OperationModel
    method: str
    route: re.Pattern[str]
    labels: tuple[tuple[str, str], ...]  # (regex group, URI label)
    uri_members: tuple[tuple[str, str, Shape], ...]  # (member, URI label, shape)
    header_members: tuple[tuple[str, str, Shape], ...]  # (member, lower-case header, shape)
    payload: tuple[str, Shape] | None  # the member that is the whole body
    body_members: frozenset[str]  # members sent as a JSON body when there is no payload
    status: int
    out_headers: tuple[tuple[str, str, Shape], ...]  # (member, header as in the model, shape)
    out_payload: tuple[str, Shape] | None
    out_body_members: frozenset[str]


_LABEL = re.compile(r"\{([^}]+?)(\+?)\}")


def _route(request_uri: str) -> tuple[re.Pattern[str], tuple[tuple[str, str], ...]]:
    """A regex matching request paths of a ``requestUri`` template, and its labels."""
    template = request_uri.split("?", 1)[0]
    parts: list[str] = []
    labels: list[tuple[str, str]] = []
    last = 0
    for index, found in enumerate(_LABEL.finditer(template)):
        parts.append(re.escape(template[last : found.start()]))
        group = f"g{index}"
        parts.append(f"(?P<{group}>.+)" if found.group(2) else f"(?P<{group}>[^/]+)")
        labels.append((group, found.group(1)))
        last = found.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts)), tuple(labels)


def _plan(operation: OperationModel) -> _RestPlan:
    http = operation.http
    route, labels = _route(http["requestUri"])
    uri: list[tuple[str, str, Shape]] = []
    headers: list[tuple[str, str, Shape]] = []
    body: set[str] = set()
    payload = None
    in_shape = operation.input_shape
    if in_shape is not None:
        payload_name = in_shape.serialization.get("payload")
        for name, member in in_shape.members.items():
            location = member.serialization.get("location")
            where = member.serialization.get("name", name)
            if location == "uri":
                uri.append((name, where, member))
            elif location == "header":
                headers.append((name, where.lower(), member))
            elif name == payload_name:
                payload = (name, member)
            elif location is None:
                body.add(name)
    out_headers: list[tuple[str, str, Shape]] = []
    out_body: set[str] = set()
    out_payload = None
    out_shape = operation.output_shape
    if out_shape is not None:
        payload_name = out_shape.serialization.get("payload")
        for name, member in out_shape.members.items():
            location = member.serialization.get("location")
            if location == "header":
                out_headers.append((name, member.serialization.get("name", name), member))
            elif name == payload_name:
                out_payload = (name, member)
            elif location is None:
                out_body.add(name)
    return _RestPlan(
        operation=operation,
        method=http["method"].upper(),
        route=route,
        labels=labels,
        uri_members=tuple(uri),
        header_members=tuple(headers),
        payload=payload,
        body_members=frozenset(body),
        status=int(http.get("responseCode", 200)),
        out_headers=tuple(out_headers),
        out_payload=out_payload,
        out_body_members=frozenset(out_body),
    )


def _header_value(raw: str, shape: Shape) -> Any:
    """A request header's text as the Python value of its shape."""
    kind = shape.type_name
    try:
        if kind == "string":
            if shape.serialization.get("jsonvalue"):
                return json.loads(base64.b64decode(raw))
            return raw
        if kind in ("integer", "long"):
            return int(raw)
        if kind in ("float", "double"):
            return float(raw)
        if kind == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if kind == "timestamp":
            return parse_timestamp(raw)
        if kind == "list":
            return [part.strip() for part in raw.split(",")]
    except (ValueError, TypeError, binascii.Error):
        raise type_mismatch(raw, shape) from None
    return raw


def _header_text(value: Any, shape: Shape) -> str:
    """A response member's value as header text."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        stamp = dt.datetime.fromtimestamp(epoch_seconds(value), tz=dt.timezone.utc)
        return stamp.strftime("%a, %d %b %Y %H:%M:%S GMT")
    if shape.serialization.get("jsonvalue"):
        return base64.b64encode(_dumps(value)).decode("ascii")
    return str(value)


class RestJsonProtocol:
    """rest-json: operation from method and path; members in the URI, headers and body.

    Per-operation routes and header maps are computed once, because InvokeEndpoint is the
    emulator's hot path.
    """

    def __init__(self, service_name: str = "sagemaker-runtime") -> None:
        self.service_model: ServiceModel = load_service_model(service_name)
        self._plans: dict[str, _RestPlan] = {
            name: _plan(self.service_model.operation_model(name))
            for name in self.service_model.operation_names
        }

    def operation_for(self, method: str, path: str) -> tuple[OperationModel, dict[str, str]] | None:
        """The operation whose ``requestUri`` matches, with its URL-decoded labels; else None."""
        method = method.upper()
        path = path.split("?", 1)[0]
        for plan in self._plans.values():
            if plan.method != method:
                continue
            found = plan.route.fullmatch(path)
            if found is not None:
                return plan.operation, {label: unquote(found.group(group)) for group, label in plan.labels}
        return None

    def parse(
        self,
        operation: OperationModel,
        uri_params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        """Input members from URI labels, headers and body, validated (runtime ValidationError)."""
        plan = self._plans[operation.name]
        params: dict[str, Any] = {}
        for name, label, _shape in plan.uri_members:
            if label in uri_params:
                params[name] = uri_params[label]
        lowered = {key.lower(): value for key, value in headers.items()}
        for name, header, shape in plan.header_members:
            raw = lowered.get(header)
            if raw is not None:
                params[name] = _header_value(raw, shape)
        if plan.payload is not None:
            name, shape = plan.payload
            if shape.type_name in ("blob", "string"):
                params[name] = body if shape.type_name == "blob" else body.decode("utf-8", "replace")
            elif body.strip():
                params[name] = decode_json(load_json_object(body), shape)
        elif plan.body_members and body.strip():
            document = load_json_object(body)
            members = operation.input_shape.members
            params.update(
                (name, decode_json(value, members[name]))
                for name, value in document.items()
                if value is not None and name in plan.body_members
            )
        if operation.input_shape is not None:
            problems = validate(params, operation.input_shape)
            if problems:
                raise ValidationError(validation_message(problems))
        return params

    def serialize(
        self, operation: OperationModel, result: Mapping[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """``(status, headers, body)`` of a handler's result.

        Header members become headers (names as the model spells them), a blob payload is the
        body as-is, and members without a location form a JSON body. An event-stream payload
        yields an empty body: the gateway streams the frames itself (``payload_part_frame``).
        """
        plan = self._plans[operation.name]
        headers: list[tuple[str, str]] = []
        for name, header, shape in plan.out_headers:
            value = result.get(name)
            if value is not None:
                headers.append((header, _header_text(value, shape)))
        body = b""
        if plan.out_payload is not None:
            name, shape = plan.out_payload
            value = result.get(name)
            if shape.type_name == "blob" and value is not None:
                body = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            elif shape.type_name == "structure" and not shape.serialization.get("eventstream"):
                body = _dumps(encode_json(value or {}, shape, name))
        elif plan.out_body_members:
            members = operation.output_shape.members
            document = {
                name: encode_json(result[name], members[name], name)
                for name in members
                if name in plan.out_body_members and result.get(name) is not None
            }
            body = _dumps(document)
            if not any(header.lower() == "content-type" for header, _ in headers):
                headers.append(("Content-Type", REST_JSON_CONTENT_TYPE))
        return plan.status, headers, body


__all__ = [
    "JSON_CONTENT_TYPE",
    "REST_JSON_CONTENT_TYPE",
    "JsonRpcProtocol",
    "RestJsonProtocol",
    "decode_json",
    "encode_json",
    "epoch_seconds",
    "error_response",
    "load_service_model",
    "validate",
    "validation_message",
]
