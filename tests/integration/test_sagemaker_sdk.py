"""The SageMaker Python SDK, v2 and v3, runs unchanged against the emulator.

Each SDK runs in its own process, configured only as a user configures it (environment
variables and a sagemaker config file), with a guard that fails any connection leaving the
machine: v2 (setup.cfg's test extra) with this interpreter, v3 (pinned in
tests/integration/sdk/v3-requirements.txt; its boto3 clashes with the emulator's botocore) from
the environment scripts/install-sdk-v3 creates and caches. Both processes run at once against
the session's emulator, each running its independent flows at once, because the SDKs spend most
of their time sleeping between describes. Every flow reports what it observed; the tests below
assert on the real artifacts, outputs and predictions.

The emulator's status hold (gateway/hold.py) is on for these runs, at its default bound, as a
user gets it. The fit/deploy timings the flows measure are printed, not asserted
(benchmarks/sdk_flows.py measures them properly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.config import Settings
from tests.conftest import SAGEMAKER_TRUST_POLICY, make_client, unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import model_archive

pytest.importorskip("sagemaker", reason="the SageMaker SDK v2 is a test dependency (setup.cfg [test])")

pytestmark = pytest.mark.one_store  # the SDKs, not the store, are under test

REPO_ROOT = Path(__file__).resolve().parents[2]
SDK_TIMEOUT_SECONDS = 540
EXECUTION_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Resource": "*",
    "Action": ["sagemaker:*", "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
               "cloudwatch:PutMetricData", "logs:*", "s3:*", "ec2:CreateNetworkInterface",
               "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
               "ec2:DeleteNetworkInterfacePermission", "ec2:Describe*"]}]})


def _sdk_environment(endpoint_url: str, default_bucket: str, home: Path) -> dict[str, str]:
    """Exactly what README.md tells a user to set, and nothing of this process's environment."""
    config = home / "sagemaker-config.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  PythonSDK:\n"
        "    Modules:\n"
        f"      Session: {{DefaultS3Bucket: {default_bucket}}}\n"
        "      TelemetryOptOut: true\n"
    )
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(REPO_ROOT),
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
    }


def _sdk_v3_python() -> str:
    """The SDK v3 environment's interpreter (created once and cached by scripts/install-sdk-v3)."""
    made = subprocess.run([str(REPO_ROOT / "scripts" / "install-sdk-v3")], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=1200)
    assert made.returncode == 0, f"scripts/install-sdk-v3 failed:\n{made.stderr[-3000:]}"
    return str(Path(made.stdout.strip().splitlines()[-1]) / "bin" / "python")


