"""The S3 store: throughput through the edge, and what stored data costs in memory and restarts.

    python benchmarks/s3_store.py [--sizes-gib 0,1,10] [--transfer-mib 256] [--clients 2]

Runs ``smemu serve`` as its own process on a fresh home and prints two tables.

1. **Throughput** of PUT and GET of ``--transfer-mib`` MiB per client (``--clients`` client
   processes in parallel, s3transfer multipart with 4 threads each): through the edge port
   (the proxy, re-signing and streaming), straight to the store (the managed MinIO), and
   for moto's in-memory store (``SMEMU_S3_STORE=memory``) through the edge. The baseline is
   a plain file copy of the same bytes (write + fsync, read back), run in the same process.
2. **Stored data versus cost**, for each of ``--sizes-gib`` stored (written straight to the
   store in 64 MiB objects): the emulator's and MinIO's resident memory, the time a restart
   takes until S3 answers through the edge, and the cost of a small PUT (1 KiB, 200 of them
   through the edge: latency p50 and the emulator's CPU per PUT). The in-memory store is
   measured at 0 and 1 GiB (10 GiB would have to fit in the emulator's memory).

Measured, not asserted. Everything runs on this machine: the client, the emulator and the
store share its cores. The home is removed at the end (10 GiB takes a while to write).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402

from tests.conftest import free_port  # noqa: E402

MiB = 1024 * 1024
TRANSFER = TransferConfig(multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4)


class Serve:
    """``smemu serve`` on a home of its own."""

    def __init__(self, home: Path, store: str, env: dict[str, str] | None = None) -> None:
        self.home, self.store, self.port, self.env = home, store, free_port(), env or {}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and return the seconds until an S3 request through the edge is answered."""
        env = {**os.environ, "SMEMU_HOME": str(self.home), "SMEMU_PORT": str(self.port),
               "SMEMU_S3_STORE": self.store, "SMEMU_CONTAINER_GATEWAY": "0", **self.env}
        started = time.perf_counter()
        with (self.home.parent / f"{self.home.name}.log").open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve"], env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        client = s3_client(self.url, "test", "test")
        deadline = time.monotonic() + 120
        while True:
            try:
                client.list_buckets()
                return time.perf_counter() - started
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("smemu serve did not answer; see its log") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(60)

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/_smemu/health", timeout=10) as response:
            return dict(json.loads(response.read()))

    def direct(self) -> Any:
        """A client of the managed MinIO itself."""
        credentials = json.loads((self.home / "state" / "s3-credentials.json").read_text())
        return s3_client(self.health()["s3"]["endpoint"], credentials["access_key"], credentials["secret_key"])


def s3_client(url: str, key: str, secret: str) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=url, region_name="us-east-1",
                                          aws_access_key_id=key, aws_secret_access_key=secret,
                                          config=Config(retries={"max_attempts": 5}, max_pool_connections=16))


def rss_mib(pid: int | None) -> float:
    if not pid:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- throughput ---------------------------------------------------------------------------------


