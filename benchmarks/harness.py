"""What every benchmark here shares: the machine's description, an emulator process, endpoints,
HTTP clients with kept-alive connections, load from several client processes, percentiles.

Benchmarks measure and print; they assert nothing (DESIGN.md). Each runs the emulator as its
own process (``smemu serve``), so the client never shares the emulator's interpreter, and
compares against a baseline measured in the same run on the same machine.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

AUTH = (
    "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
"""A SigV4-shaped Authorization header: the edge routes by credential scope. Signing is client
cost, the same with or without the emulator, so the benchmarks do not sign."""


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": os.getloadavg(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    """One line for the table's header."""
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    return (f"machine: {info['cpus']} CPUs ({info['cpu_model']}), Linux {info['kernel']}, Python {info['python']}; "
            f"load average at start {load}")


def start_emulator(home: Path, port: int, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``smemu serve`` in its own process group, answering on ``port``; its output in home/serve.log."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SMEMU_HOME": str(home), "SMEMU_PORT": str(port), **(extra_env or {})}
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
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/_smemu/health")
            if connection.getresponse().status == 200:
                connection.close()
                return process
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((home / "serve.log").read_text()[-2000:])
        time.sleep(0.1)


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a user's Ctrl-C or `smemu down` would."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def deploy(sm: Any, name: str, container: dict[str, Any], role: str, instance_type: str = "ml.m5.large") -> None:
    """A one-variant, one-instance endpoint of ``container`` (returns once InService)."""
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=role)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": instance_type}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})


def delete_endpoints(sm: Any, names: list[str]) -> None:
    """Delete endpoints (those that exist) and wait until they are gone."""
    for name in names:
        try:
            sm.delete_endpoint(EndpointName=name)
        except sm.exceptions.ClientError as exc:
            print(f"deleting {name}: {exc}", file=sys.stderr)
    for name in names:
        sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1})


def published_port(endpoint: str, container_port: int = 8080) -> int:
    """The loopback port the endpoint's (only) container is published on."""
    import docker

    container = docker.from_env().containers.list(filters={"label": f"smemu.name={endpoint}"})[0]
    return int(container.ports[f"{container_port}/tcp"][0]["HostPort"])


def network_address(endpoint: str) -> str | None:
    """The endpoint's (only) container's address on its Docker network, if it has one."""
    import docker

    container = docker.from_env().containers.list(filters={"label": f"smemu.name={endpoint}"})[0]
    for network in (container.attrs["NetworkSettings"].get("Networks") or {}).values():
        if network.get("IPAddress"):
            return str(network["IPAddress"])
    return None


def connection(address: int | tuple[str, int]) -> http.client.HTTPConnection:
    """A kept-alive connection with TCP_NODELAY to a loopback port or a ``(host, port)``."""
    host, port = ("127.0.0.1", address) if isinstance(address, int) else address
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


Target = tuple[Any, str, dict[str, str], bytes]
"""``(loopback port or (host, port), path, headers, body)`` of one kind of request."""


def call(conn: http.client.HTTPConnection, target: Target) -> bytes:
    """One POST; raises unless it answered 200."""
    _port, path, headers, body = target
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {data[:300]!r}")
    return data


def series(target: Target, count: int, warmup: int = 50) -> list[float]:
    """Seconds per request, one client on one kept-alive connection, after ``warmup`` requests."""
    conn = connection(target[0])
    for _ in range(warmup):
        call(conn, target)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call(conn, target)
        samples.append(time.perf_counter() - started)
    conn.close()
    return samples


def _load_worker(target: Target, seconds: float, start_at: float, out: Any) -> None:
    conn = connection(target[0])
    for _ in range(20):
        call(conn, target)
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    samples = []
    now = time.time()
    while now < end:
        started = time.perf_counter()
        call(conn, target)
        samples.append(time.perf_counter() - started)
        now = time.time()
    out.put(samples)


def load(target: Target, processes: int, seconds: float) -> tuple[float, list[float]]:
    """Requests per second with ``processes`` client processes (one kept-alive connection each),
    and every request's latency."""
    queue: Any = multiprocessing.get_context("fork").Queue()
    start_at = time.time() + 1.0
    workers = [
        multiprocessing.get_context("fork").Process(target=_load_worker, args=(target, seconds, start_at, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    samples: list[float] = []
    for _ in workers:
        samples.extend(queue.get())
    for worker in workers:
        worker.join()
    return len(samples) / seconds, samples


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``samples`` (seconds), in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def median(values: list[float]) -> float:
    """The median of repeated measurements (the machine is shared: one run can be unlucky)."""
    return statistics.median(values)


def repeated(times: int, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run ``measure`` ``times`` times; the median of each figure."""
    runs = [measure() for _ in range(times)]
    return {key: median([run[key] for run in runs]) for key in runs[0]}
