"""The SageMaker Python SDK v2's everyday flows, unchanged, against the emulator.

Run by tests/integration/test_sagemaker_sdk.py in its own process, configured only as a user
configures the SDK (AWS_ENDPOINT_URL, dummy credentials, a region, and a sagemaker config
file named by SAGEMAKER_USER_CONFIG_OVERRIDE with DefaultS3Bucket and TelemetryOptOut). The
flows are independent of each other, so they run at once in threads (the SDK mostly sleeps
between describes); each reports what it observed, or its error, in one JSON line:

    RESULT {"estimator": {...}, "spot": {...}, ...}

Usage: python -m tests.integration.sdk.v2_flows '<json: images, role, bucket, prefix, model_data>' [flow ...]
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.integration.sdk import offline_guard  # noqa: F401  (first: guard the network)

import boto3  # noqa: E402
import sagemaker  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from sagemaker.estimator import Estimator  # noqa: E402
from sagemaker.model import Model  # noqa: E402
from sagemaker.multidatamodel import MultiDataModel  # noqa: E402
from sagemaker.predictor import Predictor  # noqa: E402
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor, ScriptProcessor  # noqa: E402
from sagemaker.tuner import ContinuousParameter, HyperparameterTuner  # noqa: E402

INSTANCE = "ml.m5.large"
CSV = {"ContentType": "text/csv"}
Flow = Callable[[dict[str, Any]], dict[str, Any]]


def _s3() -> Any:
    return boto3.client("s3")


def _tar_members(uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        return sorted(tar.getnames())


def _keys(bucket: str, prefix: str) -> list[str]:
    listed = _s3().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    value = call()
    return value, round(time.monotonic() - start, 2)


def _endpoint_gone(session: sagemaker.Session, name: str) -> str:
    """The endpoint's status right after its deletion (Deleting), or the error once it is gone."""
    try:
        return str(session.sagemaker_client.describe_endpoint(EndpointName=name)["EndpointStatus"])
    except ClientError as err:
        return str(err.response["Error"]["Message"])


def _estimator(cfg: dict[str, Any], base: str, **kwargs: Any) -> Estimator:
    return Estimator(image_uri=cfg["images"]["training"], role=cfg["role"], instance_type=INSTANCE,
                     base_job_name=f"{cfg['prefix']}-{base}", sagemaker_session=sagemaker.Session(), **kwargs)


def estimator_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """fit(logs=True) on two instances, attach, deploy, predict, delete_model and delete_endpoint."""
    estimator = _estimator(cfg, "est", instance_count=2, output_path=f"s3://{cfg['bucket']}/v2-output",
                           hyperparameters={"epochs": 2, "model_name": "v2-estimator-model"},
                           metric_definitions=[{"Name": "train:loss", "Regex": "train_loss=([0-9.]+)"}],
                           tags=[{"Key": "team", "Value": "ml"}])
    _, fit_seconds = _timed(lambda: estimator.fit({"train": f"s3://{cfg['bucket']}/train/"}, logs=True))
    job = estimator.latest_training_job.describe()
    attached = Estimator.attach(job["TrainingJobName"], sagemaker_session=estimator.sagemaker_session)
    name = f"{job['TrainingJobName']}-ep"
    predictor, deploy_seconds = _timed(lambda: estimator.deploy(
        initial_instance_count=1, instance_type=INSTANCE, image_uri=cfg["images"]["serving"], endpoint_name=name))
    answer = json.loads(predictor.predict(b"1,2,3", initial_args=CSV))
    predictor.delete_model()
    predictor.delete_endpoint()
    return {
        "fit_seconds": fit_seconds, "deploy_seconds": deploy_seconds,
        "status": job["TrainingJobStatus"], "instance_count": job["ResourceConfig"]["InstanceCount"],
        "debug_hook": job.get("DebugHookConfig"), "profiler": job.get("ProfilerConfig"),
        "secondary": [t["Status"] for t in job["SecondaryStatusTransitions"]],
        "metrics": [m["MetricName"] for m in job.get("FinalMetricDataList", [])],
        "model_data": estimator.model_data, "model_members": _tar_members(estimator.model_data),
        "attached": {"model_data": attached.model_data, "instance_count": attached.instance_count,
                     "tags": attached.tags},
        "answer": answer, "after_delete": _endpoint_gone(predictor.sagemaker_session, name),
    }


