"""Running an inference image through the emulator and recording what it did (serving_rules.py judges)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emulator.contract import endpoints
from emulator.contract.endpoints import Deployment
from emulator.contract.engine import ContainerEvents, docker_client, image_labels, listening_ports
from emulator.contract.inputs import CORRUPT_BYTES, CheckOptions, max_payload, upload_model
from emulator.contract.observations import InvokeResult, LoadObservation, StopObservation
from emulator.contract.serving_rules import BIND_LABEL, PING_TIMEOUT, ServingObservations
from emulator.contract.session import EmulatorTarget, unique_name
from emulator.hosting.fleet import ping

log = logging.getLogger(__name__)

BIND_HOSTNAMES = ("first", "second")
"""Container hostnames of the two-container (Direct) endpoint of the bind-to-port check."""
DEFAULT_PORT = 8080
PING_INTERVAL = 0.25


class ServingCheck:
    """One serving check: deploy, invoke, inspect, delete."""

    def __init__(self, target: EmulatorTarget, image: str, options: CheckOptions) -> None:
        self.target = target
        self.image = image
        self.options = options
        self.requests = options.requests()
        self.runtime = target.client("sagemaker-runtime")
        self.docker = docker_client()
        self.model_url: str | None = None

    def run(self) -> ServingObservations:
        """Deploy the single-model and (when the label allows) two-container endpoints in parallel."""
        seen = ServingObservations()
        try:
            seen.bind_label = image_labels(self.docker, self.image).get(BIND_LABEL, "").lower() == "true"
        except Exception as exc:  # noqa: BLE001 - an image the engine cannot show fails the deploy anyway
            log.debug("labels of %s: %s", self.image, exc)
        if self.options.model:
            s3 = self.target.client("s3")
            self.model_url = upload_model(s3, self.target.bucket(), f"{unique_name('serving')}/model.tar.gz",
                                          self.options.model, "model")
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="smemu-check-serve") as pool:
            bind = pool.submit(self._bind_to_port, seen) if seen.bind_label else None
            self._single(seen)
            if bind is not None:
                bind.result()
        return seen

    # -- the single-model endpoint ---------------------------------------------------------------

    def _container(self, environment: dict[str, str] | None = None) -> dict[str, Any]:
        definition: dict[str, Any] = {"Image": self.image}
        if self.model_url:
            definition["ModelDataUrl"] = self.model_url
        env = {**self.options.environment, **(environment or {})}
        if env:
            definition["Environment"] = env
        return definition

    def _single(self, seen: ServingObservations) -> None:
        name = unique_name("check-serve")
        events = ContainerEvents(self.docker, {"smemu.kind": endpoints.ENDPOINT_KIND, "smemu.name": name})
        with events:
            deployment, seen.endpoint = endpoints.deploy(
                self.target, name, {"PrimaryContainer": self._container()}, self.options.instance_type,
                self.options.job_timeout)
            try:
                if seen.endpoint.in_service:
                    self._exercise(name, seen)
            finally:
                seen.stop = self._delete_watching(deployment, events, seen.endpoint.in_service)

    def _exercise(self, name: str, seen: ServingObservations) -> None:
        for content_type, body in self.requests:
            seen.requests.append((content_type, endpoints.invoke(self.runtime, name, body, content_type)))
        container = endpoints.serving_container(self.docker, name)
        seen.load = self._load(name, container)
        content_type, body = self.requests[0]
        big = max_payload(content_type, body)
        if big is None:
            seen.max_payload_note = (f"no valid 6 MiB {content_type} request can be made from the payload "
                                     "(JSON, CSV, JSON Lines and text can be grown)")
        else:
            seen.max_payload = endpoints.invoke(self.runtime, name, big, content_type)
        if container is not None:
            seen.ports = listening_ports(self.docker, container, DEFAULT_PORT)
        seen.malformed = endpoints.invoke(self.runtime, name, CORRUPT_BYTES, content_type)
        seen.after_malformed = endpoints.invoke(self.runtime, name, body, content_type)
        seen.alive_after_malformed = self._health(name, container)

    def _load(self, name: str, container: Any) -> LoadObservation:
        """``concurrency`` clients send requests at once while a health checker pings the container."""
        content_type, body = self.requests[0]
        load = LoadObservation(clients=self.options.concurrency)
        done = threading.Event()
        address = endpoints.published(container, DEFAULT_PORT) if container is not None else None

        def health_checks() -> None:
            while address is not None and not done.is_set():
                load.pings.append(ping(address[0], address[1], timeout=PING_TIMEOUT))
                done.wait(PING_INTERVAL)

        def client(_index: int) -> list[InvokeResult]:
            return [endpoints.invoke(self.runtime, name, body, content_type)
                    for _ in range(self.options.requests_per_client)]

        pinger = threading.Thread(target=health_checks, name="smemu-check-ping", daemon=True)
        pinger.start()
        try:
            with ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="smemu-check-load") as pool:
                for results in pool.map(client, range(self.options.concurrency)):
                    load.results.extend(results)
        finally:
            done.set()
            pinger.join(PING_TIMEOUT + 1)
        return load

    def _health(self, name: str, container: Any) -> str:
        """"" when the endpoint is InService and its container answers /ping 200, else what is wrong."""
        status = self.target.client("sagemaker").describe_endpoint(EndpointName=name)["EndpointStatus"]
        if status != "InService":
            return f"the endpoint is {status}"
        if container is None:
            return ""
        container.reload()
        if container.status != "running":
            code = (container.attrs.get("State") or {}).get("ExitCode")
            return f"the container has exited (code {code})"
        address = endpoints.published(container, DEFAULT_PORT)
        answer = ping(*address, timeout=PING_TIMEOUT) if address else "no published port"
        return "" if answer == 200 else f"GET /ping answered {answer}"

    def _delete_watching(self, deployment: Deployment, events: ContainerEvents, was_up: bool) -> StopObservation:
        grace = self.target.endpoint_stop_grace
        endpoints.delete(self.target, deployment, (grace or 30.0) + 60.0)
        if not was_up:
            return StopObservation(not_observed="the endpoint never came up")
        return events.observe_stop(timeout=5.0, grace=grace)

    # -- the two-container endpoint (SAGEMAKER_BIND_TO_PORT) ---------------------------------------

    def _bind_to_port(self, seen: ServingObservations) -> None:
        name = unique_name("check-bind")
        containers = [{**self._container(), "ContainerHostname": host} for host in BIND_HOSTNAMES]
        model = {"Containers": containers, "InferenceExecutionConfig": {"Mode": "Direct"}}
        deployment, seen.bind_endpoint = endpoints.deploy(self.target, name, model, self.options.instance_type,
                                                          self.options.job_timeout)
        try:
            for host in BIND_HOSTNAMES:
                container = endpoints.serving_container(self.docker, name, host)
                if container is not None:
                    env = dict(i.split("=", 1) for i in container.attrs["Config"]["Env"] if "=" in i)
                    if env.get("SAGEMAKER_BIND_TO_PORT", "").isdigit():
                        seen.bind_ports[host] = int(env["SAGEMAKER_BIND_TO_PORT"])
            if seen.bind_endpoint.in_service:
                content_type, body = self.requests[0]
                runtime = self.target.client("sagemaker-runtime")
                seen.bind_invokes = [(host, endpoints.invoke(runtime, name, body, content_type,
                                                             TargetContainerHostname=host)) for host in BIND_HOSTNAMES]
        finally:
            endpoints.delete(self.target, deployment, (self.target.endpoint_stop_grace or 30.0) + 60.0)


def check_serving(target: EmulatorTarget, image: str, options: CheckOptions) -> ServingObservations:
    """Run an inference image's contract check through ``target``."""
    started = time.monotonic()
    seen = ServingCheck(target, image, options).run()
    log.debug("serving check of %s took %.1f s", image, time.monotonic() - started)
    return seen
