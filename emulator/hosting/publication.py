"""What hosting publishes for the data plane: each live route as plain data.

The front processes that serve InvokeEndpoint (``emulator/edge``) read only this. A route
becomes a dict of builtins (picklable, no classes), and hosting decides here, per variant,
what a front may serve itself (``serve``, values in :mod:`.data_plane`):

* single-container variants, ``POST /invocations``;
* Direct multi-container models, the container TargetContainerHostname names;
* multi-model containers whose cache is on, for a TargetModel that a placement
  (:class:`~.data_plane.Placement`) says an instance has loaded;
* nothing else: the front forwards the request to the control process, which serves it.

Everything with behaviour beyond one HTTP exchange stays in the control process: serial
pipelines (each answer is the next request), serverless variants (cold starts, idle
timers), endpoints with data capture (the captured payloads are written from there) and
asynchronous endpoints (their InvokeEndpoint is an error the control process words).
"""

from __future__ import annotations

from typing import Any

from emulator.hosting.data_plane import FORWARD, SERVE_DIRECT, SERVE_MULTI_MODEL, SERVE_SINGLE
from emulator.hosting.routing import EndpointRoute, VariantRoute
from emulator.hosting.validation import DIRECT, SINGLE


def variant_service(route: EndpointRoute, variant: VariantRoute) -> str:
    """What a front may serve of ``variant`` itself (one of the ``SERVE_*`` values, or "")."""
    plan = variant.plan
    if route.async_config or route.capture is not None or plan.is_serverless:
        return FORWARD
    if plan.multi_model is not None:
        return SERVE_MULTI_MODEL if plan.multi_model.caching else FORWARD
    if plan.mode == SINGLE and len(plan.containers) == 1:
        return SERVE_SINGLE
    if plan.mode == DIRECT:
        return SERVE_DIRECT
    return FORWARD


def route_snapshot(route: EndpointRoute) -> dict[str, Any]:
    """One route as plain data: its id, name and variants with their instances' addresses."""
    variants = []
    for variant in route.variants.values():
        instances = [
            {
                "id": instance.instance_id,
                "containers": [
                    {
                        "hostname": target.hostname,
                        "container_id": target.container_id,
                        "host": target.pool.host,
                        "port": target.pool.port,
                    }
                    for target in instance.containers
                ],
            }
            for instance in variant.instances
        ]
        variants.append(
            {
                "name": variant.name,
                "weight": variant.weight,
                "serve": variant_service(route, variant),
                "instances": instances,
            }
        )
    return {"id": route.id, "name": route.name, "variants": variants}


def table_snapshot(routes: list[EndpointRoute]) -> dict[str, dict[str, Any]]:
    """Every live route, keyed by lower-cased endpoint name (names are case-insensitive)."""
    return {route.name.lower(): route_snapshot(route) for route in routes}
