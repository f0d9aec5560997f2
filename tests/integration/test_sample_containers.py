"""The reference containers honour the SageMaker container contract on their own.

No emulator here: each test plays the platform by hand with docker-py (writes /opt/ml, runs
`train` / `serve` / the processing entrypoint, talks HTTP to a port published on 127.0.0.1
only), so that a failure in an emulator test can be blamed on the emulator, not on the sample.
Containers carry the label smemu.kind=test and are removed in `finally`; readiness is
polled against a deadline, never waited for with a fixed sleep.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.integration.sample_images import (
    TEST_LABELS,
    build_sample_image,
    ping,
    published_port,
    request,
    running,
    wait_healthy,
    wait_until,
)


@pytest.fixture(scope="module")
def docker_client() -> docker.DockerClient:
    """The local engine; the module is skipped, with the fix named, when none answers."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers ({exc}); run scripts/install-docker")
    return client


@pytest.fixture(scope="module")
def images(docker_client: docker.DockerClient) -> Callable[[str], str]:
    """Builds (once per content) and returns the tag of a sample image."""
    return lambda name: build_sample_image(name, client=docker_client)


def make_opt_ml(root: Path, hyperparameters: dict[str, str] | None = None,
                channels: dict[str, dict[str, bytes]] | None = None,
                input_modes: dict[str, str] | None = None,
                resource_config: dict[str, Any] | None = None) -> Path:
    """Write the /opt/ml tree the platform prepares before `train` starts."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    for sub in ("model", "output/data", "checkpoints"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    channels = channels or {}
    modes = {name: "File" for name in channels} | (input_modes or {})
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters or {}))
    (config / "inputdataconfig.json").write_text(json.dumps({
        name: {"TrainingInputMode": mode, "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
        for name, mode in modes.items()}))
    (config / "resourceconfig.json").write_text(json.dumps(resource_config or {
        "current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    for name, files in channels.items():
        for rel, data in files.items():
            path = root / "input" / "data" / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return root


def trainer(client: docker.DockerClient, image: str, opt_ml: Path, **kwargs: Any) -> Any:
    """`train` running detached on algo-1 with no network and /opt/ml bound in."""
    kwargs.setdefault("network_mode", "none")
    kwargs.setdefault("hostname", "algo-1")
    return running(client, image, ["train"], volumes={str(opt_ml): {"bind": "/opt/ml", "mode": "rw"}}, **kwargs)


def train(client: docker.DockerClient, image: str, opt_ml: Path, timeout: float = 60,
          **kwargs: Any) -> tuple[int, str, str]:
    """Run `train` to completion with /opt/ml bound in; return exit code, stdout and stderr.

    The two streams come apart because Docker copies them separately: lines of one keep their
    order, but how they interleave with the other's varies from run to run.
    """
    with trainer(client, image, opt_ml, **kwargs) as container:
        code = container.wait(timeout=timeout)["StatusCode"]
        return code, container.logs(stderr=False).decode(), container.logs(stdout=False).decode()


def model_json(opt_ml: Path) -> dict[str, Any]:
    return json.loads((opt_ml / "model" / "model.json").read_text())


def serve(client: docker.DockerClient, image: str, model_dir: Path | None = None,
          **kwargs: Any) -> Any:
    """Start `serve` with port 8080 published on 127.0.0.1 only."""
    volumes = {str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}} if model_dir else {}
    return running(client, image, ["serve"], ports={"8080/tcp": ("127.0.0.1", None)}, volumes=volumes, **kwargs)


# --- training ------------------------------------------------------------------------------------

def test_trainer_reports_config_channels_env_and_metrics(docker_client, images, tmp_path) -> None:
    train_files = {"a.csv": b"1,2\n3,4\n", "sub/b.csv": b"5,6\n"}
    opt_ml = make_opt_ml(tmp_path / "ml", {"epochs": "2", "model_name": "m-1", "train_loss": "0.25"},
                         {"train": train_files, "validation": {"v.csv": b"7,8\n"}})
    code, logs, stderr = train(docker_client, images("training"), opt_ml, environment={
        "TRAINING_JOB_NAME": "job-1", "MY_SETTING": "on", "AWS_SECRET_ACCESS_KEY": "s"})
    assert code == 0, logs + stderr
    assert "train_loss=0.5;" in logs and logs.rstrip().count("train_loss=") == 2
    assert logs.splitlines()[-2:] == ["validation:accuracy=0.9", "training complete"]
    assert stderr == "sample trainer: this line goes to stderr\n"
    report = model_json(opt_ml)
    assert report["name"] == "m-1" and report["hostname"] == "algo-1" and report["current_host"] == "algo-1"
    assert report["argv"] == ["/opt/program/train"] and report["epochs_completed"] == 2  # `train` found on PATH
    assert report["hyperparameters"] == {"epochs": "2", "model_name": "m-1", "train_loss": "0.25"}
    train_channel = report["channels"]["train"]
    assert [f["path"] for f in train_channel["files"]] == ["a.csv", "sub/b.csv"]
    assert train_channel["files"][0]["sha256"] == hashlib.sha256(train_files["a.csv"]).hexdigest()
    assert (train_channel["bytes"], train_channel["lines"], train_channel["mode"]) == (12, 3, "File")
    assert report["channels"]["validation"]["file_count"] == 1
    assert report["env"]["TRAINING_JOB_NAME"] == "job-1" and report["env"]["MY_SETTING"] == "on"
    assert report["env"]["AWS_SECRET_ACCESS_KEY"] == "***"
    assert report["resource_config"]["hosts"] == ["algo-1"]
    assert (opt_ml / "model" / "hosts" / "algo-1.json").is_file()
    assert "channel train: mode=File bytes=12 lines=3" in (opt_ml / "output" / "data" / "summary.txt").read_text()


@pytest.mark.parametrize(("hyperparameters", "exit_code", "failure"), [
    ({"fail": "1", "failure_message": "bad data in row 7"}, 1, "bad data in row 7"),
    ({"exit_code": "7"}, 7, None),
])
def test_trainer_failure_switches(docker_client, images, tmp_path, hyperparameters, exit_code, failure) -> None:
    opt_ml = make_opt_ml(tmp_path / "ml", hyperparameters)
    code, logs, _ = train(docker_client, images("training"), opt_ml)
    assert code == exit_code, logs
    failure_file = opt_ml / "output" / "failure"
    assert (failure_file.read_text() if failure_file.exists() else None) == failure
    assert not (opt_ml / "model" / "model.json").exists()


def test_trainer_reads_pipe_mode_fifos(docker_client, images, tmp_path) -> None:
    opt_ml = make_opt_ml(tmp_path / "ml", {"pipe_epochs": "2"}, input_modes={"train": "Pipe"})
    data_dir = opt_ml / "input" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    payloads = [b"a\nb\nc\n", b"dd\n"]

    def feed() -> None:  # the platform side: open each FIFO only after the previous one closed
        for epoch, payload in enumerate(payloads):
            fifo = data_dir / f"train_{epoch}"
            os.mkfifo(fifo)
            with fifo.open("wb") as pipe:  # blocks until the trainer opens it for reading
                pipe.write(payload)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    code, logs, _ = train(docker_client, images("training"), opt_ml)
    feeder.join(timeout=10)
    assert code == 0, logs
    channel = model_json(opt_ml)["channels"]["train"]
    assert channel["mode"] == "Pipe"
    assert [(e["path"], e["size"], e["lines"], e["is_fifo"]) for e in channel["epochs"]] == [
        ("train_0", 6, 3, True), ("train_1", 3, 1, True)]
    assert channel["epochs"][1]["sha256"] == hashlib.sha256(b"dd\n").hexdigest()


@pytest.mark.parametrize("ignore", [False, True])
def test_trainer_on_sigterm_saves_partial_model_unless_ignoring(docker_client, images, tmp_path, ignore) -> None:
    opt_ml = make_opt_ml(tmp_path / "ml", {"sleep_seconds": "60", "ignore_sigterm": "1" if ignore else "0"})
    with trainer(docker_client, images("training"), opt_ml) as container:
        wait_until(lambda: b"heartbeat 1" in container.logs(), 30, "the first heartbeat")
        started = time.monotonic()
        container.stop(timeout=2)  # SIGTERM, then SIGKILL after 2 s
        assert container.wait(timeout=10)["StatusCode"] == (137 if ignore else 0)
        assert (time.monotonic() - started >= 2) == ignore
    if ignore:
        assert not (opt_ml / "model" / "model.json").exists()
    else:
        report = model_json(opt_ml)
        assert report["terminated"] is True and "channels" not in report


def test_trainer_allocation_past_memory_limit_is_oom_killed(docker_client, images, tmp_path) -> None:
    opt_ml = make_opt_ml(tmp_path / "ml", {"allocate_mb": "512"})
    with trainer(docker_client, images("training"), opt_ml, mem_limit="64m", memswap_limit="64m") as container:
        assert container.wait(timeout=60)["StatusCode"] == 137
        container.reload()
        assert container.attrs["State"]["OOMKilled"] is True


def test_trainer_resumes_from_checkpoint(docker_client, images, tmp_path) -> None:
    opt_ml = make_opt_ml(tmp_path / "ml", {"checkpoint": "1", "epochs": "2"})
    code, _, _ = train(docker_client, images("training"), opt_ml)
    assert code == 0
    assert json.loads((opt_ml / "checkpoints" / "state.json").read_text())["epoch"] == 2
    (opt_ml / "input" / "config" / "hyperparameters.json").write_text(json.dumps({"checkpoint": "1", "epochs": "5"}))
    code, logs, _ = train(docker_client, images("training"), opt_ml)
    assert code == 0, logs
    assert "resuming from checkpoint at epoch 2" in logs and "epoch 3/5" in logs and "epoch 2/5" not in logs
    report = model_json(opt_ml)
    assert (report["resumed_from_epoch"], report["epochs_completed"]) == (2, 5)
    assert json.loads((opt_ml / "checkpoints" / "state.json").read_text())["epoch"] == 5


def test_trainers_on_two_hosts_reach_each_other(docker_client, images, tmp_path) -> None:
    image, hosts = images("training"), ["algo-1", "algo-2"]
    network = docker_client.networks.create(f"smemu-test-{uuid.uuid4().hex[:8]}", labels=TEST_LABELS)
    containers = []
    try:
        for host in hosts:
            opt_ml = make_opt_ml(tmp_path / host, {"peer_check": "1", "peer_timeout_seconds": "30"},
                                 resource_config={"current_host": host, "hosts": hosts})
            containers.append(docker_client.containers.run(
                image, ["train"], detach=True, labels=TEST_LABELS, hostname=host, network=network.name,
                networking_config={network.name: docker_client.api.create_endpoint_config(aliases=[host])},
                volumes={str(opt_ml): {"bind": "/opt/ml", "mode": "rw"}}))
        for container in containers:
            assert container.wait(timeout=60)["StatusCode"] == 0, container.logs().decode()
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
    for host, peer in zip(hosts, reversed(hosts)):
        check = model_json(tmp_path / host)["peer_check"]
        assert check["ok"] is True and check["answered"] == {peer: peer} and check["connected_from"] == [peer]


# --- serving -------------------------------------------------------------------------------------

def test_server_pings_and_echoes_invocations(docker_client, images, tmp_path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.json").write_text(json.dumps({"name": "echo-model"}))
    (model_dir / "weights.bin").write_bytes(b"\0" * 10)
    with serve(docker_client, images("serving"), model_dir, hostname="model-host",
               environment={"SMEMU_VARIANT_NAME": "AllTraffic"}) as container:
        port = published_port(container)
        wait_healthy(port)
        status, headers, body = request(port, "POST", "/invocations", b'{"x": 1}', {
            "Content-Type": "application/json", "Accept": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "trace=abc"})
        assert status == 200 and headers["content-type"] == "application/json"
        assert headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc"
        echo = json.loads(body)
        assert echo["model"] == "echo-model" and echo["model_files"] == ["model.json", "weights.bin"]
        assert (echo["variant"], echo["host"], echo["body"]) == ("AllTraffic", "model-host", '{"x": 1}')
        assert (echo["content_type"], echo["accept"], echo["custom_attributes"]) == (
            "application/json", "application/json", "trace=abc")

        status, _, body = request(port, "POST", "/invocations", b'{"status": 500}')
        assert status == 500 and json.loads(body)["status"] == 500
        started = time.monotonic()
        assert request(port, "POST", "/invocations", b'{"sleep": 0.3}')[0] == 200
        assert time.monotonic() - started >= 0.3

        # keep-alive and one-send responses: 50 invocations on one connection, no 40 ms Nagle stall
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies = []
        for i in range(50):
            started = time.perf_counter()
            status, _, body = request(port, "POST", "/invocations", f"row {i}".encode(), conn=conn)
            latencies.append(time.perf_counter() - started)
            assert status == 200 and json.loads(body)["body"] == f"row {i}"
        conn.close()
        assert statistics.median(latencies) < 0.015, latencies


def test_server_streams_chunked_response(docker_client, images) -> None:
    with serve(docker_client, images("serving")) as container:
        port = published_port(container)
        wait_healthy(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/invocations-response-stream", body=b"abcdefghi", headers={"Accept": "text/plain"})
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Transfer-Encoding") == "chunked"
        assert response.getheader("Content-Type") == "text/plain"
        chunks = []
        while chunk := response.read1():  # read1 returns at most one chunk's bytes
            chunks.append(chunk)
        conn.close()
        assert b"".join(chunks) == b"abcdefghi" and len(chunks) == 3


def test_server_transforms_for_pipelines_on_bind_port(docker_client, images) -> None:
    with running(docker_client, images("serving"), ["serve"], ports={"9090/tcp": ("127.0.0.1", None)},
                 environment={"SMEMU_SAMPLE_TRANSFORM": "upper", "SAGEMAKER_BIND_TO_PORT": "9090"}) as container:
        port = published_port(container, "9090/tcp")
        wait_healthy(port)
        status, headers, body = request(port, "POST", "/invocations", b"a,b\n", {"Accept": "text/csv"})
        assert (status, headers["content-type"], body) == (200, "text/csv", b"A,B\n")
    with serve(docker_client, images("serving"), environment={"SMEMU_SAMPLE_TRANSFORM": "reverse"}) as container:
        port = published_port(container)
        wait_healthy(port)
        status, headers, body = request(port, "POST", "/invocations", b"abc")
        assert (status, headers["content-type"], body) == (200, "text/plain", b"cba")


def test_server_request_and_environment_switches(docker_client, images) -> None:
    env = {"SMEMU_SAMPLE_STREAM": "1", "SMEMU_SAMPLE_LOAD_SECONDS": "0.5",
           "SMEMU_SAMPLE_EXECUTION_PARAMETERS": '{"MaxConcurrentTransforms": 2}'}
    with serve(docker_client, images("serving"), environment=env) as container:
        port = published_port(container)
        wait_until(lambda: ping(port) is not None, 30, "the server to answer")
        assert ping(port) == 503  # still "loading" the model
        wait_healthy(port)
        assert json.loads(request(port, "GET", "/execution-parameters")[2]) == {"MaxConcurrentTransforms": 2}
        status, headers, body = request(port, "POST", "/invocations", b"streamed")
        assert (status, headers["transfer-encoding"], body) == (200, "chunked", b"streamed")
        status, _, body = request(port, "POST", "/invocations", b'{"response_bytes": 70000}')
        assert status == 200 and body == b"x" * 70000
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            request(port, "POST", "/invocations", b'{"exit": 5}')
        assert container.wait(timeout=10)["StatusCode"] == 5
    with serve(docker_client, images("serving"), environment={"MODEL_SETTING": "v"}) as container:
        port = published_port(container)
        wait_healthy(port)
        assert "env" not in json.loads(request(port, "POST", "/invocations", b"{}")[2])
        echo = json.loads(request(port, "POST", "/invocations", b'{"env": true}')[2])
        assert echo["env"]["MODEL_SETTING"] == "v"
        assert request(port, "GET", "/execution-parameters")[0] == 404


def test_server_health_switches(docker_client, images) -> None:
    with serve(docker_client, images("serving"), environment={"SMEMU_SAMPLE_PING_FAIL": "1"}) as container:
        port = published_port(container)
        wait_until(lambda: ping(port) is not None, 30, "the server to answer")
        assert [ping(port) for _ in range(10)] == [503] * 10  # never becomes healthy
        assert request(port, "POST", "/invocations", b"still serves")[0] == 200
    with serve(docker_client, images("serving"), environment={"SMEMU_SAMPLE_EXIT_ON_START": "1"}) as container:
        assert container.wait(timeout=30)["StatusCode"] == 3
        assert b"exiting with code 3" in container.logs()


# --- multi-model ---------------------------------------------------------------------------------

def test_multi_model_server_loads_invokes_and_unloads(docker_client, images, tmp_path) -> None:
    models = tmp_path / "models"
    for name in ("m1", "m2"):
        (models / name / "model").mkdir(parents=True)
        (models / name / "model" / f"{name}.json").write_text("{}")
    with running(docker_client, images("multi_model"), ["serve"], ports={"8080/tcp": ("127.0.0.1", None)},
                 environment={"SMEMU_SAMPLE_MAX_MODELS": "1", "SAGEMAKER_MULTI_MODEL": "true"},
                 volumes={str(models): {"bind": "/opt/ml/models", "mode": "ro"}}) as container:
        port = published_port(container)
        wait_healthy(port)

        def load(name: str) -> int:
            body = json.dumps({"model_name": name, "url": f"/opt/ml/models/{name}/model"}).encode()
            return request(port, "POST", "/models", body, {"Content-Type": "application/json"})[0]

        assert load("m1") == 200
        assert load("m1") == 409
        assert load("m2") == 507
        assert json.loads(request(port, "GET", "/models")[2]) == {
            "models": [{"modelName": "m1", "modelUrl": "/opt/ml/models/m1/model"}]}
        assert json.loads(request(port, "GET", "/models/m1")[2])["files"] == ["m1.json"]
        assert request(port, "GET", "/models/m2")[0] == 404

        status, headers, body = request(port, "POST", "/models/m1/invoke", b"hello", {
            "X-Amzn-SageMaker-Target-Model": "m1.tar.gz", "X-Amzn-SageMaker-Custom-Attributes": "k=v"})
        answer = json.loads(body)
        assert status == 200 and headers["x-amzn-sagemaker-custom-attributes"] == "k=v"
        assert (answer["model"], answer["files"], answer["body"]) == ("m1", ["m1.json"], "hello")
        assert (answer["target_model"], answer["invocation_count"], answer["load_count"]) == ("m1.tar.gz", 1, 1)
        assert request(port, "POST", "/models/m2/invoke", b"x")[0] == 404

        assert request(port, "DELETE", "/models/m1")[0] == 200
        assert request(port, "DELETE", "/models/m1")[0] == 404
        assert load("m2") == 200 and load("m1") == 507  # the slot freed by the unload is reusable
        assert json.loads(request(port, "GET", "/models")[2])["models"][0]["modelName"] == "m2"


# --- processing ----------------------------------------------------------------------------------

def test_processor_copies_inputs_to_outputs_per_job_config(docker_client, images, tmp_path) -> None:
    ml = tmp_path / "ml"
    raw = ml / "processing" / "raw"
    (raw / "part").mkdir(parents=True)
    (raw / "part" / "a.txt").write_bytes(b"hello\nworld\n")
    (ml / "config").mkdir()
    (ml / "config" / "processingjobconfig.json").write_text(json.dumps({
        "ProcessingJobName": "proc-1",
        "ProcessingInputs": [{"InputName": "raw", "S3Input": {"LocalPath": "/opt/ml/processing/raw"}}],
        "ProcessingOutputConfig": {"Outputs": [
            {"OutputName": "out", "S3Output": {"LocalPath": "/opt/ml/processing/out"}}]}}))
    with running(docker_client, images("processing"), ["--mode", "upper", "extra-arg"], network_mode="none",
                 volumes={str(ml): {"bind": "/opt/ml", "mode": "rw"}}) as container:
        assert container.wait(timeout=60)["StatusCode"] == 0, container.logs().decode()
    out = ml / "processing" / "out"
    assert (out / "raw" / "part" / "a.txt").read_bytes() == b"HELLO\nWORLD\n"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["job_name"] == "proc-1" and manifest["argv"][1:] == ["--mode", "upper", "extra-arg"]
    assert manifest["inputs"]["raw"]["files"] == [{"path": "part/a.txt", "size": 12, "lines": 2,
                                                   "sha256": hashlib.sha256(b"hello\nworld\n").hexdigest()}]
    assert (ml / "output" / "message").read_text() == "processed 1 files from 1 inputs into 1 outputs"


def test_processor_fails_with_exit_message(docker_client, images, tmp_path) -> None:
    ml = tmp_path / "ml"
    (ml / "processing" / "input" / "data").mkdir(parents=True)
    with running(docker_client, images("processing"), ["--fail", "--message", "no rows"], network_mode="none",
                 volumes={str(ml): {"bind": "/opt/ml", "mode": "rw"}}) as container:
        assert container.wait(timeout=60)["StatusCode"] == 1
    assert (ml / "output" / "message").read_text() == "no rows"
    assert json.loads((ml / "processing" / "output" / "manifest.json").read_text())["inputs"] == {
        "data": {"path": "/opt/ml/processing/input/data", "exists": True, "files": []}}
