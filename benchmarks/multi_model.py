"""Multi-model endpoints: cold loads and warm invocations, against a single-model endpoint.

    python benchmarks/multi_model.py [--models 30] [--requests 1000]

Starts ``smemu serve`` as its own process and deploys the reference multi-model container
(sample_containers/multi_model) twice, one instance each: as a multi-model endpoint over
``--models`` small model.tar.gz files, and as a single-model endpoint (the same image serves
``POST /invocations`` for /opt/ml/model). With the same client code and one persistent
connection per series, it measures:

* **cold load**: the first InvokeEndpoint of each model (download from S3, safe extraction,
  ``POST /models``, then ``POST /models/<name>/invoke``);
* **warm MME**: InvokeEndpoint of an already loaded model (cache hit);
* **single-model**: InvokeEndpoint of the single-model endpoint;
* **direct**: ``POST /models/<name>/invoke`` on the container's published port, no emulator.

The warm-MME / single-model ratio is what the multi-model routing adds per call; cold / warm
is what a cache miss costs. Measured, not asserted (DESIGN.md); on 2 cores the client, the
emulator, the embedded S3 and the container share the CPUs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.invoke_latency import AUTH, _connection, _percentile, _start_emulator
from emulator.hosting.multi_model import model_name
from tests.conftest import create_sagemaker_role, free_port, make_client
from tests.integration.sample_images import build_sample_image

BODY = b'{"features": [1.0, 2.0, 3.0]}'


def _archive(name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, data in {"model.json": json.dumps({"name": name}).encode(), "weights.bin": os.urandom(4096)}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _series(port: int, path: str, headers: dict[str, str], count: int, warmup: int = 50) -> list[float]:
    """Seconds per request on one persistent connection (after ``warmup`` untimed requests)."""
    conn = _connection(port)
    samples = []
    for n in range(warmup + count):
        started = time.perf_counter()
        conn.request("POST", path, body=BODY, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        if n >= warmup:
            samples.append(time.perf_counter() - started)
    conn.close()
    return samples


def _cold(port: int, endpoint: str, targets: list[str]) -> list[float]:
    """The first invocation of each model, one after the other."""
    conn = _connection(port)
    samples = []
    for target in targets:
        headers = {"Content-Type": "application/json", "Authorization": AUTH, "X-Amzn-SageMaker-Target-Model": target}
        started = time.perf_counter()
        conn.request("POST", f"/endpoints/{endpoint}/invocations", body=BODY, headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200 or json.loads(body)["load_count"] != 1:
            raise RuntimeError(f"cold call of {target}: {response.status} {body[:200]!r}")
        samples.append(time.perf_counter() - started)
    conn.close()
    return samples


def _deploy(sm: Any, name: str, container: dict[str, Any], role: str) -> None:
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=role)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=30, help="models loaded cold, one after the other")
    parser.add_argument("--requests", type=int, default=1000, help="requests per warm series")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="smemu-bench-mme-"))
    port = free_port()
    image = build_sample_image("multi_model")
    process = _start_emulator(home, port)
    url = f"http://127.0.0.1:{port}"
    sm, s3 = make_client("sagemaker", url), make_client("s3", url)
    role = create_sagemaker_role(url)
    mme, single = f"bench-mme-{os.getpid()}", f"bench-single-{os.getpid()}"
    bucket = f"bench-mme-{os.getpid()}"
    try:
        s3.create_bucket(Bucket=bucket)
        targets = [f"m{i:03d}.tar.gz" for i in range(args.models + 1)]
        for target in targets:
            s3.put_object(Bucket=bucket, Key=f"mme/{target}", Body=_archive(target))
        _deploy(sm, mme, {"Image": image, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/mme/"}, role)
        _deploy(sm, single, {"Image": image, "ModelDataUrl": f"s3://{bucket}/mme/{targets[0]}"}, role)
        for name in (mme, single):
            sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})

        cold = _cold(port, mme, targets[1:])
        warm_target = targets[1]
        mme_headers = {
            "Content-Type": "application/json",
            "Authorization": AUTH,
            "X-Amzn-SageMaker-Target-Model": warm_target,
        }
        plain_headers = {"Content-Type": "application/json", "Authorization": AUTH}
        warm = _series(port, f"/endpoints/{mme}/invocations", mme_headers, args.requests)
        plain = _series(port, f"/endpoints/{single}/invocations", plain_headers, args.requests)
        import docker

        container = docker.from_env().containers.list(filters={"label": f"smemu.name={mme}"})[0]
        container_port = int(container.ports["8080/tcp"][0]["HostPort"])
        direct = _series(
            container_port,
            f"/models/{model_name(warm_target)}/invoke",
            {"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Model": warm_target},
            args.requests,
        )
        rows = {
            "cold load (first call)": cold,
            "warm MME (cache hit)": warm,
            "single-model endpoint": plain,
            "direct to container": direct,
        }
        results: dict[str, Any] = {"cpus": os.cpu_count(), "models": args.models, "requests": args.requests}
        for label, samples in rows.items():
            results[label] = {"p50_ms": _percentile(samples, 0.5), "p90_ms": _percentile(samples, 0.9),
                              "p99_ms": _percentile(samples, 0.99)}
        warm_p50, plain_p50 = _percentile(warm, 0.5), _percentile(plain, 0.5)
        results["warm_mme_over_single_p50"] = warm_p50 / plain_p50
        results["warm_mme_added_p50_ms"] = warm_p50 - plain_p50
        results["cold_over_warm_p50"] = _percentile(cold, 0.5) / warm_p50
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print(f"machine: {results['cpus']} CPUs; {args.models} cold loads, {args.requests} requests per warm series")
            print(f"{'series':<26}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}")
            for label in rows:
                row = results[label]
                print(f"{label:<26}{row['p50_ms']:>10.3f}{row['p90_ms']:>10.3f}{row['p99_ms']:>10.3f}")
            print(
                f"warm MME / single-model p50: {results['warm_mme_over_single_p50']:.2f}x "
                f"({results['warm_mme_added_p50_ms']:+.3f} ms); cold / warm p50: {results['cold_over_warm_p50']:.0f}x"
            )
    finally:
        try:
            for name in (mme, single):
                try:
                    sm.delete_endpoint(EndpointName=name)
                except sm.exceptions.ClientError as exc:  # it may not exist if the run failed early
                    print(f"deleting {name}: {exc}", file=sys.stderr)
            for name in (mme, single):
                sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1})
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
