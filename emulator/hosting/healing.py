"""Endpoints heal as on SageMaker: an instance whose container exits, or stops answering
``GET /ping``, after the endpoint went InService is replaced automatically.

A monitor thread looks at every InService endpoint's instances every ``interval`` seconds:
a container that is no longer running fails at once; one whose /ping does not answer 200
(SageMaker's 2 s per check) fails after ``threshold`` checks in a row. The deployer then takes
the instance out of the route, removes its containers and starts a replacement, as the
endpoint's worker (:meth:`Deployer.heal`), so the data plane sees it as one more route change.
Until the replacement passes /ping, invocations go to the variant's other instances, or get
AWS's ``ServiceUnavailable`` when it has none. Each event is told in three places: a line in
the emulator's log, a line in the instance's CloudWatch stream, and the endpoint's event list
(store kind ``hosting-events``) that the dashboard shows. A replacement that fails to start
is tried again after a back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator import cloudwatch
from emulator.hosting.deployer import Deployer
from emulator.hosting.deployment import EVENTS_KIND, EndpointState
from emulator.hosting.fleet import RunningInstance, ping
from emulator.hosting.lifecycle import EndpointStatus as S
from emulator.hosting.logs import log_group
from emulator.hosting.plan import VariantPlan
from emulator.hosting.publisher import container_stream
from emulator.hosting.validation import SINGLE
from emulator.runtime.spec import RuntimeError_

log = logging.getLogger("emulator.events")

DEFAULT_INTERVAL = 5.0
DEFAULT_THRESHOLD = 3
"""Consecutive failed /ping checks that fail an instance that is still running."""
RETRY_SECONDS = (5.0, 15.0, 30.0, 60.0, 120.0)
"""Waits before trying again to start a replacement that failed, one after another."""
MAX_EVENTS = 50


@dataclass
class InstanceHealth:
    """What the monitor last saw of one instance."""

    status: str = "Healthy"
    """``Healthy``, ``Unhealthy`` (failing /ping, not yet replaced) or ``Replacing``."""
    failures: int = 0
    last_answer: str = ""
    checked: float = 0.0


class HealthMonitor:
    """Checks InService instances and has the deployer replace the ones that fail."""

    def __init__(
        self,
        deployer: Deployer,
        interval: float = DEFAULT_INTERVAL,
        threshold: int = DEFAULT_THRESHOLD,
        probe_ping: Callable[[str, int], int | str] = ping,
    ) -> None:
        self.deployer = deployer
        self.interval = interval
        """Seconds between checks; 0 turns healing off (SMEMU_ENDPOINT_HEALTH_CHECK_SECONDS)."""
        self.threshold = threshold
        self.ping = probe_ping
        self.health: dict[str, InstanceHealth] = {}
        """Instance id -> what the last check saw."""
        self._retry: dict[tuple[str, str], tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start checking in a background thread (unless healing is off)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="endpoint-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (instances keep running)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.check_all()
            except Exception:
                log.exception("checking endpoint health failed")

    def check_all(self) -> None:
        """One round of checks over every endpoint."""
        for state in list(self.deployer.states.values()):
            if self._stopped.is_set():
                return
            self.check(state)

    def check(self, state: EndpointState) -> None:
        """Check one endpoint's instances; start a replacement for each that failed."""
        deployment = state.active
        busy = state.worker is not None and state.worker.is_alive()
        if deployment is None or busy or state.cancel.is_set():
            return
        record = self.deployer.store.get("endpoint", state.name)
        if record is None or record.get("EndpointStatus") != S.IN_SERVICE.value:
            return
        for variant in deployment.plan.variants:
            if variant.is_serverless:
                continue
            for instance in list(deployment.instances.get(variant.name, [])):
                problem = self.probe(variant, instance)
                if problem is not None:
                    self._replace(state, variant, instance, problem)
                    return  # one change at a time: the next round sees the new fleet
            short = deployment.counts[variant.name] - len(deployment.instances.get(variant.name, []))
            if short > 0 and self._may_retry(state.name, variant.name):
                self.deployer.heal(state.name, variant.name, None, self._reporter(state, variant, None))
                return

    def probe(self, variant: VariantPlan, instance: RunningInstance) -> str | None:
        """Why the instance failed its health check, or None while it is healthy."""
        health = self.health.setdefault(instance.instance_id, InstanceHealth())
        health.checked = time.time()
        backend = self.deployer.fleet.backend
        for container in instance.containers:
            who = "primary" if variant.mode == SINGLE else container.hostname
            try:
                running = backend.is_running(container.container_id)
            except RuntimeError_:
                return None  # the engine itself is unreachable: nothing to replace onto
            if not running:
                code = self.deployer.fleet.exit_code(container.container_id)
                health.status, health.last_answer = "Unhealthy", f"exited with code {code}"
                return f"its {who} container exited with code {code}"
            answer = self.ping(container.host, container.published_port)
            if answer == 200:
                continue
            health.failures += 1
            health.status = "Unhealthy"
            health.last_answer = f"HTTP {answer}" if isinstance(answer, int) else answer
            if health.failures >= self.threshold:
                return (f"its {who} container did not answer GET /ping with 200 in {health.failures} checks "
                        f"in a row (last answer: {health.last_answer})")
            return None
        health.status, health.failures, health.last_answer = "Healthy", 0, "HTTP 200"
        return None

    # -- replacing ----------------------------------------------------------------------------

    def _replace(self, state: EndpointState, variant: VariantPlan, instance: RunningInstance, problem: str) -> None:
        self.health[instance.instance_id].status = "Replacing"
        message = (f"instance {instance.instance_id} of variant {variant.name} failed its health check: "
                   f"{problem}. Replacing it.")
        self.record(state, message)
        self._stream_line(state, variant, instance, message)
        self.deployer.heal(state.name, variant.name, instance.instance_id,
                           self._reporter(state, variant, instance))

    def _reporter(
        self, state: EndpointState, variant: VariantPlan, failed: RunningInstance | None
    ) -> Callable[[str, str, str], None]:
        def report(event: str, instance_id: str, detail: str) -> None:
            if event == "removed":
                self.health.pop(instance_id, None)
                return
            if event == "failed":
                wait = self._back_off(state.name, variant.name)
                self.record(state, f"a replacement instance for variant {variant.name} could not start: {detail} "
                                   f"Trying again in {wait:g} s.")
                return
            self._retry.pop((state.name.lower(), variant.name), None)
            replaced = f" replaced instance {instance_id}" if instance_id else " was added"
            message = f"instance {detail} of variant {variant.name}{replaced} and is InService."
            self.record(state, message)
            added = self._instance(state, variant.name, detail)
            if added is not None:
                self._stream_line(state, variant, added, message)

        return report

    def _instance(self, state: EndpointState, variant: str, instance_id: str) -> RunningInstance | None:
        deployment = state.active
        for instance in (deployment.instances.get(variant, []) if deployment else []):
            if instance.instance_id == instance_id:
                return instance
        return None

    def _may_retry(self, name: str, variant: str) -> bool:
        after, _tries = self._retry.get((name.lower(), variant), (0.0, 0))
        return time.monotonic() >= after

    def _back_off(self, name: str, variant: str) -> float:
        key = (name.lower(), variant)
        _after, tries = self._retry.get(key, (0.0, 0))
        wait = RETRY_SECONDS[min(tries, len(RETRY_SECONDS) - 1)]
        self._retry[key] = (time.monotonic() + wait, tries + 1)
        return wait

    # -- telling it ---------------------------------------------------------------------------

    def record(self, state: EndpointState, message: str) -> None:
        """Log an event and keep it in the endpoint's event list."""
        log.info("endpoint %s: %s", state.name, message)
        event = {"Time": time.time(), "Message": message}

        def append(record: dict[str, Any]) -> None:
            record["Events"] = (record.get("Events") or [])[-(MAX_EVENTS - 1):] + [event]

        with self._lock:
            store = self.deployer.store
            if store.update(EVENTS_KIND, state.name, append) is None:
                store.put(EVENTS_KIND, state.name, {"EndpointName": state.name, "Events": [event]}, time.time())

    def _stream_line(self, state: EndpointState, variant: VariantPlan, instance: RunningInstance, message: str) -> None:
        """The event in the instance's own CloudWatch streams, where a SageMaker user looks."""
        for container in instance.containers:
            try:
                cloudwatch.put_log_lines(state.account_id, state.region, log_group(state.name),
                                         container_stream(variant, instance, container.hostname),
                                         [(time.time(), f"[sagemaker-emulator] {message}")])
            except Exception:  # the event is in the server log and the event list already
                log.debug("writing a health event to CloudWatch failed", exc_info=True)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The endpoint's health events, oldest first."""
        record = self.deployer.store.get(EVENTS_KIND, name)
        return list(record.get("Events") or []) if record else []
