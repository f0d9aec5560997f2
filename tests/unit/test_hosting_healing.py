"""Endpoints heal: an InService instance whose container exits or stops answering /ping is
replaced through the deployer (a new route), invocations in between get AWS's errors, and
the events are told. Over the in-process fake backend; checks are run by hand (no timing)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.errors import ServiceUnavailable
from emulator.hosting import healing
from tests.unit.test_hosting_fakes import wait_for
from tests.unit.test_hosting_service import CTX, Harness


@pytest.fixture()
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path, endpoint_health_check_seconds=0)  # no monitor thread: check_all() by hand
    try:
        yield h
    finally:
        h.service.stop()


def instance_ids(h: Harness, name: str, variant: str = "AllTraffic") -> list[str]:
    state = h.service.deployer.state(name)
    assert state is not None and state.active is not None
    return [i.instance_id for i in state.active.instances.get(variant, [])]


def routed_ids(h: Harness, name: str, variant: str = "AllTraffic") -> list[str]:
    route = h.service.table.get(name)
    assert route is not None
    return [i.instance_id for i in route.variants[variant].instances]


def settled(h: Harness, name: str) -> None:
    state = h.service.deployer.state(name)
    wait_for(lambda: state is not None and (state.worker is None or not state.worker.is_alive()))


def containers_of(h: Harness, instance_id: str) -> list[str]:
    return [c.id for c in h.backend.containers.values() if c.spec.labels.get("smemu.instance") == instance_id]


def test_an_instance_whose_container_exits_is_replaced_through_a_new_route(harness: Harness) -> None:
    harness.model("m")
    harness.config("c", ("AllTraffic", "m", 1.0, 2))
    harness.endpoint("ep", "c")
    first, second = instance_ids(harness, "ep")
    original_route = harness.service.table.get("ep")
    harness.backend.kill(containers_of(harness, first)[0])

    harness.service.health.check_all()
    settled(harness, "ep")

    now = instance_ids(harness, "ep")
    assert first not in now and second in now and len(now) == 2
    assert sorted(routed_ids(harness, "ep")) == sorted(now)
    assert harness.service.table.get("ep") is not original_route and original_route.retired
    assert not containers_of(harness, first)  # the failed instance's containers are gone
    seen = {harness.echo("ep")["instance"] for _ in range(6)}
    assert seen == set(now)
    record = harness.service.describe_endpoint({"EndpointName": "ep"}, CTX)
    assert record["EndpointStatus"] == "InService"
    assert record["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    messages = [e["Message"] for e in harness.service.health.events("ep")]
    assert f"instance {first} of variant AllTraffic failed its health check: its primary container exited " \
           f"with code 0. Replacing it." == messages[0]
    replacement = next(i for i in now if i != second)
    assert messages[1] == f"instance {replacement} of variant AllTraffic replaced instance {first} and is InService."


def test_an_instance_that_stops_answering_ping_is_replaced_after_the_threshold(harness: Harness) -> None:
    harness.model("m")
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    harness.endpoint("ep", "c")
    (sick,) = instance_ids(harness, "ep")
    container = harness.backend.containers[containers_of(harness, sick)[0]]
    container.spec.environment["FAKE_PING_FAIL"] = "1"
    monitor = harness.service.health
    for _ in range(healing.DEFAULT_THRESHOLD - 1):
        monitor.check_all()
        assert instance_ids(harness, "ep") == [sick]
        assert monitor.health[sick].status == "Unhealthy" and monitor.health[sick].last_answer == "HTTP 503"
    monitor.check_all()
    settled(harness, "ep")
    (replacement,) = instance_ids(harness, "ep")
    assert replacement != sick and routed_ids(harness, "ep") == [replacement]
    assert "did not answer GET /ping with 200 in 3 checks in a row (last answer: HTTP 503)" in \
        monitor.events("ep")[0]["Message"]
    monitor.check_all()
    assert monitor.health[replacement].status == "Healthy"


def test_a_variant_without_instances_answers_service_unavailable_until_a_replacement_starts(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(healing, "RETRY_SECONDS", (0.0,))
    harness.model("m")
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    harness.endpoint("ep", "c")
    (dead,) = instance_ids(harness, "ep")
    harness.backend.refuse_starts = True
    harness.backend.kill(containers_of(harness, dead)[0])
    monitor = harness.service.health
    monitor.check_all()
    settled(harness, "ep")
    assert instance_ids(harness, "ep") == [] and routed_ids(harness, "ep") == []
    with pytest.raises(ServiceUnavailable, match="A transient exception occurred while retrieving variant instances"):
        harness.invoke("ep")
    assert "could not start" in monitor.events("ep")[-1]["Message"]
    harness.backend.refuse_starts = False
    monitor.check_all()  # the variant is short of its count: start one
    settled(harness, "ep")
    (added,) = instance_ids(harness, "ep")
    assert harness.echo("ep")["instance"] == added
    assert monitor.events("ep")[-1]["Message"] == f"instance {added} of variant AllTraffic was added and is InService."


def test_endpoints_that_are_busy_or_not_in_service_are_left_alone(harness: Harness) -> None:
    harness.model("m")
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    harness.endpoint("ep", "c")
    (instance,) = instance_ids(harness, "ep")
    harness.backend.kill(containers_of(harness, instance)[0])
    state = harness.service.deployer.state("ep")
    assert state is not None
    release = threading.Event()
    state.worker = threading.Thread(target=release.wait)  # an update or a rescale at work
    state.worker.start()
    try:
        harness.service.health.check_all()
        assert instance_ids(harness, "ep") == [instance]
    finally:
        release.set()
        state.worker.join()
    harness.service.store.update("endpoint", "ep", lambda r: r.update(EndpointStatus="Updating"))
    harness.service.health.check_all()
    assert instance_ids(harness, "ep") == [instance]
    assert harness.service.health.events("ep") == []
    harness.service.store.update("endpoint", "ep", lambda r: r.update(EndpointStatus="InService"))
    harness.service.health.check_all()
    settled(harness, "ep")
    assert instance_ids(harness, "ep") != [instance]


def test_the_fleet_view_shows_instances_ports_health_and_events(harness: Harness) -> None:
    from emulator.hosting.fleet_view import fleet_view

    harness.model("m")
    harness.config("c", ("AllTraffic", "m", 1.0, 1))
    harness.endpoint("ep", "c")
    harness.service.health.check_all()
    view = fleet_view(harness.service.deployer, harness.service.health, "ep")
    assert view is not None and view["Pending"] is None
    (variant,) = view["Active"]["Variants"]
    assert variant["VariantName"] == "AllTraffic" and variant["DesiredInstanceCount"] == 1
    (instance,) = variant["Instances"]
    assert instance["Serving"] and instance["Health"] == "Healthy"
    (container,) = instance["Containers"]
    assert container["Address"].startswith("127.0.0.1:") and container["Port"] == 8080
    assert fleet_view(harness.service.deployer, harness.service.health, "nope") is None
