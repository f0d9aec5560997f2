"""What an endpoint runs right now, as plain data: variants, instances, containers and their
published ports, health and events. ``smemu status`` and the dashboard show it (the platform
view ``endpoint-fleet``); nothing here changes the fleet.
"""

from __future__ import annotations

from typing import Any

from emulator.hosting.deployer import Deployer
from emulator.hosting.deployment import Deployment
from emulator.hosting.healing import HealthMonitor


def fleet_view(deployer: Deployer, monitor: HealthMonitor, name: str) -> dict[str, Any] | None:
    """The endpoint's fleet, or None when the emulator knows no such endpoint."""
    state = deployer.state(name)
    if state is None:
        return None
    route = deployer.table.get(name)
    serving = {i.instance_id for v in route.variants.values() for i in v.instances} if route else set()
    return {
        "EndpointName": state.name,
        "Active": _deployment(state.active, monitor, serving),
        "Pending": _deployment(state.pending, monitor, serving),
        "Events": monitor.events(name),
        "HealthCheckSeconds": monitor.interval,
    }


def _deployment(deployment: Deployment | None, monitor: HealthMonitor, serving: set[str]) -> dict[str, Any] | None:
    if deployment is None:
        return None
    variants = []
    for plan in deployment.plan.variants:
        instances = []
        for instance in deployment.instances.get(plan.name, []):
            health = monitor.health.get(instance.instance_id)
            instances.append({
                "InstanceId": instance.instance_id,
                "Serving": instance.instance_id in serving,
                "Health": health.status if health else "Healthy",
                "LastCheck": health.last_answer if health else "",
                "Containers": [
                    {
                        "Hostname": c.hostname,
                        "ContainerId": c.container_id[:12],
                        "Port": c.port,
                        "Address": f"{c.host}:{c.published_port}" if c.published_port else "",
                    }
                    for c in instance.containers
                ],
            })
        variants.append({
            "VariantName": plan.name,
            "ModelName": plan.model_name,
            "InstanceType": plan.instance_type or "",
            "Serverless": plan.is_serverless,
            "MultiModel": plan.multi_model is not None,
            "Mode": plan.mode,
            "Weight": deployment.weights.get(plan.name, plan.weight),
            "DesiredInstanceCount": deployment.counts.get(plan.name, plan.instance_count),
            "Images": [c.image for c in plan.containers],
            "Instances": instances,
        })
    return {"DeploymentId": deployment.id, "EndpointConfigName": deployment.plan.config_name, "Variants": variants}
