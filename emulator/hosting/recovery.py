"""Settling endpoints after an emulator restart (DESIGN.md decision 6).

For each endpoint in the store, by its last status:

- InService (or Updating, SystemUpdating, RollingBack): re-adopt the active deployment's
  containers by label and serve them again at once. An update that was under way is dropped
  (its containers removed) and the endpoint stays on its old configuration with a
  FailureReason, as a failed update does on AWS. If containers of the active deployment
  vanished, the endpoint goes SystemUpdating and its fleet is started again.
- Creating: leftovers are removed and the bring-up starts over.
- Deleting: the deletion is finished.
- Failed: any leftover container is removed.
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.hosting.deployer import Deployer
from emulator.hosting.deployment import DEPLOYMENT_KIND, Deployment, EndpointState
from emulator.hosting.fleet import Cancelled, LaunchFailed, RunningInstance
from emulator.hosting.lifecycle import EndpointStatus as S
from emulator.hosting.model_data import ModelDataError

log = logging.getLogger(__name__)

ORPHANED = (
    "The emulator stopped before this endpoint's fleet was recorded. Delete the endpoint and create it again."
)
INTERRUPTED = (
    "The update was interrupted by a restart of the emulator; the endpoint still serves endpoint "
    "configuration {config}."
)


def recover(deployer: Deployer) -> None:
    """Re-adopt or settle every endpoint recorded in the store."""
    deployments = deployer.store.list(DEPLOYMENT_KIND)
    for record in deployments:
        try:
            _recover_one(deployer, record)
        except Exception:
            log.exception("recovering endpoint %s failed", record.get("EndpointName"))
    known = {d["EndpointName"].lower() for d in deployments}
    for endpoint in deployer.store.list("endpoint"):
        if endpoint["EndpointName"].lower() not in known:
            _settle_orphan(deployer, endpoint)


def _settle_orphan(deployer: Deployer, endpoint: dict[str, Any]) -> None:
    """An endpoint whose deployment was never recorded (the emulator stopped right after
    CreateEndpoint): finish a deletion, else fail it with a reason the user can act on."""
    name = endpoint["EndpointName"]
    deployer.fleet.remove_endpoint(name)
    if endpoint["EndpointStatus"] == S.DELETING.value:
        deployer.store.delete("endpoint", name)
    elif endpoint["EndpointStatus"] != S.FAILED.value:
        deployer.store.update(
            "endpoint", name, lambda r: r.update(EndpointStatus=S.FAILED.value, FailureReason=ORPHANED)
        )


def _deployment(
    deployer: Deployer, record: dict[str, Any] | None, name: str, region: str
) -> Deployment | None:
    if not record:
        return None
    timeouts = deployer.timeouts
    return Deployment.from_record(record, name, region, timeouts.startup, timeouts.download)


def _recover_one(deployer: Deployer, record: dict[str, Any]) -> None:
    name = record["EndpointName"]
    endpoint = deployer.store.get("endpoint", name)
    if endpoint is None:
        deployer.fleet.remove_endpoint(name)
        deployer.store.delete(DEPLOYMENT_KIND, name)
        return
    state = EndpointState(name, record["Region"], record["AccountId"])
    deployer.states[name.lower()] = state
    status = S(endpoint["EndpointStatus"])
    active = _deployment(deployer, record.get("Active"), name, state.region)
    pending = _deployment(deployer, record.get("Pending"), name, state.region)
    if status is S.DELETING:
        deployer.delete(name)
        return
    if status is S.CREATING and pending is not None:
        deployer.fleet.remove_endpoint(name)
        state.pending = pending
        deployer.spawn(state, deployer.bring_up, pending)
        return
    if active is None or status in (S.FAILED, S.UPDATE_ROLLBACK_FAILED, S.OUT_OF_SERVICE):
        deployer.fleet.remove_endpoint(name)
        return
    state.active = active
    if _adopt(deployer, state, active):
        deployer.fleet.remove_endpoint(name, except_deployment=active.id)
        if pending is not None:
            deployer.save(state)
        if status is not S.IN_SERVICE:
            deployer.set_status(
                name,
                S.IN_SERVICE,
                reason=INTERRUPTED.format(config=active.plan.config_name),
                PendingDeploymentSummary=None,
                **deployer.describe_fields(active),
            )
        return
    deployer.set_status(name, S.SYSTEM_UPDATING, PendingDeploymentSummary=None)
    deployer.spawn(state, _relaunch, deployer, active)


def _adopt(deployer: Deployer, state: EndpointState, active: Deployment) -> bool:
    """Serve the deployment's running containers again; False if any instance is missing."""
    found = deployer.fleet.adopt(state.name, active.id)
    if found is None:
        return False
    by_variant: dict[str, list[RunningInstance]] = {}
    for instance in found:
        by_variant.setdefault(instance.variant, []).append(instance)
    for variant in active.plan.variants:
        count = len(by_variant.get(variant.name, []))
        if variant.is_serverless:
            if count > 1:
                return False
        elif count != active.counts[variant.name]:
            return False
    active.instances = by_variant
    deployer.table.publish(deployer.routes.route(state.name, active))
    for variant in active.plan.variants:
        for instance in by_variant.get(variant.name, []):
            deployer.routes.follow(state, variant, instance, resume=True)
    return True


def _relaunch(state: EndpointState, deployer: Deployer, active: Deployment) -> None:
    """Worker: start the active deployment's fleet again (SystemUpdating -> InService | Failed)."""
    deployer.fleet.remove_endpoint(state.name)
    active.instances = {}
    try:
        deployer.launch(state, active)
    except Cancelled:
        return
    except (LaunchFailed, ModelDataError) as exc:
        deployer.set_status(state.name, S.FAILED, reason=str(exc))
        return
    deployer.table.publish(deployer.routes.route(state.name, active))
    deployer.set_status(state.name, S.IN_SERVICE, **deployer.describe_fields(active))