def _result(name: str, process: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    try:
        process.wait(timeout=SDK_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    results = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and len(results) == 1, f"{name} exited {process.returncode}:\n{output[-6000:]}"
    return {"flows": json.loads(results[0][len("RESULT "):]), "output": output}


@pytest.fixture(scope="module")
def sdk_runs(emulator: Any, endpoint_url: str, s3_client: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the v2 and v3 flow scripts at once and collect what each flow observed."""
    images = {name: build_sample_image(name) for name in ("training", "serving", "multi_model", "processing")}
    bucket = unique_name("sdk")
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="train/rows.csv", Body=b"1,2\n3,4\n")
    s3_client.put_object(Bucket=bucket, Key="batch/rows.csv", Body=b"1,2\n3,4\n5,6\n")
    s3_client.put_object(Bucket=bucket, Key="models/fixture.tar.gz", Body=model_archive("fixture-model"))
    iam = make_client("iam", endpoint_url)
    role = iam.create_role(RoleName=unique_name("SageMakerExecution"),
                           AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="execution", PolicyDocument=EXECUTION_POLICY)
    bare = iam.create_role(RoleName=unique_name("NoPolicies"), AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]
    config = {"images": images, "role": role["Arn"], "bare_role": bare["Arn"], "bucket": bucket,
              "model_data": f"s3://{bucket}/models/fixture.tar.gz"}
    default_bucket = f"{bucket}-default"  # not created here: the SDKs create it on first use, as on AWS
    v3_python = _sdk_v3_python()
    hold = emulator.app.control.hold
    previous, hold.bound_seconds = hold.bound_seconds, Settings().hold_seconds
    try:
        started, runs = time.monotonic(), {}
        for name, python, module in (("v2", sys.executable, "tests.integration.sdk.v2_flows"),
                                     ("v3", v3_python, "tests.integration.sdk.v3_flows")):
            home = tmp_path_factory.mktemp(f"sdk-{name}")
            log = home / "output.log"
            with log.open("w") as sink:
                process = subprocess.Popen(
                    [python, "-m", module, json.dumps({**config, "prefix": unique_name(name)})],
                    stdout=sink, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT,
                    env=_sdk_environment(endpoint_url, default_bucket, home))
            runs[name] = (process, log)
        found = {name: _result(name, process, log) for name, (process, log) in runs.items()}
        found["wall_seconds"] = round(time.monotonic() - started, 1)
        found["bucket"], found["default_bucket"] = bucket, default_bucket
        yield found
        print(_timings(found))
    finally:
        hold.bound_seconds = previous


def _timings(found: dict[str, Any]) -> str:
    rows = [f"SDK flows, both SDKs at once: {found['wall_seconds']} s wall"]
    for sdk in ("v2", "v3"):
        for flow, seen in found[sdk]["flows"].items():
            times = {k: v for k, v in seen.items() if k.endswith("_seconds")}
            if times:
                rows.append(f"  {sdk} {flow}: " + ", ".join(f"{k[:-8]} {v} s" for k, v in times.items()))
    return "\n".join(rows)


def flow(runs: dict[str, Any], sdk: str, name: str) -> dict[str, Any]:
    """One flow's observations; its traceback as the failure when it broke."""
    seen = runs[sdk]["flows"][name]
    assert seen["ok"], f"{sdk} {name} failed:\n{seen.get('error')}"
    return dict(seen)


def test_no_sdk_call_left_the_machine(sdk_runs: dict[str, Any]) -> None:
    for sdk in ("v2", "v3"):
        assert "refused by the test guard" not in sdk_runs[sdk]["output"]


def test_v2_session_side_calls(sdk_runs: dict[str, Any], emulator_settings: Settings) -> None:
    seen = flow(sdk_runs, "v2", "session")
    assert seen == {"ok": True, "default_bucket": sdk_runs["default_bucket"], "region": "us-east-1",
                    "account": emulator_settings.account_id}


def test_v2_estimator_on_two_instances_deploy_predict_delete(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v2", "estimator")
    assert seen["status"] == "Completed" and seen["instance_count"] == 2
    assert seen["secondary"] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    # the SDK's default debugger and profiler settings are accepted and echoed as sent
    assert seen["debug_hook"] == {"S3OutputPath": f"s3://{sdk_runs['bucket']}/v2-output",
                                  "CollectionConfigurations": []}
    assert seen["profiler"] == {"S3OutputPath": f"s3://{sdk_runs['bucket']}/v2-output", "DisableProfiler": False}
    assert seen["metrics"] == ["train:loss"]
    assert seen["model_data"].startswith(f"s3://{sdk_runs['bucket']}/v2-output/")
    assert {"model.json", "hosts/algo-1.json", "hosts/algo-2.json"} <= set(seen["model_members"])
    # Estimator.attach rebuilds the estimator from DescribeTrainingJob and ListTags
    assert seen["attached"] == {"model_data": seen["model_data"], "instance_count": 2,
                                "tags": [{"Key": "team", "Value": "ml"}]}
    assert seen["answer"]["model"] == "v2-estimator-model"  # the endpoint serves the trained artifact
    assert seen["answer"]["body"] == "1,2,3" and seen["answer"]["content_type"] == "text/csv"
    assert seen["after_delete"].startswith("Could not find endpoint") or seen["after_delete"] == "Deleting"
    # logs=True streamed both hosts' output from CloudWatch Logs into the SDK's stdout
    output = sdk_runs["v2"]["output"]
    assert "algo-1" in output and "algo-2" in output and "epoch 2/2" in output


def test_v2_managed_spot_training_resumes_from_checkpoints(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v2", "spot")
    assert seen["status"] == "Completed" and seen["spot"] is True
    assert seen["secondary"].count("Interrupted") == 1 and seen["secondary"][-1] == "Completed"
    assert seen["resumed_from_epoch"] >= 1 and seen["epochs_completed"] == 4
    assert any(key.endswith("state.json") for key in seen["checkpoint_keys"])
    assert seen["training_time"] >= 1 and seen["billable"] <= seen["training_time"]
    assert "Managed Spot Training savings" in sdk_runs["v2"]["output"]


def test_v2_model_deploy_predict_delete(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v2", "model")
    assert seen["answer"]["model"] == "fixture-model" and seen["answer"]["body"] == "4,5,6"
    assert seen["after_delete"].startswith("Could not find endpoint") or seen["after_delete"] == "Deleting"


def test_v2_batch_transform(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v2", "transform")
    [(key, text)] = seen["outputs"].items()
    assert key.endswith("rows.csv.out")
    answers = [json.loads(line) for line in text.splitlines()]
    assert answers and all(a["model"] == "fixture-model" and a["accept"] == "application/json" for a in answers)
    assert "".join(a["body"] for a in answers).split() == ["1,2", "3,4", "5,6"]


def test_v2_multi_data_model(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v2", "mme")
    assert seen["listed"] == ["copied.tar.gz", "uploaded.tar.gz"]
    for target, answer in seen["answers"].items():
        assert answer["target_model"] == target and answer["body"] == "7,8" and answer["files"] == ["model.json"]
    assert seen["answers"]["copied.tar.gz"]["model"] != seen["answers"]["uploaded.tar.gz"]["model"]


def test_v2_processor_and_script_processor(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v2", "processing")
    assert list(seen["processor_outputs"].values()) == ["1,2\n3,4\n"]
    assert seen["script_entrypoint"] == ["python3", "/opt/ml/processing/input/code/report.py"]
    # an output without a destination lands in the default bucket, which the SDK created
    assert seen["script_report_uri"].startswith(f"s3://{sdk_runs['default_bucket']}/")
    assert seen["script_report"] == {"inputs": ["rows.csv"], "args": ["--flag"]}
    assert "script processed 1 files" in sdk_runs["v2"]["output"]


def test_v2_hyperparameter_tuner_and_best_training_job(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v2", "tuning")
    assert seen["statuses"] == ["Completed", "Completed"]
    assert seen["objectives"] == seen["tuned_values"]  # each job reported its tuned value as the objective
    assert seen["best"] == max(seen["tuned_values"], key=seen["tuned_values"].get)


def test_v3_model_trainer(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v3", "trainer")
    assert seen["status"] == "Completed"
    assert seen["secondary"] == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert seen["model_data"].startswith(f"s3://{sdk_runs['default_bucket']}/")  # the default output path
    assert "model.json" in seen["model_members"]


def test_v3_model_builder_deploys_and_invokes_the_trained_model(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v3", "builder")
    assert seen["variant"] == "AllTraffic"
    assert seen["answer"]["model"] == "v3-model" and seen["answer"]["body"] == "9,8,7"


def test_v3_role_check_evaluates_the_roles_real_policies(sdk_runs: dict[str, Any]) -> None:
    seen = flow(sdk_runs, "v3", "unprivileged")
    assert seen["refused"] is True and seen["error"] == "RoleValidationError"
    assert "ecr:GetAuthorizationToken" in seen["message"]


def test_the_sdks_create_their_default_bucket_and_upload_code_to_it(sdk_runs: dict[str, Any], s3_client: Any) -> None:
    listed = s3_client.list_objects_v2(Bucket=sdk_runs["default_bucket"])
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith("/input/code/report.py") for k in keys)  # ScriptProcessor's code upload
    assert any(k.endswith("/output/model.tar.gz") for k in keys)  # ModelTrainer's default output
