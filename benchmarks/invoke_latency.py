"""InvokeEndpoint through the emulator versus the same container called directly, in one run.

    python benchmarks/invoke_latency.py [--requests 2000] [--seconds 10] [--concurrency 8]

Starts ``smemu serve`` as its own process (so the client does not share its interpreter),
deploys the sample serving container as a one-instance endpoint, and measures, with the
same client code and a persistent connection per client for both paths:

* latency at concurrency 1: ``POST /endpoints/<name>/invocations`` on the edge port versus
  ``POST /invocations`` on the container's published port; the difference is what the
  emulator adds (gateway, routing, connection to the container);
* throughput at concurrency N (client processes, each with its own connection).

The edge requests carry a SigV4-shaped Authorization header (the edge routes by credential
scope), not a real signature: signing is client cost, the same with or without the emulator.
Measured, not asserted (DESIGN.md): the aims are under 1 ms added at p50 and at least 80 %
of direct throughput. Numbers depend on the machine; on 2 cores the client, the emulator
and the container compete for the same CPUs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import create_sagemaker_role, free_port, make_client
from tests.integration.sample_images import build_sample_image

BODY = b'{"features": [1.0, 2.0, 3.0]}'
AUTH = (
    "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def _connection(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _target(kind: str, edge_port: int, container_port: int, endpoint: str) -> tuple[int, str, dict[str, str]]:
    if kind == "direct":
        return container_port, "/invocations", {"Content-Type": "application/json"}
    return (
        edge_port,
        f"/endpoints/{endpoint}/invocations",
        {"Content-Type": "application/json", "Authorization": AUTH},
    )


def _call(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> None:
    conn.request("POST", path, body=BODY, headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}")


def latencies(kind: str, count: int, *target: Any) -> list[float]:
    """Seconds per request, one client, one persistent connection."""
    port, path, headers = _target(kind, *target)
    conn = _connection(port)
    for _ in range(50):  # warm-up
        _call(conn, path, headers)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        _call(conn, path, headers)
        samples.append(time.perf_counter() - started)
    conn.close()
    return samples


def _worker(kind: str, seconds: float, target: tuple[Any, ...], start_at: float, out: Any) -> None:
    port, path, headers = _target(kind, *target)
    conn = _connection(port)
    while time.time() < start_at:
        time.sleep(0.001)
    done, end = 0, start_at + seconds
    while time.time() < end:
        _call(conn, path, headers)
        done += 1
    out.put(done)


def throughput(kind: str, concurrency: int, seconds: float, *target: Any) -> float:
    """Requests per second with ``concurrency`` client processes."""
    queue: Any = multiprocessing.Queue()
    start_at = time.time() + 1.0
    workers = [
        multiprocessing.Process(target=_worker, args=(kind, seconds, target, start_at, queue))
        for _ in range(concurrency)
    ]
    for worker in workers:
        worker.start()
    total = sum(queue.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def _start_emulator(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SMEMU_HOME": str(home), "SMEMU_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=(home / "serve.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "serve.log").read_text()[-2000:]) from None
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per latency series")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="smemu-bench-"))
    port = free_port()
    image = build_sample_image("serving")
    process = _start_emulator(home, port)
    url = f"http://127.0.0.1:{port}"
    sm = make_client("sagemaker", url)
    endpoint = f"bench-{os.getpid()}"
    try:
        sm.create_model(
            ModelName=endpoint,
            PrimaryContainer={"Image": image},
            ExecutionRoleArn=create_sagemaker_role(url),
        )
        sm.create_endpoint_config(
            EndpointConfigName=endpoint,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": endpoint,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1})
        import docker

        container = docker.from_env().containers.list(filters={"label": f"smemu.name={endpoint}"})[0]
        container_port = int(container.ports["8080/tcp"][0]["HostPort"])
        target = (port, container_port, endpoint)

        direct = latencies("direct", args.requests, *target)
        edge = latencies("edge", args.requests, *target)
        direct_rps = throughput("direct", args.concurrency, args.seconds, *target)
        edge_rps = throughput("edge", args.concurrency, args.seconds, *target)
        results = {
            "cpus": os.cpu_count(),
            "direct_p50_ms": _percentile(direct, 0.50),
            "direct_p99_ms": _percentile(direct, 0.99),
            "emulator_p50_ms": _percentile(edge, 0.50),
            "emulator_p99_ms": _percentile(edge, 0.99),
            "added_p50_ms": _percentile(edge, 0.50) - _percentile(direct, 0.50),
            "added_p99_ms": _percentile(edge, 0.99) - _percentile(direct, 0.99),
            "added_mean_ms": (statistics.fmean(edge) - statistics.fmean(direct)) * 1000,
            "direct_rps": direct_rps,
            "emulator_rps": edge_rps,
            "throughput_ratio": edge_rps / direct_rps,
            "concurrency": args.concurrency,
        }
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print(f"machine: {results['cpus']} CPUs")
            print(f"latency, concurrency 1, {args.requests} requests each (ms):")
            print(f"  direct   p50 {results['direct_p50_ms']:7.3f}   p99 {results['direct_p99_ms']:7.3f}")
            print(f"  emulator p50 {results['emulator_p50_ms']:7.3f}   p99 {results['emulator_p99_ms']:7.3f}")
            print(
                f"  added    p50 {results['added_p50_ms']:7.3f}   p99 {results['added_p99_ms']:7.3f}"
                "   (aim: p50 < 1 ms)"
            )
            print(f"throughput, concurrency {args.concurrency}, {args.seconds:g} s each (requests/s):")
            print(
                f"  direct {direct_rps:8.0f}   emulator {edge_rps:8.0f}   ratio {results['throughput_ratio']:.0%}"
                "   (aim: >= 80 %)"
            )
    finally:
        try:
            sm.delete_endpoint(EndpointName=endpoint)
            sm.get_waiter("endpoint_deleted").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1})
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
