"""IAM operations moto lacks, answered on the edge before moto sees the request.

IAM speaks the query protocol: a form-encoded POST (``Action=SimulatePrincipalPolicy&...``)
answered with XML. moto answers an action it has not implemented with HTTP 500, which
botocore retries and then reports as a parse error; the SageMaker SDK v3 stops there. This
module answers those actions itself, from botocore's IAM model: requests are parsed with
moto's model-driven ``QueryParser``, checked with the gateway's validator (AWS's wording),
and answered with moto's model-driven ``QuerySerializer``, so the wire shapes are the model's.
Every other IAM request goes on to moto untouched (its body restored).

Served here: ``SimulatePrincipalPolicy`` and ``SimulateCustomPolicy`` (emulator/iam_simulation.py).
"""

from __future__ import annotations

import io
import logging
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from emulator import iam_simulation
from emulator.gateway.validation import validate, validation_message

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 501: "Not Implemented"}


class IamQueryError(Exception):
    """An IAM error answer (moto's serializer reads ``code`` and ``message``)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class IamExtensions:
    """A WSGI front for IAM requests: answers the operations in :attr:`operations`, or returns None."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.operations: dict[str, Callable[[dict[str, Any], str | None], dict[str, Any]]] = {
            "SimulatePrincipalPolicy": self.simulate_principal_policy,
            "SimulateCustomPolicy": self.simulate_custom_policy,
        }
        self._model: Any = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse,
                 region: str | None) -> Iterable[bytes] | None:
        """Answer the request if its action is served here; else restore the body and return None."""
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        values = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if "form-urlencoded" in environ.get("CONTENT_TYPE", "") or not values:
            values.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        handler = self.operations.get(values.get("Action", ""))
        if handler is None:
            return None
        operation = self._service_model().operation_model(values["Action"])
        request_id = str(uuid.uuid4())
        try:
            params = self._parse(operation, values)
            result: Any = handler(params, region)
        except iam_simulation.SimulationError as exc:
            result = IamQueryError(exc.code, exc.message, exc.status)
        except IamQueryError as exc:
            result = exc
        except Exception as exc:  # a bug must still answer in IAM's shape, and be logged
            log.exception("IAM %s failed", values["Action"])
            result = IamQueryError("ServiceFailure", f"internal error: {exc}", 500)
        return self._respond(operation, result, request_id, start_response)

    # -- operations ------------------------------------------------------------------------------

    def simulate_principal_policy(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        """The principal's own policies (plus PolicyInputList) evaluated for each action and resource."""
        self._refuse_resource_policy(params)
        policies, boundary = iam_simulation.principal_policies(params["PolicySourceArn"], self.account_id, region)
        policies += iam_simulation.input_policies(params.get("PolicyInputList"))
        if params.get("PermissionsBoundaryPolicyInputList"):
            boundary = iam_simulation.input_policies(params["PermissionsBoundaryPolicyInputList"],
                                                     "PermissionsBoundaryPolicyInputList")
        return self._answer(params, policies, boundary)

    def simulate_custom_policy(self, params: dict[str, Any], region: str | None) -> dict[str, Any]:
        """Only the policies given as strings evaluated for each action and resource."""
        self._refuse_resource_policy(params)
        policies = iam_simulation.input_policies(params.get("PolicyInputList"))
        boundary = iam_simulation.input_policies(params.get("PermissionsBoundaryPolicyInputList"),
                                                 "PermissionsBoundaryPolicyInputList")
        return self._answer(params, policies, boundary)

    # -- helpers ---------------------------------------------------------------------------------

    def _answer(self, params: dict[str, Any], policies: list[iam_simulation.Policy],
                boundary: list[iam_simulation.Policy]) -> dict[str, Any]:
        results = iam_simulation.simulate(params["ActionNames"], params.get("ResourceArns"), policies, boundary,
                                          iam_simulation.context_values(params.get("ContextEntries")))
        return iam_simulation.page(results, params.get("Marker"), params.get("MaxItems"))

    @staticmethod
    def _refuse_resource_policy(params: Mapping[str, Any]) -> None:
        for member in ("ResourcePolicy", "ResourceHandlingOption"):
            if params.get(member):
                raise iam_simulation.Unsupported(
                    f"{member} is not supported by the emulator's policy simulator: resource-based policies "
                    f"are not evaluated. Leave it out to simulate the identity policies alone.")

    def _service_model(self) -> Any:
        if self._model is None:
            from moto.core.utils import get_service_model

            self._model = get_service_model("iam")
        return self._model

    @staticmethod
    def _parse(operation: Any, values: dict[str, str]) -> dict[str, Any]:
        from moto.core.parse import QueryParser
        from werkzeug.datastructures import MultiDict

        params: dict[str, Any] = QueryParser(operation).parse({
            "values": MultiDict(values), "body": "", "headers": {}, "method": "POST", "url_params": {},
            "url_path": "/"})
        problems = validate(params, operation.input_shape)
        if problems:
            raise IamQueryError("ValidationError", validation_message(problems), 400)
        return params

    @staticmethod
    def _respond(operation: Any, result: Any, request_id: str, start_response: StartResponse) -> list[bytes]:
        from moto.core.serialize import QuerySerializer, SerializationContext

        with warnings.catch_warnings():  # moto warns of error codes absent from the model (NotImplemented)
            warnings.simplefilter("ignore")
            serialized = QuerySerializer(operation, SerializationContext(request_id=request_id)).serialize(result)
        status = int(getattr(result, "status", serialized["status_code"]))
        payload = serialized["body"].encode() if isinstance(serialized["body"], str) else serialized["body"]
        headers = [("Content-Type", "text/xml"), ("Content-Length", str(len(payload))),
                   ("x-amzn-RequestId", request_id)]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [payload]


def _read_body(environ: Mapping[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    return bytes(stream.read(int(length))) if length else b""
