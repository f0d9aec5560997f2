"""How long CreateEndpoint takes to InService beyond the container's own readiness.

    python benchmarks/endpoint_readiness.py [--runs 5] [--containers fast,threaded]

Starts ``smemu serve`` as its own process and, for each sample image, alternately:

* **bare**: docker-py creates and starts the same image with ``serve`` and its port published
  on loopback, then ``GET /ping`` is polled every 5 ms until it answers 200 (what a hand-made
  `docker run` plus a readiness loop costs);
* **endpoint**: from CreateEndpoint to the moment the endpoint's record says InService (its
  LastModifiedTime; DescribeEndpoint is polled every 50 ms, so the polling neither adds its
  interval nor steals the CPU the bring-up needs).

The difference of the medians is what the emulator adds (aim: under 0.3 s): the control
plane call, the engine calls, the health check's polling, status writes, and publishing the
route to the data plane. Measured, not asserted (DESIGN.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker

from benchmarks.harness import describe_machine, machine, median, start_emulator, stop_emulator
from tests.conftest import create_sagemaker_role, free_port, make_client
from tests.integration.sample_images import build_sample_image

CONTAINERS = {"fast": "asyncio_serving", "threaded": "serving"}
POLL = 0.005


def _ping(port: int) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/ping")
        status = conn.getresponse().status
        conn.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


def bare(client: docker.DockerClient, image: str) -> float:
    """Seconds from create to the first 200 on /ping, container published on loopback."""
    started = time.perf_counter()
    container = client.containers.create(image, ["serve"], detach=True, labels={"smemu.kind": "benchmark"},
                                         ports={"8080/tcp": ("127.0.0.1", None)})
    try:
        container.start()
        port = int(client.api.port(container.id, 8080)[0]["HostPort"])
        while _ping(port) != 200:
            time.sleep(POLL)
        return time.perf_counter() - started
    finally:
        container.remove(force=True)


def endpoint(sm: Any, name: str, config: str) -> float:
    """Seconds from CreateEndpoint to the endpoint's record turning InService."""
    started = time.time()
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    while True:
        described = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] == "InService":
            return float(described["LastModifiedTime"].timestamp() - started)
        if described["EndpointStatus"] == "Failed":
            raise RuntimeError(described.get("FailureReason"))
        time.sleep(0.05)


def _delete(sm: Any, name: str) -> None:
    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each (medians are shown)")
    parser.add_argument("--containers", default="fast,threaded", help="which sample containers: fast, threaded")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    info = machine()
    client = docker.from_env()
    kinds = [k for k in args.containers.split(",") if k]
    images = {kind: build_sample_image(CONTAINERS[kind]) for kind in kinds}
    home = Path(tempfile.mkdtemp(prefix="smemu-bench-ready-"))
    port = free_port()
    process = start_emulator(home, port)
    url = f"http://127.0.0.1:{port}"
    sm = make_client("sagemaker", url)
    results: dict[str, dict[str, float]] = {}
    try:
        role = create_sagemaker_role(url)
        for kind in kinds:
            model = f"ready-{kind}-{os.getpid()}"
            sm.create_model(ModelName=model, PrimaryContainer={"Image": images[kind]}, ExecutionRoleArn=role)
            sm.create_endpoint_config(EndpointConfigName=model, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large"}])
            bares, endpoints = [], []
            for run in range(args.runs):
                bares.append(bare(client, images[kind]))
                name = f"{model}-{run}"
                endpoints.append(endpoint(sm, name, model))
                _delete(sm, name)
            results[kind] = {"bare_s": median(bares), "endpoint_s": median(endpoints),
                             "added_s": median(endpoints) - median(bares)}
    finally:
        stop_emulator(process)
    if args.json:
        print(json.dumps({"machine": info, "results": results}, indent=2))
        return 0
    print(describe_machine(info))
    print(f"medians of {args.runs} alternating runs; docker's /ping polled every {POLL * 1000:g} ms")
    print(f"{'container':<10}{'bare docker s':>15}{'endpoint s':>12}{'added s':>10}")
    for kind, row in results.items():
        print(f"{kind:<10}{row['bare_s']:>15.3f}{row['endpoint_s']:>12.3f}{row['added_s']:>10.3f}")
    print("aim: added < 0.3 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
