"""Brings endpoint fleets up, swaps them, scales them and tears them down, in the background.

The control plane sets the new status synchronously (Creating, Updating, Deleting) and hands
the work to one worker thread per operation; an endpoint's workers run one at a time. Every
later status change is checked against :mod:`.lifecycle`, so a bring-up that finishes after
DeleteEndpoint cannot resurrect the endpoint.

Blue/green: a new fleet is staged and must pass /ping before the routing table switches
to it in one assignment; the old route is then marked retired and drained (requests
already on it finish) before its containers are stopped. No request is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.hosting import lifecycle
from emulator.hosting.deployment import (
    DEPLOYMENT_KIND,
    EVENTS_KIND,
    Deployment,
    EndpointState,
    capture_summary,
    variant_summaries,
)
from emulator.hosting.fleet import LAUNCH_FAILURE_GRACE, Cancelled, Fleet, LaunchFailed, RunningInstance
from emulator.hosting.lifecycle import EndpointStatus as S
from emulator.hosting.model_data import ModelDataError, remove_tree, stage_model_data
from emulator.hosting.plan import VariantPlan
from emulator.hosting.publisher import RoutePublisher
from emulator.hosting.routing import (
    EndpointRoute,
    RoutingTable,
)
from emulator.store import Store

log = logging.getLogger(__name__)

Report = Callable[[str, str, str], None]
"""``(event, instance id, detail)``: what a healing worker did ("removed", "replaced", "failed")."""


def _reason(exc: Exception) -> str:
    """FailureReason for a failed bring-up: our own messages as they are, else say it is ours."""
    if isinstance(exc, (LaunchFailed, ModelDataError)):
        return str(exc)
    log.error("bringing an endpoint fleet up failed", exc_info=exc)
    return f"The emulator could not bring the fleet up: {type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Timeouts:
    """Deadlines the deployer works with."""

    startup: float = 600.0
    """Default ContainerStartupHealthCheckTimeoutInSeconds."""
    download: float = 600.0
    """Default ModelDataDownloadTimeoutInSeconds."""
    drain: float = 65.0
    """How long a retired fleet may keep serving requests already sent to it."""


class Deployer:
    """Owns the endpoints' fleets and keeps the routing table in step with them."""

    def __init__(
        self,
        store: Store,
        fleet: Fleet,
        table: RoutingTable,
        s3_client: Callable[[], Any],
        routes: RoutePublisher,
        work_dir: Path,
        timeouts: Timeouts,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.table = table
        self.s3_client = s3_client
        self.routes = routes
        self.work_dir = work_dir
        self.timeouts = timeouts
        self.states: dict[str, EndpointState] = {}
        self._shutdown = threading.Event()

    # -- operations (the service has set the new status already) -----------------------

    def new_deployment(
        self, name: str, config: dict[str, Any], models: dict[str, Any], region: str
    ) -> Deployment:
        """A deployment of a configuration snapshot, with the default deadlines."""
        return Deployment.new(name, config, models, region, self.timeouts.startup, self.timeouts.download)

    def create(self, name: str, region: str, account_id: str, deployment: Deployment) -> None:
        """Bring a new endpoint up: Creating -> InService | Failed."""
        state = EndpointState(name, region, account_id, pending=deployment)
        self.states[name.lower()] = state
        self.save(state)
        self.spawn(state, self.bring_up, deployment)

    def update(self, name: str, deployment: Deployment) -> None:
        """Blue/green to a new configuration: Updating -> InService (FailureReason if it failed)."""
        state = self.states[name.lower()]
        self.spawn(state, self._update, deployment)

    def rescale(self, name: str, desired: list[dict[str, Any]]) -> None:
        """UpdateEndpointWeightsAndCapacities: Updating -> InService."""
        state = self.states[name.lower()]
        self.spawn(state, self._rescale, desired)

    def delete(self, name: str) -> None:
        """Stop routing at once, cancel work in progress, remove the fleet, then the record."""
        state = self.states.get(name.lower())
        if state is None:  # an endpoint whose state was lost: only records and labels remain
            state = EndpointState(name, "", "")
            self.states[name.lower()] = state
        state.cancel.set()
        route = self.table.withdraw(name)
        if route is not None:
            route.retired = True
        self.spawn(state, self._delete, route, always=True)

    def state(self, name: str) -> EndpointState | None:
        """The in-memory state of an endpoint (None when unknown)."""
        return self.states.get(name.lower())

    def heal(self, name: str, variant: str, instance_id: str | None, report: Report) -> bool:
        """Replace an instance that failed its health check, or bring a variant back to its count.

        Runs as the endpoint's worker, so it never overlaps an update, a rescale or a deletion;
        the fleet change reaches the data plane the way every other does, as a new route.
        ``report(event, instance id, detail)`` hears what happened (hosting/healing.py).
        False when the endpoint has no fleet to heal.
        """
        state = self.states.get(name.lower())
        if state is None or state.active is None or state.cancel.is_set():
            return False
        self.spawn(state, self._heal, variant, instance_id, report)
        return True

    # -- workers ------------------------------------------------------------------------

    def spawn(
        self, state: EndpointState, work: Callable[..., None], *args: Any, always: bool = False
    ) -> None:
        """Run ``work(state, *args)`` in a thread once the endpoint's previous work is done.

        Work other than deletion (``always``) is skipped when the endpoint was cancelled.
        """

        def run() -> None:
            with state.lock:
                if state.cancel.is_set() and not always:
                    return
                try:
                    work(state, *args)
                except Exception:
                    log.exception("%s of endpoint %s failed", work.__name__, state.name)

        thread = threading.Thread(target=run, name=f"endpoint-{state.name}{work.__name__}", daemon=True)
        state.worker = thread
        thread.start()

    def bring_up(self, state: EndpointState, deployment: Deployment) -> None:
        """Worker: launch a deployment and put it in service, or fail the endpoint."""
        try:
            self.launch(state, deployment)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - a bug must settle the endpoint, not leave it in progress
            self.discard(state, deployment)
            state.pending = None
            self.save(state)
            self.set_status(state.name, S.FAILED, reason=_reason(exc))
            return
        state.active, state.pending = deployment, None
        self.save(state)
        self.table.publish(self.routes.route(state.name, deployment))
        self.set_status(state.name, S.IN_SERVICE, **self.describe_fields(deployment))

    def _update(self, state: EndpointState, deployment: Deployment) -> None:
        old = state.active
        state.pending = deployment
        self.save(state)
        try:
            self.launch(state, deployment)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - a bug must settle the endpoint, not leave it in progress
            self.discard(state, deployment)
            state.pending = None
            self.save(state)
            self.set_status(
                state.name,
                lifecycle.after_failed_update(),
                reason=_reason(exc),
                PendingDeploymentSummary=None,
            )
            return
        state.active, state.pending = deployment, None
        self.save(state)
        previous = self.table.publish(self.routes.route(state.name, deployment))
        self.set_status(
            state.name,
            S.IN_SERVICE,
            clear_reason=True,
            PendingDeploymentSummary=None,
            **self.describe_fields(deployment),
        )
        if old is not None:
            self.retire(previous, [i for group in old.instances.values() for i in group])
            remove_tree(self.deployment_dir(state.name, old.id))

    def _rescale(self, state: EndpointState, desired: list[dict[str, Any]]) -> None:
        deployment = state.active
        assert deployment is not None
        weights, counts = dict(deployment.weights), dict(deployment.counts)
        for item in desired:
            if "DesiredWeight" in item:
                weights[item["VariantName"]] = float(item["DesiredWeight"])
            if (
                "DesiredInstanceCount" in item
                and not deployment.plan.variant(item["VariantName"]).is_serverless
            ):
                counts[item["VariantName"]] = int(item["DesiredInstanceCount"])
        added: dict[str, list[RunningInstance]] = {}
        try:
            for variant in deployment.plan.variants:
                extra = counts[variant.name] - len(deployment.instances.get(variant.name, []))
                if extra > 0 and not variant.is_serverless:
                    added[variant.name] = self.launch_variant(state, deployment, variant, extra)
        except Cancelled:
            self.fleet.remove([i for group in added.values() for i in group], LAUNCH_FAILURE_GRACE)
            return
        except Exception as exc:  # noqa: BLE001 - a bug must settle the endpoint, not leave it in progress
            self.fleet.remove([i for group in added.values() for i in group], LAUNCH_FAILURE_GRACE)
            self.set_status(state.name, S.IN_SERVICE, reason=_reason(exc))
            return
        removed: list[RunningInstance] = []
        for variant in deployment.plan.variants:
            running = deployment.instances.get(variant.name, []) + added.get(variant.name, [])
            if not variant.is_serverless:
                removed.extend(running[counts[variant.name] :])
                running = running[: counts[variant.name]]
            deployment.instances[variant.name] = running
        deployment.weights, deployment.counts = weights, counts
        self.save(state)
        previous = self.table.publish(self.routes.route(state.name, deployment))
        self.set_status(state.name, S.IN_SERVICE, clear_reason=True, **self.describe_fields(deployment))
        if removed:
            self.retire(previous, removed)

    def _heal(self, state: EndpointState, variant_name: str, instance_id: str | None, report: Report) -> None:
        deployment = state.active
        record = self.store.get("endpoint", state.name)
        if deployment is None or record is None or record["EndpointStatus"] != S.IN_SERVICE.value:
            return
        plan = deployment.plan.variant(variant_name)
        running = deployment.instances.get(variant_name, [])
        failed = [i for i in running if i.instance_id == instance_id]
        if failed:
            # Out of the route first: new requests go to the healthy instances (or get AWS's
            # ServiceUnavailable when there are none) while the replacement starts.
            deployment.instances[variant_name] = [i for i in running if i not in failed]
            previous = self.table.publish(self.routes.route(state.name, deployment))
            if previous is not None:
                previous.retired = True
            self.routes.close_pools(failed)
            self.fleet.remove(failed, LAUNCH_FAILURE_GRACE)
            report("removed", instance_id or "", "")
        missing = deployment.counts[variant_name] - len(deployment.instances.get(variant_name, []))
        if missing <= 0 or plan.is_serverless:
            return
        self.set_status(state.name, S.IN_SERVICE, ProductionVariants=variant_summaries(deployment, live=True))
        try:
            added = self.launch_variant(state, deployment, plan, missing)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - reported; the health monitor tries again later
            report("failed", instance_id or "", _reason(exc))
            return
        deployment.instances[variant_name] = deployment.instances.get(variant_name, []) + added
        self.save(state)
        self.table.publish(self.routes.route(state.name, deployment))
        self.set_status(state.name, S.IN_SERVICE, ProductionVariants=variant_summaries(deployment, live=True))
        for instance in added:
            report("replaced", instance_id or "", instance.instance_id)

    def _delete(self, state: EndpointState, route: EndpointRoute | None) -> None:
        if route is not None:
            route.drain(self.timeouts.drain)
        self.fleet.remove_endpoint(state.name)
        for deployment in (state.active, state.pending):
            if deployment is not None:
                self.routes.close_pools([i for group in deployment.instances.values() for i in group])
        remove_tree(self.work_dir / "endpoints" / state.name.lower())
        if self._shutdown.is_set():
            return
        record = self.store.get("endpoint", state.name)
        self.store.delete("endpoint", state.name)
        self.store.delete(DEPLOYMENT_KIND, state.name)
        self.store.delete(EVENTS_KIND, state.name)
        if record is not None:
            self.store.delete_tags(record["EndpointArn"].lower())
        self.states.pop(state.name.lower(), None)

    # -- building blocks ----------------------------------------------------------------

    def deployment_dir(self, name: str, deployment_id: str) -> Path:
        return self.work_dir / "endpoints" / name.lower() / deployment_id

    def model_dirs(self, name: str, deployment: Deployment, variant: VariantPlan) -> dict[int, Path]:
        base = self.deployment_dir(name, deployment.id) / variant.name
        return {c.index: base / str(c.index) for c in variant.containers}

    def launch(self, state: EndpointState, deployment: Deployment) -> None:
        """Stage model data, resolve images and start every variant's instances, healthy."""
        try:
            s3 = self.s3_client()
            for variant in deployment.plan.variants:
                for container in variant.containers:
                    target = self.model_dirs(state.name, deployment, variant)[container.index]
                    remove_tree(target)
                    target.mkdir(parents=True)
                    if container.model_data is not None:
                        stage_model_data(
                            s3,
                            container.model_data,
                            target,
                            container.download_label,
                            variant.download_timeout,
                        )
                    if state.cancel.is_set():
                        raise Cancelled()
                deployment.images.update(self.fleet.resolve_images(variant))
            deployment.resolution_time = time.time()
            for variant in deployment.plan.variants:
                deployment.instances[variant.name] = self.launch_variant(
                    state, deployment, variant, deployment.counts[variant.name]
                )
        except BaseException:
            self.discard(state, deployment)
            raise

    def launch_variant(
        self, state: EndpointState, deployment: Deployment, variant: VariantPlan, count: int
    ) -> list[RunningInstance]:
        return self.fleet.launch(
            state.name,
            deployment.id,
            variant,
            count,
            self.model_dirs(state.name, deployment, variant),
            deployment.images,
            state.cancel,
            on_started=lambda instance: self.routes.follow(state, variant, instance),
        )

    def discard(self, state: EndpointState, deployment: Deployment) -> None:
        """Remove whatever a failed or cancelled deployment left behind."""
        self.fleet.remove([i for group in deployment.instances.values() for i in group], LAUNCH_FAILURE_GRACE)
        deployment.instances.clear()
        remove_tree(self.deployment_dir(state.name, deployment.id))

    def retire(self, route: EndpointRoute | None, instances: list[RunningInstance]) -> None:
        """Let requests already on the old route finish, then stop the instances it used."""
        if route is not None:
            route.retired = True
            if not route.drain(self.timeouts.drain):
                log.warning(
                    "endpoint %s: requests still in flight after %s s", route.name, self.timeouts.drain
                )
        self.routes.close_pools(instances)
        self.fleet.remove(instances)

    @staticmethod
    def describe_fields(deployment: Deployment) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "EndpointConfigName": deployment.plan.config_name,
            "ProductionVariants": variant_summaries(deployment),
            "DataCaptureConfig": capture_summary(deployment.config),
            "AsyncInferenceConfig": deployment.config.get("AsyncInferenceConfig"),
        }
        return fields

    def stop(self) -> None:
        """Emulator shutdown: cancel work in progress, keep running fleets for re-adoption."""
        self._shutdown.set()
        for state in list(self.states.values()):
            state.cancel.set()
        for state in list(self.states.values()):
            if state.worker is not None:
                state.worker.join(timeout=10)
        self.routes.close_all()

    def save(self, state: EndpointState) -> None:
        if not self._shutdown.is_set():
            self.store.put(DEPLOYMENT_KIND, state.name, state.to_record(), time.time())

    def set_status(
        self, name: str, status: S, reason: str | None = None, clear_reason: bool = False, **fields: Any
    ) -> bool:
        """Move an endpoint to ``status`` if the state machine allows it; False otherwise."""
        if self._shutdown.is_set():
            return False

        def change(record: dict[str, Any]) -> None:
            if record["EndpointStatus"] != status.value:
                lifecycle.check(record["EndpointStatus"], status)
            record["EndpointStatus"] = status.value
            record["LastModifiedTime"] = time.time()
            if reason is not None:
                record["FailureReason"] = reason[:1024]
            elif clear_reason:
                record.pop("FailureReason", None)
            for key, value in fields.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value

        try:
            return self.store.update("endpoint", name, change) is not None
        except lifecycle.InvalidTransition as exc:
            log.info("endpoint %s: %s (ignored)", name, exc)
            return False
