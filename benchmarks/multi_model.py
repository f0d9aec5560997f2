"""Multi-model endpoints: cold loads and warm invocations, against a single-model endpoint.

    python benchmarks/multi_model.py [--models 30] [--requests 1000] [--repeats 3]

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

The warm-MME / single-model ratio is what the multi-model routing adds per call (aim: within
10 %); cold / warm is what a cache miss costs. The warm series run ``--repeats`` times,
alternating, and the table shows medians. Measured, not asserted (DESIGN.md); on 2 cores the
client, the emulator, the embedded S3 and the container share the CPUs.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (
    AUTH,
    connection,
    delete_endpoints,
    deploy,
    describe_machine,
    machine,
    median,
    percentile,
    published_port,
    series,
    start_emulator,
    stop_emulator,
)
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


def _cold(port: int, endpoint: str, targets: list[str]) -> list[float]:
    """The first invocation of each model, one after the other."""
    conn = connection(port)
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


def _stats(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(samples, 0.5), "p90_ms": percentile(samples, 0.9), "p99_ms": percentile(samples, 0.99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=30, help="models loaded cold, one after the other")
    parser.add_argument("--requests", type=int, default=1000, help="requests per warm series")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the warm series (medians are shown)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    info = machine()
    home = Path(tempfile.mkdtemp(prefix="smemu-bench-mme-"))
    port = free_port()
    image = build_sample_image("multi_model")
    process = start_emulator(home, port)
    url = f"http://127.0.0.1:{port}"
    sm, s3 = make_client("sagemaker", url), make_client("s3", url)
    mme, single = f"bench-mme-{os.getpid()}", f"bench-single-{os.getpid()}"
    bucket = f"bench-mme-{os.getpid()}"
    try:
        role = create_sagemaker_role(url)
        s3.create_bucket(Bucket=bucket)
        targets = [f"m{i:03d}.tar.gz" for i in range(args.models + 1)]
        for target in targets:
            s3.put_object(Bucket=bucket, Key=f"mme/{target}", Body=_archive(target))
        deploy(sm, mme, {"Image": image, "Mode": "MultiModel", "ModelDataUrl": f"s3://{bucket}/mme/"}, role)
        deploy(sm, single, {"Image": image, "ModelDataUrl": f"s3://{bucket}/mme/{targets[0]}"}, role)

        cold = _cold(port, mme, targets[1:])
        warm_target = targets[1]
        mme_request = (port, f"/endpoints/{mme}/invocations", {
            "Content-Type": "application/json", "Authorization": AUTH, "X-Amzn-SageMaker-Target-Model": warm_target,
        }, BODY)
        single_request = (port, f"/endpoints/{single}/invocations",
                          {"Content-Type": "application/json", "Authorization": AUTH}, BODY)
        direct_request = (published_port(mme), f"/models/{model_name(warm_target)}/invoke",
                          {"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Model": warm_target}, BODY)
        rounds: dict[str, list[dict[str, float]]] = {"warm MME (cache hit)": [], "single-model endpoint": [],
                                                     "direct to container": []}
        for _ in range(args.repeats):
            rounds["warm MME (cache hit)"].append(_stats(series(mme_request, args.requests)))
            rounds["single-model endpoint"].append(_stats(series(single_request, args.requests)))
            rounds["direct to container"].append(_stats(series(direct_request, args.requests)))
        rows = {"cold load (first call)": _stats(cold)}
        rows.update({label: {key: median([r[key] for r in runs]) for key in runs[0]} for label, runs in rounds.items()})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/_smemu/endpoints/{mme}/models")
        view = json.loads(conn.getresponse().read())
        warm_p50, plain_p50 = rows["warm MME (cache hit)"]["p50_ms"], rows["single-model endpoint"]["p50_ms"]
        results: dict[str, Any] = {
            "machine": info, "models": args.models, "requests": args.requests, "repeats": args.repeats,
            "series": rows,
            "warm_mme_over_single_p50": warm_p50 / plain_p50,
            "warm_mme_added_p50_ms": warm_p50 - plain_p50,
            "cold_load_p50_ms": rows["cold load (first call)"]["p50_ms"],
            "cold_load_mean_load_seconds": view["Stats"]["LoadSecondsMean"],
            "cold_over_warm_p50": rows["cold load (first call)"]["p50_ms"] / warm_p50,
        }
        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print(describe_machine(info))
            print(f"{args.models} cold loads; warm series: {args.requests} requests, medians of {args.repeats} rounds")
            print(f"{'series':<26}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}")
            for label, row in rows.items():
                print(f"{label:<26}{row['p50_ms']:>10.3f}{row['p90_ms']:>10.3f}{row['p99_ms']:>10.3f}")
            print(
                f"warm MME / single-model p50: {results['warm_mme_over_single_p50']:.2f}x "
                f"({results['warm_mme_added_p50_ms']:+.3f} ms; aim: within 10 %); cold / warm p50: "
                f"{results['cold_over_warm_p50']:.0f}x (the container's own POST /models: "
                f"{results['cold_load_mean_load_seconds'] * 1000:.1f} ms on average)"
            )
    finally:
        try:
            delete_endpoints(sm, [mme, single])
        finally:
            stop_emulator(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