def spot_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """Managed spot training with checkpoints, interrupted once (emulator knob) and resumed."""
    checkpoints = f"s3://{cfg['bucket']}/checkpoints/{cfg['prefix']}"
    estimator = _estimator(
        cfg, "spot", instance_count=1, use_spot_instances=True, max_run=600, max_wait=1200,
        checkpoint_s3_uri=checkpoints, output_path=f"s3://{cfg['bucket']}/v2-spot",
        hyperparameters={"epochs": 4, "epoch_seconds": 0.4, "checkpoint": "1", "model_name": "spot"},
        tags=[{"Key": "smemu:spot-interruptions", "Value": "1.2"}])
    _, fit_seconds = _timed(lambda: estimator.fit({"train": f"s3://{cfg['bucket']}/train/"}, logs=True))
    job = estimator.latest_training_job.describe()
    report = _model_json(estimator.model_data)
    return {
        "fit_seconds": fit_seconds, "status": job["TrainingJobStatus"],
        "spot": job.get("EnableManagedSpotTraining"), "billable": job.get("BillableTimeInSeconds"),
        "training_time": job.get("TrainingTimeInSeconds"),
        "secondary": [t["Status"] for t in job["SecondaryStatusTransitions"]],
        "checkpoint_keys": _keys(cfg["bucket"], f"checkpoints/{cfg['prefix']}"),
        "resumed_from_epoch": report.get("resumed_from_epoch"), "epochs_completed": report.get("epochs_completed"),
    }


def _model_json(uri: str) -> dict[str, Any]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        member = tar.extractfile("model.json")
        return json.loads(member.read()) if member else {}


def model_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """Model.deploy with a predictor class, predict, delete_endpoint."""
    session = sagemaker.Session()
    name = f"{cfg['prefix']}-model"
    model = Model(image_uri=cfg["images"]["serving"], model_data=cfg["model_data"], role=cfg["role"], name=name,
                  predictor_cls=Predictor, sagemaker_session=session)
    predictor, deploy_seconds = _timed(lambda: model.deploy(
        initial_instance_count=1, instance_type=INSTANCE, endpoint_name=f"{name}-ep"))
    answer = json.loads(predictor.predict(b"4,5,6", initial_args=CSV))
    predictor.delete_endpoint()
    return {"deploy_seconds": deploy_seconds, "answer": answer, "after_delete": _endpoint_gone(session, f"{name}-ep")}


def transform_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """model.transformer().transform() of a CSV prefix, one line per record, JSON answers."""
    model = Model(image_uri=cfg["images"]["serving"], model_data=cfg["model_data"], role=cfg["role"],
                  name=f"{cfg['prefix']}-batch", sagemaker_session=sagemaker.Session())
    output = f"s3://{cfg['bucket']}/v2-transform/{cfg['prefix']}"
    transformer = model.transformer(instance_count=1, instance_type=INSTANCE, output_path=output,
                                    accept="application/json", assemble_with="Line", strategy="MultiRecord")
    _, transform_seconds = _timed(lambda: transformer.transform(
        f"s3://{cfg['bucket']}/batch/", content_type="text/csv", split_type="Line", wait=True, logs=True))
    outputs = {key: _s3().get_object(Bucket=cfg["bucket"], Key=key)["Body"].read().decode()
               for key in _keys(cfg["bucket"], f"v2-transform/{cfg['prefix']}")}
    return {"transform_seconds": transform_seconds, "outputs": outputs}


def mme_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """MultiDataModel: deploy, add_model from S3 (copy) and from a local file, list_models, predict."""
    session = sagemaker.Session()
    name = f"{cfg['prefix']}-mme"
    prefix = f"s3://{cfg['bucket']}/mme/{cfg['prefix']}/"
    mme = MultiDataModel(name=name, model_data_prefix=prefix, image_uri=cfg["images"]["multi_model"],
                         role=cfg["role"], sagemaker_session=session, predictor_cls=Predictor)
    predictor, deploy_seconds = _timed(lambda: mme.deploy(initial_instance_count=1, instance_type=INSTANCE,
                                                          endpoint_name=f"{name}-ep"))
    mme.add_model(model_data_source=cfg["model_data"], model_data_path="copied.tar.gz")
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / "local.tar.gz"
        local.write_bytes(_model_archive({"model.json": json.dumps({"name": "uploaded"}).encode()}))
        mme.add_model(model_data_source=str(local), model_data_path="uploaded.tar.gz")
    listed = sorted(mme.list_models())
    answers = {target: json.loads(predictor.predict(b"7,8", initial_args=CSV, target_model=target))
               for target in ("copied.tar.gz", "uploaded.tar.gz")}
    predictor.delete_endpoint()
    return {"deploy_seconds": deploy_seconds, "listed": listed, "answers": answers}


def _model_archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


SCRIPT = """\
import json, pathlib, sys
rows = sorted(p.name for p in pathlib.Path('/opt/ml/processing/input/data').rglob('*') if p.is_file())
out = pathlib.Path('/opt/ml/processing/output/report')
out.mkdir(parents=True, exist_ok=True)
(out / 'report.json').write_text(json.dumps({'inputs': rows, 'args': sys.argv[1:]}))
print('script processed', len(rows), 'files', flush=True)
"""


