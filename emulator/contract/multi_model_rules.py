"""The multi-model container's contract: the model API's statuses and bodies (pure; runner: multi_model_run.py).

A multi-model check deploys the image as a ``Mode: MultiModel`` endpoint through the emulator
and invokes a model with TargetModel, so the emulator plays SageMaker's side: it lists models
while the container starts, extracts the archive to /opt/ml/models/<name>/model, loads it with
POST /models and invokes POST /models/<name>/invoke. The calls SageMaker makes only in
situations a short check cannot provoke (a second load of a loaded model, a get, an unload,
calls for a model that is not loaded) are then made on the container's published port, the
way the platform makes them, and the first model is invoked again through the emulator after
its unload (the platform reloads a model the container no longer has).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from emulator.contract.judges import judge_stop
from emulator.contract.observations import InvokeResult, StopObservation
from emulator.contract.rules import Rule, Verdict, clip, dg, failed, passed, skipped
from emulator.contract.serving_rules import EndpointStart

MULTI_MODEL_LABEL = "com.amazonaws.sagemaker.capabilities.multi-models"


@dataclass(frozen=True)
class Call:
    """One model-API call made on the container: what was sent and what came back."""

    method: str
    path: str
    status: int | str
    """The HTTP status, or a word when there was no answer."""
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def shown(self) -> str:
        """``POST /models -> 409 {"code": ...}`` for evidence."""
        return f"{self.method} {self.path} -> {self.status} {clip(self.body.decode('utf-8', 'replace'), 160)}"


@dataclass
class MultiModelObservations:
    """Everything a multi-model check saw."""

    label: str | None = None
    """The image's multi-models label value (None: the image could not be inspected)."""
    endpoint: EndpointStart | None = None
    model_name: str | None = None
    """The name the emulator loaded the first target model under (opaque, as on SageMaker)."""
    first_invoke: InvokeResult | None = None
    calls: dict[str, Call] = field(default_factory=dict)
    """Direct calls by purpose: list, get, get-unknown, load-again, invoke-unknown, unload-unknown, unload,
    get-after-unload, list-after-unload."""
    second_invoke: InvokeResult | None = None
    """The same target invoked again through the emulator after the unload (a reload)."""
    not_probed: str = ""
    """Why the direct calls were not made, when they were not."""
    stop: StopObservation | None = None


START = "multi-model.startup"
LOAD = "multi-model.load"


def _label(o: MultiModelObservations) -> Verdict:
    if o.label is None:
        return skipped("not evaluated: the image's labels could not be read")
    if o.label.lower() == "true":
        return passed(f"the image carries LABEL {MULTI_MODEL_LABEL}=true")
    shown = f"={o.label!r}" if o.label else " (absent)"
    return failed(f"the image's label {MULTI_MODEL_LABEL}{shown} is not 'true': SageMaker refuses the image "
                  "for a multi-model endpoint")


def _startup(o: MultiModelObservations) -> Verdict:
    if o.endpoint is None:
        return skipped("not evaluated: no endpoint was created")
    if o.endpoint.in_service:
        return passed(f"with SAGEMAKER_MULTI_MODEL=true the container answered GET /ping and GET /models 200: "
                      f"endpoint {o.endpoint.name} InService after {o.endpoint.seconds:.1f} s")
    return failed(f"endpoint {o.endpoint.name} ended {o.endpoint.status}: "
                  f"{clip(o.endpoint.failure_reason or '', 700)}")


def _up(o: MultiModelObservations) -> Verdict | None:
    if o.endpoint is None or not o.endpoint.in_service:
        return skipped(f"not evaluated: the endpoint did not come up (see {START})")
    return None


def _loaded(o: MultiModelObservations) -> Verdict | None:
    blocked = _up(o)
    if blocked:
        return blocked
    if o.first_invoke is None or not o.first_invoke.ok:
        return skipped(f"not evaluated: no model could be loaded and invoked (see {LOAD})")
    if o.not_probed:
        return skipped(f"not evaluated: {o.not_probed}")
    return None


