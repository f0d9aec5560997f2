"""How long the SageMaker SDK's fit() and deploy() take against the emulator, hold on versus off.

    python benchmarks/sdk_flows.py [--runs 3] [--sdk v2,v3]

Starts ``smemu serve`` as its own process twice, first with ``SMEMU_HOLD_SECONDS=0`` (the
baseline: every describe answers at once, as on AWS) and then with the default hold
(gateway/hold.py), and runs, each in a fresh process per run configured as README.md says, a
trivial ``Estimator.fit(logs=True)``, ``deploy()`` and a ``fit()`` of a job that trains for 8 s
(SDK v2, this interpreter), and the same with ``ModelTrainer.train()`` and
``ModelBuilder.deploy()`` (SDK v3, the environment of scripts/install-sdk-v3). Prints the median
seconds of each call and the ratio hold/baseline as a table, with every sample.

Most of these seconds are the SDKs' own sleeps, which no server can shorten: v2 sleeps 5 s
before its first DescribeTrainingJob and 30 s between describes of a running job, v2 and v3
sleep 30 s before their first DescribeEndpoint. The hold makes the first describe find the
resource settled, which decides whether the client sleeps again.
Measured, not asserted; on a shared 2-core machine the numbers move with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.invoke_latency import _start_emulator  # noqa: E402
from tests.conftest import SAGEMAKER_TRUST_POLICY, free_port, make_client  # noqa: E402
from tests.integration.sample_images import build_sample_image  # noqa: E402

CALLS = ("fit", "fit_8s", "deploy")
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "sagemaker:*", "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "logs:*", "s3:*",
    "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission", "ec2:Describe*"]}]})


def _prepare(url: str, bucket: str) -> str:
    """Bucket, data and an execution role in a fresh emulator; the role's ARN."""
    s3 = make_client("s3", url)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/rows.csv", Body=b"1,2\n3,4\n")
    iam = make_client("iam", url)
    role = iam.create_role(RoleName="BenchSageMakerRole", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="execution", PolicyDocument=POLICY)
    return str(role["Arn"])


def _probe(python: str, url: str, cfg: dict[str, Any], home: Path) -> dict[str, Any]:
    config = home / "sagemaker-config.yaml"
    config.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
                      f"      Session: {{DefaultS3Bucket: {cfg['bucket']}}}\n      TelemetryOptOut: true\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONPATH": str(ROOT),
           "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config)}
    done = subprocess.run([python, str(ROOT / "benchmarks" / "sdk_probe.py"), json.dumps(cfg)], env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("TIMING ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"probe failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return dict(json.loads(lines[-1][len("TIMING "):]))


def _sdk_v3_python() -> str:
    made = subprocess.run([str(ROOT / "scripts" / "install-sdk-v3")], capture_output=True, text=True, check=True)
    return str(Path(made.stdout.strip().splitlines()[-1]) / "bin" / "python")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measurements per SDK and setting")
    parser.add_argument("--sdk", default="v2,v3", help="which SDKs: v2, v3 or v2,v3")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    pythons = {"v2": sys.executable, "v3": _sdk_v3_python() if "v3" in args.sdk else ""}
    sdks = [s for s in args.sdk.split(",") if s in pythons]
    images = {name: build_sample_image(name) for name in ("training", "serving")}
    settings = {"baseline (SMEMU_HOLD_SECONDS=0)": {"SMEMU_HOLD_SECONDS": "0"}, "hold (default)": {}}
    samples: dict[tuple[str, str, str], list[float]] = {}
    for label, extra in settings.items():
        home = Path(tempfile.mkdtemp(prefix="smemu-bench-sdk-"))
        port = free_port()
        saved = {k: os.environ.pop(k, None) for k in ("SMEMU_HOLD_SECONDS",)}
        os.environ.update(extra)
        try:
            process = _start_emulator(home, port)
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None)
                if value is not None:
                    os.environ[key] = value
        url = f"http://127.0.0.1:{port}"
        try:
            role = _prepare(url, "bench-sdk")
            for run in range(args.runs):
                for sdk in sdks:
                    cfg = {"images": images, "role": role, "bucket": "bench-sdk", "prefix": f"bench-{sdk}-{run}"}
                    found = _probe(pythons[sdk], url, cfg, Path(tempfile.mkdtemp(dir=home)))
                    for call in CALLS:
                        samples.setdefault((sdk, call, label), []).append(found[call])
        finally:
            process.terminate()
            process.wait(timeout=60)
    labels = list(settings)
    results = [{"sdk": sdk, "call": call, "runs": args.runs,
                **{label: statistics.median(samples[(sdk, call, label)]) for label in labels},
                "samples": {label: samples[(sdk, call, label)] for label in labels},
                "ratio": statistics.median(samples[(sdk, call, labels[1])]) /
                statistics.median(samples[(sdk, call, labels[0])])}
               for sdk in sdks for call in CALLS]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"median seconds over {args.runs} runs, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'sdk':<4} {'call':<7} {labels[0]:>32} {labels[1]:>16} {'ratio':>7}   samples (baseline | hold)")
    for row in results:
        spread = " | ".join(" ".join(f"{v:.1f}" for v in row["samples"][label]) for label in labels)
        print(f"{row['sdk']:<4} {row['call']:<7} {row[labels[0]]:>32.2f} {row[labels[1]]:>16.2f} "
              f"{row['ratio']:>7.2f}   {spread}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