def processing_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """Processor.run with the image's entrypoint, then ScriptProcessor.run with a local script."""
    session = sagemaker.Session()
    source = ProcessingInput(source=f"s3://{cfg['bucket']}/train/", destination="/opt/ml/processing/input/data",
                             input_name="data")
    destination = f"s3://{cfg['bucket']}/v2-processing/{cfg['prefix']}"
    processor = Processor(role=cfg["role"], image_uri=cfg["images"]["processing"], instance_count=1,
                          instance_type=INSTANCE, base_job_name=f"{cfg['prefix']}-proc", sagemaker_session=session)
    _, run_seconds = _timed(lambda: processor.run(
        inputs=[source], arguments=["--mode", "upper"], wait=True, logs=True,
        outputs=[ProcessingOutput(source="/opt/ml/processing/output/result", destination=destination,
                                  output_name="result")]))
    script = ScriptProcessor(role=cfg["role"], image_uri=cfg["images"]["processing"], command=["python3"],
                             instance_count=1, instance_type=INSTANCE, base_job_name=f"{cfg['prefix']}-script",
                             sagemaker_session=session)
    with tempfile.TemporaryDirectory() as folder:
        code = Path(folder) / "report.py"
        code.write_text(SCRIPT)
        script.run(code=str(code), inputs=[source], arguments=["--flag"], wait=True, logs=True,
                   outputs=[ProcessingOutput(source="/opt/ml/processing/output/report", output_name="report")])
    job = script.latest_job.describe()
    report_uri = job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    bucket, key = report_uri[len("s3://"):].split("/", 1)
    report = json.loads(_s3().get_object(Bucket=bucket, Key=f"{key.rstrip('/')}/report.json")["Body"].read())
    return {"run_seconds": run_seconds,
            "processor_outputs": {k: _s3().get_object(Bucket=cfg["bucket"], Key=k)["Body"].read().decode()
                                  for k in _keys(cfg["bucket"], f"v2-processing/{cfg['prefix']}")
                                  if not k.endswith("manifest.json")},
            "script_entrypoint": job["AppSpecification"].get("ContainerEntrypoint"),
            "script_report_uri": report_uri, "script_report": report}


def tuning_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """HyperparameterTuner.fit over two real training jobs, then best_training_job()."""
    estimator = _estimator(cfg, "hpo", instance_count=1, output_path=f"s3://{cfg['bucket']}/v2-tuning",
                           hyperparameters={"epochs": 1})
    tuner = HyperparameterTuner(
        estimator, objective_metric_name="validation:accuracy", objective_type="Maximize",
        hyperparameter_ranges={"validation_accuracy": ContinuousParameter(0.1, 0.9)},
        metric_definitions=[{"Name": "validation:accuracy", "Regex": "validation:accuracy=([0-9.]+)"}],
        max_jobs=2, max_parallel_jobs=2, strategy="Random", base_tuning_job_name=f"{cfg['prefix'][:20]}-hpo")
    _, fit_seconds = _timed(lambda: tuner.fit({"train": f"s3://{cfg['bucket']}/train/"}, include_cls_metadata=False))
    best = tuner.best_training_job()
    client = estimator.sagemaker_session.sagemaker_client
    children = client.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuner.latest_tuning_job.name)["TrainingJobSummaries"]
    values = {c["TrainingJobName"]: float(c["TunedHyperParameters"]["validation_accuracy"]) for c in children}
    objectives = {c["TrainingJobName"]: c.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value")
                  for c in children}
    return {"fit_seconds": fit_seconds, "best": best, "tuned_values": values, "objectives": objectives,
            "statuses": sorted(c["TrainingJobStatus"] for c in children)}


def session_flow(cfg: dict[str, Any]) -> dict[str, Any]:
    """Side calls a notebook makes: the default bucket (created if missing) and the account from STS."""
    session = sagemaker.Session()
    return {"default_bucket": session.default_bucket(), "region": session.boto_region_name,
            "account": session.boto_session.client("sts").get_caller_identity()["Account"]}


FLOWS: dict[str, Flow] = {"session": session_flow, "estimator": estimator_flow, "spot": spot_flow,
                          "model": model_flow, "transform": transform_flow, "mme": mme_flow,
                          "processing": processing_flow, "tuning": tuning_flow}


def _run(name: str, cfg: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"ok": True, **FLOWS[name](cfg)}
    except Exception:  # reported per flow: one broken flow must not hide the others' results
        return {"ok": False, "error": traceback.format_exc()}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    names = sys.argv[2:] or list(FLOWS)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = {name: pool.submit(_run, name, cfg) for name in names}
        results = {name: future.result() for name, future in futures.items()}
    print("\nRESULT " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