def _load(o: MultiModelObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    if o.first_invoke is None:
        return skipped("not evaluated: no model was invoked")
    if not o.first_invoke.ok:
        return failed(f"InvokeEndpoint with TargetModel (POST /models, then POST /models/<name>/invoke) failed: "
                      f"{clip(o.first_invoke.detail, 500)}")
    return passed(f"POST /models loaded the model as {o.model_name or 'its name'} and InvokeEndpoint with "
                  f"TargetModel answered {o.first_invoke.detail}")


def _load_again(o: MultiModelObservations) -> Verdict:
    blocked = _loaded(o)
    if blocked:
        return blocked
    call = o.calls.get("load-again")
    if call is None:
        return skipped("not evaluated: the second load was not sent")
    if call.status == 409:
        return passed(f"loading a loaded model again: {call.shown()}")
    return failed(f"loading a model that is already loaded must answer 409: {call.shown()}")


def _list(o: MultiModelObservations) -> Verdict:
    blocked = _loaded(o)
    if blocked:
        return blocked
    call = o.calls.get("list")
    if call is None:
        return skipped("not evaluated: GET /models was not sent")
    body = call.json()
    models = body.get("models") if isinstance(body, dict) else None
    if call.status != 200 or not isinstance(models, list):
        return failed(f'GET /models must answer 200 {{"models": [{{"modelName", "modelUrl"}}, ...]}}: {call.shown()}')
    names = [m.get("modelName") for m in models if isinstance(m, dict)]
    if o.model_name not in names:
        return failed(f"GET /models does not list the loaded model {o.model_name} under modelName: {call.shown()}")
    return passed(f"GET /models lists the loaded model: {call.shown()}")


def _get(o: MultiModelObservations) -> Verdict:
    blocked = _loaded(o)
    if blocked:
        return blocked
    known, unknown = o.calls.get("get"), o.calls.get("get-unknown")
    if known is None or unknown is None:
        return skipped("not evaluated: GET /models/<name> was not sent")
    body = known.json()
    if known.status != 200 or not isinstance(body, dict) or body.get("modelName") != o.model_name:
        return failed(f"GET /models/<loaded model> must answer 200 with its modelName: {known.shown()}")
    if unknown.status != 404:
        return failed(f"GET /models/<model not loaded> must answer 404: {unknown.shown()}")
    return passed(f"{known.shown()}; {unknown.shown()}")


def _invoke(o: MultiModelObservations) -> Verdict:
    blocked = _loaded(o)
    if blocked:
        return blocked
    call = o.calls.get("invoke-unknown")
    if call is None:
        return skipped("not evaluated: POST /models/<unknown>/invoke was not sent")
    if call.status != 404:
        return failed(f"invoking a model that is not loaded must answer 404 (the platform then loads it): "
                      f"{call.shown()}")
    reload = o.second_invoke
    if reload is not None and not reload.ok:
        return failed(f"after the container unloaded the model, InvokeEndpoint (which reloads it when the "
                      f"container answers 404) failed: {clip(reload.detail, 300)}")
    again = f"; invoked again after an unload: {reload.detail}" if reload is not None else ""
    return passed(f"a loaded model answered {o.first_invoke.detail if o.first_invoke else ''}; {call.shown()}{again}")


def _unload(o: MultiModelObservations) -> Verdict:
    blocked = _loaded(o)
    if blocked:
        return blocked
    unload, unknown = o.calls.get("unload"), o.calls.get("unload-unknown")
    after, listed = o.calls.get("get-after-unload"), o.calls.get("list-after-unload")
    if unload is None or unknown is None or after is None or listed is None:
        return skipped("not evaluated: DELETE /models/<name> was not sent")
    if unload.status != 200:
        return failed(f"unloading a loaded model must answer 200: {unload.shown()}")
    still = [c.shown() for c in (after, listed) if o.model_name in _names(c)]
    if still:
        return failed(f"after {unload.method} {unload.path} answered 200 the model is still loaded: {'; '.join(still)}")
    if unknown.status != 404:
        return failed(f"unloading a model that is not loaded must answer 404: {unknown.shown()}")
    return passed(f"{unload.shown()}; then {after.shown()}; {unknown.shown()}")


def _names(call: Call) -> list[str]:
    """Model names a GET /models or GET /models/<name> answer shows as loaded."""
    if call.status != 200:
        return []
    body = call.json()
    if isinstance(body, dict) and isinstance(body.get("models"), list):
        return [str(m.get("modelName")) for m in body["models"] if isinstance(m, dict)]
    if isinstance(body, dict) and body.get("modelName"):
        return [str(body["modelName"])]
    return []


def _sigterm(o: MultiModelObservations) -> Verdict:
    return _up(o) or judge_stop(o.stop, "DeleteEndpoint", "30 s")


_API = "mms-container-apis"
_BUILD = dg("build-multi-model-build-container", "",
            "a multi-model container declares LABEL com.amazonaws.sagemaker.capabilities.multi-models=true; "
            "SageMaker sets SAGEMAKER_MULTI_MODEL=true")
_CONTRACT = dg(_API, "", "load, list, get, unload and invoke APIs the platform calls")
_LOAD = dg(_API, "multi-model-api-load-model", "POST /models loads model_name from url; 409 if already loaded")
_LIST = dg(_API, "multi-model-api-list-model", 'GET /models answers {"models": [{"modelName", "modelUrl"}]}')
_GET = dg(_API, "multi-model-api-get-model", "GET /models/{model_name}; 404 if it is not loaded")
_UNLOAD = dg(_API, "multi-model-api-unload-model", "DELETE /models/{model_name} frees it; 404 if it is not loaded")
_INVOKE = dg(_API, "multi-model-api-invoke-model", "POST /models/{model_name}/invoke; 404 if it is not loaded")
_STOP = dg("your-algorithms-inference-code", "your-algorithms-inference-code-run-image",
           "stopping sends SIGTERM, then SIGKILL 30 seconds later")

RULES: tuple[Rule, ...] = (
    Rule("multi-model.label", "declares multi-model support with its image label", _BUILD, _label),
    Rule(START, "starts with SAGEMAKER_MULTI_MODEL=true and answers /ping and GET /models", _CONTRACT, _startup),
    Rule(LOAD, "loads a model on POST /models and serves it through InvokeEndpoint", _LOAD, _load),
    Rule("multi-model.load-conflict", "answers 409 to a second load of a loaded model", _LOAD, _load_again),
    Rule("multi-model.list", "lists loaded models on GET /models", _LIST, _list),
    Rule("multi-model.get", "answers GET /models/<name>: 200 when loaded, 404 when not", _GET, _get),
    Rule("multi-model.invoke", "answers 404 to POST /models/<name>/invoke for a model not loaded", _INVOKE, _invoke),
    Rule("multi-model.unload", "unloads on DELETE /models/<name> (404 when not loaded)", _UNLOAD, _unload),
    Rule("multi-model.sigterm", "exits on SIGTERM before the SIGKILL 30 s later", _STOP, _sigterm),
)
