"""InvokeEndpoint through the emulator versus the same container called directly, in one run.

    python benchmarks/invoke_latency.py [--repeats 3] [--seconds 5] [--requests 2000]
                                        [--concurrency 8] [--containers fast,threaded] [--json]

Starts ``smemu serve`` as its own process and deploys two one-instance endpoints: a fast
container (sample_containers/asyncio_serving, one asyncio event loop) and a threaded one
(sample_containers/serving, Python's ThreadingHTTPServer). For each, with the same client code
and one kept-alive connection per client, it measures:

* **latency at concurrency 1**: ``POST /endpoints/<name>/invocations`` on the edge port versus
  ``POST /invocations`` on the container's published port (what a user calls; on Docker it
  passes through the engine's userland proxy); the difference is what the emulator adds. A
  third row calls the container on its own network address (no proxy at all), the
  container's bare ceiling, where this machine reaches it;
* **throughput at concurrency N**: N client *processes* (so the client is not the ceiling), each
  with one kept-alive connection, for ``--seconds``; with every request's latency (p50, p99).

Each configuration runs ``--repeats`` times, alternating direct and emulator, and the table
shows medians: the machine may be shared and one run unlucky. The aims (DESIGN.md decision 11,
measured, not asserted): at least 80 % of direct throughput with the fast container, added
p50 under 0.5 ms. On a 2-core machine the clients, the emulator's processes and the container
compete for the same CPUs, so the ratio is what the emulator's CPU per request costs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (
    AUTH,
    Target,
    delete_endpoints,
    deploy,
    describe_machine,
    load,
    machine,
    network_address,
    percentile,
    published_port,
    repeated,
    series,
    start_emulator,
    stop_emulator,
)
from tests.conftest import create_sagemaker_role, free_port, make_client
from tests.integration.sample_images import build_sample_image

BODY = b'{"features": [1.0, 2.0, 3.0]}'
CONTAINERS = {"fast": "asyncio_serving", "threaded": "serving"}


def targets(edge_port: int, container_port: int, endpoint: str) -> tuple[Target, Target]:
    """The direct request and the same request through the emulator."""
    direct = (container_port, "/invocations", {"Content-Type": "application/json"}, BODY)
    edge = (
        edge_port,
        f"/endpoints/{endpoint}/invocations",
        {"Content-Type": "application/json", "Authorization": AUTH},
        BODY,
    )
    return direct, edge


def measure(paths: dict[str, Target], args: argparse.Namespace) -> dict[str, float]:
    """One round: latency and throughput of each path (``direct``, ``emulator``, maybe ``network``)."""
    row: dict[str, float] = {}
    for label, target in paths.items():
        latencies = series(target, args.requests)
        rps, under_load = load(target, args.concurrency, args.seconds)
        row.update({
            f"{label}_p50_ms": percentile(latencies, 0.50),
            f"{label}_p99_ms": percentile(latencies, 0.99),
            f"{label}_rps": rps,
            f"{label}_load_p50_ms": percentile(under_load, 0.50),
            f"{label}_load_p99_ms": percentile(under_load, 0.99),
        })
    row["added_p50_ms"] = row["emulator_p50_ms"] - row["direct_p50_ms"]
    row["throughput_ratio"] = row["emulator_rps"] / row["direct_rps"]
    if "network_rps" in row:
        row["throughput_ratio_network"] = row["emulator_rps"] / row["network_rps"]
    return row


def print_table(info: dict[str, Any], results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(describe_machine(info))
    print(f"medians of {args.repeats} runs; latency: 1 client, {args.requests} requests; throughput: "
          f"{args.concurrency} client processes x 1 kept-alive connection, {args.seconds:g} s")
    header = (f"{'container':<10}{'path':<10}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}"
              f"{'load p50':>10}{'load p99':>10}")
    print(header)
    for kind, row in results.items():
        for label in ("direct", "emulator", "network"):
            if f"{label}_rps" in row:
                print(f"{kind:<10}{label:<10}{row[label + '_p50_ms']:>9.3f}{row[label + '_p99_ms']:>9.3f}"
                      f"{row[label + '_rps']:>9.0f}{row[label + '_load_p50_ms']:>10.3f}"
                      f"{row[label + '_load_p99_ms']:>10.3f}")
        print(f"{kind:<10}{'ratio':<10}{'added p50 ' + format(row['added_p50_ms'], '+.3f') + ' ms':>18}"
              f"{row['throughput_ratio']:>9.0%}  emulator / direct")
        if "throughput_ratio_network" in row:
            print(f"{'':<10}{'':<10}{'':>18}{row['throughput_ratio_network']:>9.0%}  emulator / network")
    print("direct: the published port (through the engine's proxy); network: the container's own address")
    print("aims: fast container >= 80 % of direct throughput, added p50 < 0.5 ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per latency series")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--concurrency", type=int, default=8, help="client processes in throughput runs")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per configuration (medians are shown)")
    parser.add_argument("--containers", default="fast,threaded", help="which containers: fast, threaded")
    parser.add_argument("--no-network", dest="network", action="store_false",
                        help="skip the row that calls the container on its own network address")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    info = machine()
    kinds = [k for k in args.containers.split(",") if k]
    images = {kind: build_sample_image(CONTAINERS[kind]) for kind in kinds}
    home = Path(tempfile.mkdtemp(prefix="smemu-bench-"))
    port = free_port()
    process = start_emulator(home, port)
    url = f"http://127.0.0.1:{port}"
    sm = make_client("sagemaker", url)
    names = {kind: f"bench-{kind}-{os.getpid()}" for kind in kinds}
    results: dict[str, dict[str, float]] = {}
    try:
        role = create_sagemaker_role(url)
        for kind in kinds:
            deploy(sm, names[kind], {"Image": images[kind]}, role)
        for kind in kinds:
            direct, edge = targets(port, published_port(names[kind]), names[kind])
            paths = {"direct": direct, "emulator": edge}
            address = network_address(names[kind])
            if address is not None and args.network:
                paths["network"] = ((address, 8080), *direct[1:])
            results[kind] = repeated(args.repeats, lambda p=paths: measure(p, args))
    finally:
        try:
            delete_endpoints(sm, list(names.values()))
        finally:
            stop_emulator(process)
    if args.json:
        print(json.dumps({"machine": info, "results": results}, indent=2))
    else:
        print_table(info, results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
