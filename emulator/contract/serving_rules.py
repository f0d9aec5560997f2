"""The inference container's contract: rules and judges (pure; the runner is serving_run.py).

A serving check deploys the image as a single-model endpoint (and, when its label says it can
bind to another port, as a two-container endpoint) through the emulator, then invokes it
through the emulator's runtime API: each declared content type, many clients at once while the
platform's health check keeps pinging, a 6 MiB request, a malformed request. It reads the
container's listening sockets and finally deletes the endpoint, watching the SIGTERM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.contract.judges import judge_stop
from emulator.contract.observations import InvokeResult, ListeningPorts, LoadObservation, StopObservation
from emulator.contract.rules import API, Rule, Source, Verdict, clip, dg, failed, passed, skipped

BIND_LABEL = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
PING_TIMEOUT = 2.0


@dataclass(frozen=True)
class EndpointStart:
    """How an endpoint came up (or did not)."""

    name: str
    status: str
    seconds: float
    failure_reason: str | None = None
    log_tail: tuple[str, ...] = ()
    deadline: float | None = None
    """The startup health-check deadline the emulator applied (seconds), when known."""

    @property
    def in_service(self) -> bool:
        """Whether the endpoint reached InService."""
        return self.status == "InService"


@dataclass
class ServingObservations:
    """Everything a serving check saw."""

    endpoint: EndpointStart | None = None
    requests: list[tuple[str, InvokeResult]] = field(default_factory=list)
    """(content type, result) for each declared content type."""
    load: LoadObservation | None = None
    max_payload: InvokeResult | None = None
    max_payload_note: str = ""
    """Why no maximum-size request was sent, when none was."""
    malformed: InvokeResult | None = None
    after_malformed: InvokeResult | None = None
    alive_after_malformed: str = ""
    """How the endpoint and its container were after the malformed request ("" = healthy)."""
    bind_label: bool | None = None
    """Whether the image declares it accepts SAGEMAKER_BIND_TO_PORT (None: image not inspected)."""
    bind_endpoint: EndpointStart | None = None
    bind_invokes: list[tuple[str, InvokeResult]] = field(default_factory=list)
    """(container hostname, result) on the two-container endpoint."""
    bind_ports: dict[str, int] = field(default_factory=dict)
    """Container hostname -> the SAGEMAKER_BIND_TO_PORT it was given."""
    ports: ListeningPorts | None = None
    stop: StopObservation | None = None


PING = "serving.ping"


def _up(o: ServingObservations) -> Verdict | None:
    if o.endpoint is None:
        return skipped("not evaluated: no endpoint was created")
    if not o.endpoint.in_service:
        return skipped(f"not evaluated: the endpoint did not come up (see {PING})")
    return None


def _ping(o: ServingObservations) -> Verdict:
    if o.endpoint is None:
        return skipped("not evaluated: no endpoint was created")
    deadline = f"{o.endpoint.deadline:g} s" if o.endpoint.deadline else "the startup deadline"
    if o.endpoint.in_service:
        return passed(f"`docker run IMAGE serve` answered GET /ping 200 (each ping within {PING_TIMEOUT:g} s): "
                      f"endpoint {o.endpoint.name} InService after {o.endpoint.seconds:.1f} s (deadline {deadline})")
    detail = o.endpoint.failure_reason or o.endpoint.status
    return failed(f"endpoint {o.endpoint.name} ended {o.endpoint.status} after {o.endpoint.seconds:.1f} s "
                  f"(deadline {deadline}): {clip(detail, 700)}")


def _invocations(o: ServingObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    if not o.requests:
        return skipped("not evaluated: no request was sent")
    bad = [(ctype, r) for ctype, r in o.requests if not r.ok]
    if bad:
        return failed("; ".join(f"POST /invocations with Content-Type {ctype} failed: {clip(r.detail, 300)}"
                                for ctype, r in bad))
    return passed("; ".join(f"{ctype}: {r.detail} in {r.seconds * 1000:.0f} ms" for ctype, r in o.requests))


def _concurrency(o: ServingObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    load = o.load
    if load is None or not load.results:
        return skipped("not evaluated: no concurrent requests were sent")
    failures = [r for r in load.results if not r.ok]
    bad_pings = [p for p in load.pings if p != 200]
    total = len(load.results)
    slowest = max(r.seconds for r in load.results)
    if failures or bad_pings:
        parts = []
        if failures:
            parts.append(f"{len(failures)} of {total} requests from {load.clients} concurrent clients failed "
                         f"(first: {clip(failures[0].detail, 250)})")
        if bad_pings:
            parts.append(f"{len(bad_pings)} of {len(load.pings)} health checks made meanwhile did not answer 200 "
                         f"within {PING_TIMEOUT:g} s (first: {bad_pings[0]}); SageMaker replaces such an instance")
        return failed("; ".join(parts))
    pings = f"; /ping answered 200 to all {len(load.pings)} health checks meanwhile" if load.pings else ""
    return passed(f"all {total} requests from {load.clients} concurrent clients succeeded (slowest "
                  f"{slowest * 1000:.0f} ms){pings}")


def _max_payload(o: ServingObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    if o.max_payload is None:
        return skipped(f"not evaluated: {o.max_payload_note or 'no maximum-size request was sent'}")
    if o.max_payload.ok:
        return passed(f"a 6 MiB (6291456-byte) request succeeded: {o.max_payload.detail}")
    return failed(f"a 6 MiB (6291456-byte) request, the most InvokeEndpoint accepts, failed: "
                  f"{clip(o.max_payload.detail, 400)}")


def _malformed(o: ServingObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    if o.malformed is None:
        return skipped("not evaluated: no malformed request was sent")
    answered = f"the malformed request was answered {o.malformed.original_status or o.malformed.status}"
    if o.malformed.ok:
        answered += " (a 4xx would tell the caller its request was at fault)"
    if o.alive_after_malformed:
        return failed(f"{answered}; afterwards {o.alive_after_malformed}")
    if o.after_malformed is not None and not o.after_malformed.ok:
        return failed(f"{answered}; the next valid request failed: {clip(o.after_malformed.detail, 300)}")
    return passed(f"{answered}; the container kept serving (next request: "
                  f"{o.after_malformed.detail if o.after_malformed else 'not sent'}, /ping 200)")


def _bind_to_port(o: ServingObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    if o.bind_label is None:
        return skipped("not evaluated: the image's labels could not be read")
    if not o.bind_label:
        return skipped(f"not applicable: the image has no LABEL {BIND_LABEL}=true, so SageMaker will not put it in "
                       "an inference pipeline or a multi-container endpoint")
    if o.bind_endpoint is None:
        return skipped("not evaluated: no multi-container endpoint was created")
    ports = ", ".join(f"{h}={p}" for h, p in sorted(o.bind_ports.items()))
    if not o.bind_endpoint.in_service:
        return failed(f"with SAGEMAKER_BIND_TO_PORT ({ports}) the two-container endpoint ended "
                      f"{o.bind_endpoint.status}: {clip(o.bind_endpoint.failure_reason or '', 600)}")
    bad = [(h, r) for h, r in o.bind_invokes if not r.ok]
    if bad:
        return failed("; ".join(f"container {h} (SAGEMAKER_BIND_TO_PORT={o.bind_ports.get(h)}) failed: "
                                f"{clip(r.detail, 250)}" for h, r in bad))
    return passed(f"each container listened on its SAGEMAKER_BIND_TO_PORT ({ports}) and answered")


def _safe_port_range(o: ServingObservations) -> Verdict:
    blocked = _up(o)
    if blocked:
        return blocked
    ports = o.ports
    if ports is None:
        return skipped("not evaluated: the container's sockets were not inspected")
    if ports.not_observed:
        return skipped(f"not evaluated: {ports.not_observed}")
    if ports.safe_range is None:
        return skipped("not evaluated: the container was given no SAGEMAKER_SAFE_PORT_RANGE")
    low, high = ports.safe_range
    outside = [p for p in ports.ports if p != ports.serving_port and not low <= p <= high]
    listed = ", ".join(map(str, ports.ports)) or "none"
    if outside:
        return failed(f"listens on {', '.join(map(str, outside))}, outside SAGEMAKER_SAFE_PORT_RANGE={low}-{high} "
                      f"(and not the serving port {ports.serving_port}); all listening ports: {listed}")
    return passed(f"listening ports {listed}: the serving port {ports.serving_port} and none outside "
                  f"SAGEMAKER_SAFE_PORT_RANGE={low}-{high}")


def _sigterm(o: ServingObservations) -> Verdict:
    return _up(o) or judge_stop(o.stop, "DeleteEndpoint", "30 s")


_INFERENCE = "your-algorithms-inference-code"
_RUN = dg(_INFERENCE, "your-algorithms-inference-code-run-image",
          "SageMaker runs `docker run image serve`; stopping sends SIGTERM, then SIGKILL 30 seconds later")
_PINGS = dg(_INFERENCE, "your-algorithms-inference-algo-ping-requests",
            "periodic GET /ping; the container must consistently answer 200 within 4 minutes of startup; "
            "each /ping attempt times out after 2 seconds")
_RESPONSE = dg(_INFERENCE, "your-algorithms-inference-code-container-response",
               "accept POST /invocations, accept socket connections within 250 ms, respond within 60 seconds")
_BODY = Source("API_runtime_InvokeEndpoint", f"{API}/API_runtime_InvokeEndpoint.html",
               "Body: maximum length of 6291456 bytes; a container's 4xx/5xx is a ModelError")
_PIPELINE = dg("inference-pipeline-real-time", "",
               "containers listen on SAGEMAKER_BIND_TO_PORT when they carry LABEL "
               "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true; a second port must come from "
               "SAGEMAKER_SAFE_PORT_RANGE")

RULES: tuple[Rule, ...] = (
    Rule(PING, "starts with `serve` and answers GET /ping 200 within the startup deadline", _PINGS, _ping),
    Rule("serving.invocations", "answers POST /invocations for each declared content type", _RESPONSE, _invocations),
    Rule("serving.concurrency", "keeps answering requests and /ping under concurrent load", _RESPONSE, _concurrency),
    Rule("serving.max-payload", "accepts a request of InvokeEndpoint's maximum size (6 MiB)", _BODY, _max_payload),
    Rule("serving.malformed-request", "keeps serving after a malformed request", _BODY, _malformed),
    Rule("serving.bind-to-port", "listens on SAGEMAKER_BIND_TO_PORT when its label says it can", _PIPELINE,
         _bind_to_port),
    Rule("serving.safe-port-range", "opens other ports only inside SAGEMAKER_SAFE_PORT_RANGE", _PIPELINE,
         _safe_port_range),
    Rule("serving.sigterm", "exits on SIGTERM before the SIGKILL 30 s later", _RUN, _sigterm),
)