def _transfer(args: tuple[str, str, str, str, str, int, str]) -> float:
    """One client process: upload or download ``size`` bytes; returns the seconds it took."""
    url, key, secret, bucket, name, size, direction = args
    client = s3_client(url, key, secret)
    path = Path(tempfile.gettempdir()) / f"smemu-bench-{os.getpid()}-{name.replace('/', '_')}"
    try:
        if direction == "put":
            with path.open("wb") as handle:
                block = os.urandom(MiB)
                for _ in range(size // MiB):
                    handle.write(block)
            started = time.perf_counter()
            client.upload_file(str(path), bucket, name, Config=TRANSFER)
        else:
            started = time.perf_counter()
            client.download_file(bucket, name, str(path), Config=TRANSFER)
        return time.perf_counter() - started
    finally:
        path.unlink(missing_ok=True)


def throughput(url: str, key: str, secret: str, bucket: str, mib: int, clients: int) -> tuple[float, float]:
    """Aggregate (PUT MB/s, GET MB/s) of ``clients`` processes moving ``mib`` MiB each."""
    names = [f"bench/{i}-{time.time_ns()}" for i in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        # Each client times its own transfer (not its start-up); the slowest one sets the aggregate.
        put = clients * mib * MiB / max(pool.map(_transfer, [(url, key, secret, bucket, n, mib * MiB, "put")
                                                             for n in names])) / 1e6
        get = clients * mib * MiB / max(pool.map(_transfer, [(url, key, secret, bucket, n, mib * MiB, "get")
                                                             for n in names])) / 1e6
    return put, get


def file_copy(folder: Path, mib: int, clients: int) -> tuple[float, float]:
    """The baseline: write (+ fsync) and read back the same bytes as plain files."""
    block = os.urandom(MiB)
    paths = [folder / f"copy-{i}" for i in range(clients)]
    started = time.perf_counter()
    for path in paths:
        with path.open("wb") as handle:
            for _ in range(mib):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
    write = clients * mib * MiB / (time.perf_counter() - started) / 1e6
    copies = [folder / f"copy-{i}.back" for i in range(clients)]
    started = time.perf_counter()
    for path, target in zip(paths, copies):
        shutil.copyfile(path, target)
    read = clients * mib * MiB / (time.perf_counter() - started) / 1e6
    for path in paths + copies:
        path.unlink()
    return write, read


# -- stored data versus cost --------------------------------------------------------------------


def fill(client: Any, bucket: str, target_gib: float, stored: float) -> float:
    """Write 64 MiB objects until ``target_gib`` GiB are stored; returns the GiB stored."""
    block = os.urandom(MiB) * 64
    while stored < target_gib:
        client.put_object(Bucket=bucket, Key=f"fill/{time.time_ns()}", Body=block)
        stored += 64 / 1024
    return stored


def small_puts(serve: Serve, bucket: str, count: int = 200) -> tuple[float, float]:
    """(p50 latency ms, emulator CPU ms per PUT) of 1 KiB PUTs through the edge."""
    client = s3_client(serve.url, "test", "test")
    assert serve.process is not None
    before = cpu_seconds(serve.process.pid)
    latencies = []
    for number in range(count):
        started = time.perf_counter()
        client.put_object(Bucket=bucket, Key=f"small/{number}", Body=b"x" * 1024)
        latencies.append(time.perf_counter() - started)
    cpu = (cpu_seconds(serve.process.pid) - before) / count
    return statistics.median(latencies) * 1000, cpu * 1000


def measure(serve: Serve, bucket: str, restarts: int = 3) -> dict[str, float]:
    """Restart (median of ``restarts``; after sync(2), so the fill's writeback is not timed) and measure."""
    os.sync()
    times, store_times = [], []
    for _ in range(restarts):
        serve.stop()
        times.append(serve.start())
        store_times.append(serve.health()["s3"].get("ready_seconds") or float("nan"))
    restart = statistics.median(times)
    latency, cpu = small_puts(serve, bucket)
    health = serve.health()
    assert serve.process is not None
    return {"restart_s": restart, "store_ready_s": statistics.median(store_times),
            "emulator_mib": rss_mib(serve.process.pid),
            "store_mib": rss_mib(health["s3"].get("pid")), "put_ms": latency, "put_cpu_ms": cpu}


def stored_costs(root: Path, store: str, sizes: list[float]) -> list[tuple[float, dict[str, float]]]:
    """One row per stored size: fill the store, restart, measure."""
    serve = Serve(root / f"home-{store}", store)
    serve.home.mkdir()
    rows = []
    try:
        serve.start()
        s3_client(serve.url, "test", "test").create_bucket(Bucket="bench")
        stored = 0.0
        for size in sizes:
            if store == "minio":
                stored = fill(serve.direct(), "bench", size, stored)
                rows.append((size, measure(serve, "bench")))
            elif size <= 1:  # moto's store keeps nothing across a restart: restart empty, then fill
                serve.stop()
                restart = serve.start()
                edge = s3_client(serve.url, "test", "test")
                edge.create_bucket(Bucket="bench")
                fill(edge, "bench", size, 0.0)
                latency, cpu = small_puts(serve, "bench")
                assert serve.process is not None
                rows.append((size, {"restart_s": restart, "store_ready_s": float("nan"),
                                    "emulator_mib": rss_mib(serve.process.pid),
                                    "store_mib": float("nan"), "put_ms": latency, "put_cpu_ms": cpu}))
    finally:
        serve.stop()
        shutil.rmtree(serve.home, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-gib", default="0,1,10")
    parser.add_argument("--transfer-mib", type=int, default=256)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--stores", default="minio,memory", help="stores of the second table")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes_gib.split(",")]
    root = Path(tempfile.mkdtemp(prefix="smemu-bench-s3-"))
    try:
        print(f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') >> 30} GiB"
              f" RAM; data in {root}", flush=True)
        if not args.skip_throughput:
            print_throughput(root, args.transfer_mib, args.clients)
        print("\nStored data versus cost (restart: median of 3, SIGTERM, start, until S3 answers through the edge; "
              "small PUT: 1 KiB through the edge)")
        print(f"| {'store':<8} | {'stored GiB':>10} | {'emulator RSS MiB':>16} | {'MinIO RSS MiB':>13} | "
              f"{'restart s':>9} | {'MinIO ready s':>13} | {'small PUT p50 ms':>16} | {'emulator CPU ms/PUT':>19} |")
        print(f"|{'-' * 10}|{'-' * 12}|{'-' * 18}|{'-' * 15}|{'-' * 11}|{'-' * 15}|{'-' * 18}|{'-' * 21}|")
        for store in args.stores.split(","):
            for size, row in stored_costs(root, store, sizes):
                print(f"| {store:<8} | {size:>10.0f} | {row['emulator_mib']:>16.0f} | {row['store_mib']:>13.0f} | "
                      f"{row['restart_s']:>9.2f} | {row['store_ready_s']:>13.2f} | {row['put_ms']:>16.2f} | "
                      f"{row['put_cpu_ms']:>19.2f} |", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_throughput(root: Path, mib: int, clients: int) -> None:
    """The first table: file copy, MinIO directly, the edge to MinIO, the edge to moto's memory."""
    print(f"\nThroughput, {clients} client processes x {mib} MiB (MB/s; ratio to file copy)")
    write, read = file_copy(root, mib, clients)
    rows = [("plain file copy (write+fsync / read)", write, read)]
    for store in ("minio", "memory"):
        serve = Serve(root / f"tp-{store}", store)
        serve.home.mkdir()
        try:
            serve.start()
            s3_client(serve.url, "test", "test").create_bucket(Bucket="throughput")
            if store == "minio":
                endpoint = serve.health()["s3"]["endpoint"]
                credentials = json.loads((serve.home / "state" / "s3-credentials.json").read_text())
                rows.append(("MinIO directly (the store's own speed)", *throughput(
                    endpoint, credentials["access_key"], credentials["secret_key"], "throughput", mib, clients)))
                rows.append(("edge port -> MinIO (default store)", *throughput(
                    serve.url, "test", "test", "throughput", mib, clients)))
            else:
                rows.append(("edge port -> moto in memory (SMEMU_S3_STORE=memory)", *throughput(
                    serve.url, "test", "test", "throughput", mib, clients)))
        finally:
            serve.stop()
            shutil.rmtree(serve.home, ignore_errors=True)
    print(f"| {'path':<52} | {'PUT MB/s':>9} | {'ratio':>6} | {'GET MB/s':>9} | {'ratio':>6} |")
    print(f"|{'-' * 54}|{'-' * 11}|{'-' * 8}|{'-' * 11}|{'-' * 8}|")
    for name, put, get in rows:
        print(f"| {name:<52} | {put:>9.0f} | {put / write:>6.2f} | {get:>9.0f} | {get / read:>6.2f} |", flush=True)


if __name__ == "__main__":
    main()
