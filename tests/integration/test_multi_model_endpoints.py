"""Multi-model endpoints through boto3, with the reference MME container (sample_containers/multi_model).

The module runs its own emulator with a cache budget of 10 models per instance
(``mme_cache_models``, SMEMU_MME_CACHE_MODELS) and the short deadlines of
``TUNED_DEADLINES`` (a 2 s wait before ModelNotReadyException), uploads 50 small models
once, and reuses one endpoint per test for many assertions. The container reports, for each
invocation, which model answered, its files, how often it was loaded and invoked, and the
headers it received; the emulator's view (``GET /_smemu/endpoints/<name>/models``) reports
what the platform loaded, evicted and reloaded. Every endpoint is deleted and the engine
checked for leftover containers. Both scenarios run on both runtime backends: on the cluster,
each model's files reach the pod as they are extracted and leave it as they are removed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator.cli import main as smemu
from emulator.config import Settings, load_settings
from emulator.hosting.multi_model import model_name
from emulator.server import EmulatorServer
from tests.conftest import create_sagemaker_role, free_port, make_client, unique_name
from tests.integration.runtimes import RUNTIMES, Runtime
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import (
    TUNED_DEADLINES,
    Endpoints,
    docker_client,
    poll,
)

pytest_plugins = ["tests.integration.kube_cluster"]

MODELS = 50
BUDGET = 10
_S3_VARIABLES = ("SMEMU_S3_ENDPOINT", "SMEMU_S3_ACCESS_KEY", "SMEMU_S3_SECRET_KEY", "SMEMU_BASE_IMAGE")


def _archive(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def target(i: int) -> str:
    return f"m{i:02d}.tar.gz"


class Emulator:
    """An emulator of this module's own (cache budget 10, short deadlines), with clients."""

    def __init__(self, home: Path, base: Settings | None = None) -> None:
        base = base or load_settings({k: v for k, v in os.environ.items() if k in _S3_VARIABLES})
        self.settings: Settings = dataclasses.replace(
            base, home=home, port=free_port(), host="127.0.0.1", mme_cache_models=BUDGET, **TUNED_DEADLINES
        )
        self.server = EmulatorServer(self.settings).start()
        self.url = f"http://127.0.0.1:{self.settings.port}"
        self.sagemaker = make_client("sagemaker", self.url)
        self.runtime = make_client("sagemaker-runtime", self.url, read_timeout=30, max_pool_connections=32)
        self.s3 = make_client("s3", self.url) if not self.settings.s3_endpoint else boto3_s3(self.settings)
        self.cloudwatch = make_client("cloudwatch", self.url)
        self.no_retry = boto3.session.Session().client(
            "sagemaker-runtime",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
        )
        self.role_arn = create_sagemaker_role(self.url)

    def view(self, endpoint: str) -> dict[str, Any]:
        """The emulator's read-only view of what the endpoint loaded."""
        with urllib.request.urlopen(f"{self.url}/_smemu/endpoints/{endpoint}/models", timeout=10) as answer:
            return dict(json.loads(answer.read()))


def boto3_s3(settings: Settings) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
    )


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    return docker_client()


@pytest.fixture(scope="module")
def mme_image(engine: docker.DockerClient) -> str:
    return build_sample_image("multi_model", client=engine)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Emulator]:
    made = Emulator(tmp_path_factory.mktemp("mme-home"))
    try:
        yield made
    finally:
        made.server.stop()


@dataclasses.dataclass
class OnRuntime:
    """This module's emulator on one runtime backend, and the prefix of the models uploaded to it once."""

    runtime: Runtime
    emulator: Emulator
    prefix: str


@pytest.fixture(scope="module", params=RUNTIMES)
def on_runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnRuntime]:
    """This module's emulator on each runtime backend: Docker's is ``emulator``; the cluster's is made here."""
    if request.param == "docker":
        made = request.getfixturevalue("emulator")
        yield OnRuntime(Runtime("docker", made.settings, made.server), made, upload_models(made))
        return
    made = Emulator(tmp_path_factory.mktemp("mme-kube-home"), base=request.getfixturevalue("kube_settings"))
    try:
        yield OnRuntime(Runtime("kubernetes", made.settings, made.server), made, upload_models(made))
    finally:
        made.server.stop()


def upload_models(emulator: Emulator) -> str:
    """50 models m00..m49 (each with a file named after it) and a few special ones; their prefix."""
    bucket = unique_name("mme")
    emulator.s3.create_bucket(Bucket=bucket)
    for i in range(MODELS):
        body = _archive({"model.json": json.dumps({"name": target(i)}), f"m{i:02d}.txt": str(i)})
        emulator.s3.put_object(Bucket=bucket, Key=f"mme/{target(i)}", Body=body)
    specials = {
        "slow.tar.gz": {"load-seconds": "1.0"},
        "veryslow.tar.gz": {"load-seconds": "3.5"},
        "refuse500.tar.gz": {"load-status": "500"},
        "refuse507.tar.gz": {"load-status": "507"},
    }
    for key, files in specials.items():
        emulator.s3.put_object(Bucket=bucket, Key=f"mme/{key}", Body=_archive({"model.json": "{}", **files}))
    return f"s3://{bucket}/mme/"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def _models_in_container(runtime: Runtime, endpoint: str) -> set[str]:
    (container,) = runtime.containers(endpoint)
    address = runtime.backend.published_port(container.id, 8080)
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/models", timeout=10) as answer:
        assert answer.status == 200
        return {m["modelName"] for m in json.loads(answer.read())["models"]}


def _folders_in_container(runtime: Runtime, endpoint: str) -> set[str]:
    (container,) = runtime.containers(endpoint)
    return runtime.listing(container.id, "/opt/ml/models")


@pytest.fixture()
def runtime_endpoints(on_runtime: OnRuntime, mme_image: str) -> Iterator[Endpoints]:
    """``endpoints`` on the emulator of ``on_runtime``."""
    emulator = on_runtime.emulator
    with Endpoints(emulator.sagemaker, emulator.s3, on_runtime.prefix.split("/")[2], mme_image, None,
                   emulator.role_arn, leftovers=on_runtime.runtime.leftovers) as made:
        yield made


def test_fifty_models_through_a_budget_of_ten(on_runtime: OnRuntime, runtime_endpoints: Endpoints, capsys: Any) -> None:
    emulator, endpoints, engine, prefix = on_runtime.emulator, runtime_endpoints, on_runtime.runtime, on_runtime.prefix
    model = endpoints.model(Mode="MultiModel", ModelDataUrl=prefix)
    name = endpoints.endpoint(endpoints.config(("AllTraffic", model, 1.0, 1)))
    runtime = emulator.runtime

    def invoke(target_model: str, **extra: Any) -> dict[str, Any]:
        answer = runtime.invoke_endpoint(EndpointName=name, TargetModel=target_model, Body=b'{"x": 1}', **extra)
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        return dict(json.loads(answer["Body"].read()))

    # 50 models through a cache of 10: every first call downloads, extracts and loads.
    for i in range(MODELS):
        echo = invoke(target(i), ContentType="application/json", Accept="application/json", CustomAttributes=f"n={i}")
        assert echo["model"] == model_name(target(i))  # the opaque name, not the TargetModel
        assert echo["target_model"] == target(i)
        assert echo["files"] == [f"m{i:02d}.txt", "model.json"]  # this model's own artifact
        assert (echo["load_count"], echo["invocation_count"]) == (1, 1)
        assert (echo["content_type"], echo["accept"], echo["custom_attributes"], echo["body"]) == (
            "application/json", "application/json", f"n={i}", '{"x": 1}',
        )
    last_ten = {model_name(target(i)) for i in range(MODELS - BUDGET, MODELS)}
    assert _models_in_container(engine, name) == last_ten  # the 40 others were unloaded ...
    assert _folders_in_container(engine, name) == last_ten  # ... and their files removed
    view = emulator.view(name)
    (instance,) = view["Variants"][0]["Instances"]
    assert [m["TargetModel"] for m in instance["Models"]] == [target(i) for i in range(40, 50)]
    assert {m["State"] for m in instance["Models"]} == {"Loaded"}
    stats = view["Stats"]
    assert (stats["Hits"], stats["Misses"], stats["Loads"], stats["Evictions"], stats["Removals"]) == (0, 50, 50, 40, 40)

    # A loaded model is a hit; an evicted one is loaded again, evicting the least recently used.
    assert (invoke(target(45))["invocation_count"], invoke(target(45))["load_count"]) == (2, 1)
    reloaded = invoke(target(0))
    assert (reloaded["load_count"], reloaded["invocation_count"]) == (2, 1)
    assert model_name(target(40)) not in _models_in_container(engine, name)
    assert model_name(target(0)) in _models_in_container(engine, name)

    # Simultaneous first calls of one slow model load it once; other models are not held up.
    finished: dict[str, float] = {}
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()

    def call(label: str, target_model: str) -> None:
        echo = invoke(target_model)
        with lock:
            answers.append(echo)
            finished[label] = time.monotonic()

    slow_callers = [threading.Thread(target=call, args=(f"slow{n}", "slow.tar.gz")) for n in range(16)]
    for thread in slow_callers:
        thread.start()
    poll(lambda: model_name("slow.tar.gz") in _models_in_container(engine, name), 10, 0.02, "the slow load to start")
    call("hit", target(46))
    call("other-load", target(1))
    for thread in slow_callers:
        thread.join(30)
    slow = [a for a in answers if a["target_model"] == "slow.tar.gz"]
    assert len(slow) == 16 and {a["load_count"] for a in slow} == {1}
    assert sorted(a["invocation_count"] for a in slow) == list(range(1, 17))
    first_slow = min(t for label, t in finished.items() if label.startswith("slow"))
    assert finished["hit"] < first_slow and finished["other-load"] < first_slow  # answered while "slow" loaded

    # A load longer than the wait: ModelNotReadyException (429), and the load goes on. (A client
    # that does not retry: botocore's legacy mode retries 429, which is SageMaker's advice.)
    with pytest.raises(ClientError) as not_ready:
        emulator.no_retry.invoke_endpoint(EndpointName=name, TargetModel="veryslow.tar.gz", Body=b"{}")
    assert _error(not_ready)[:2] == ("ModelNotReadyException", 429)
    echo = poll(lambda: _try(lambda: invoke("veryslow.tar.gz")), 15, 0.2, "the slow model to finish loading")
    assert echo["load_count"] == 1

    # SageMaker's errors.
    bucket, key_prefix = prefix[len("s3://"):].split("/", 1)
    with pytest.raises(ClientError) as missing:
        invoke("absent.tar.gz")
    assert _error(missing) == (
        "ValidationError",
        400,
        (
            f"Failed to download model data(bucket: {bucket}, key: {key_prefix}absent.tar.gz). Please ensure that "
            "there is an object located at the URL and that the role passed to CreateModel has permissions to "
            "download the object."
        ),
    )
    with pytest.raises(ClientError) as escape:
        invoke("../mme/m01.tar.gz")
    assert _error(escape)[:2] == ("ValidationError", 400) and "escapes the model prefix" in _error(escape)[2]
    with pytest.raises(ClientError) as no_target:
        runtime.invoke_endpoint(EndpointName=name, Body=b"{}")
    assert _error(no_target)[0] == "ValidationError" and "is missing a target model header" in _error(no_target)[2]
    with pytest.raises(ClientError) as streamed:
        runtime.invoke_endpoint_with_response_stream(EndpointName=name, Body=b"{}")
    assert _error(streamed)[0] == "ValidationError"
    with pytest.raises(ClientError) as refused:
        invoke("refuse500.tar.gz")
    code, status, message = _error(refused)
    assert (code, status, refused.value.response["OriginalStatusCode"]) == ("ModelError", 424, 500)
    assert message.startswith("Received server error (500) from primary with message")
    assert "refused to load" in refused.value.response["OriginalMessage"]

    # The command line shows the same view.
    assert smemu(["models", name, "--port", str(emulator.settings.port)]) == 0
    printed = capsys.readouterr().out
    assert "veryslow.tar.gz" in printed and "Loaded" in printed and "evictions" in printed

    # CloudWatch metrics where SageMaker puts them (AWS/SageMaker, EndpointName + VariantName).
    dimensions = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def published() -> set[str] | None:
        found = emulator.cloudwatch.list_metrics(Namespace="AWS/SageMaker", Dimensions=dimensions)["Metrics"]
        names = {m["MetricName"] for m in found}
        wanted = {"ModelCacheHit", "ModelLoadingTime", "ModelDownloadingTime", "ModelUnloadingTime", "LoadedModelCount"}
        return names if wanted <= names else None

    poll(published, 15, 0.5, "the multi-model metrics in CloudWatch")
    hits = emulator.cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelCacheHit",
        Dimensions=dimensions,
        StartTime=time.time() - 600,
        EndTime=time.time() + 60,
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert sum(d["Sum"] for d in hits) >= 2 and sum(d["SampleCount"] for d in hits) >= MODELS

    # Last: a container that answers 507 even with nothing else loaded. The platform unloads
    # every idle model trying to make room, then gives up with ModelError.
    with pytest.raises(ClientError) as full:
        invoke("refuse507.tar.gz")
    assert (_error(full)[:2], full.value.response["OriginalStatusCode"]) == (("ModelError", 424), 507)
    assert _models_in_container(engine, name) == set()
    states = {m["State"] for m in emulator.view(name)["Variants"][0]["Instances"][0]["Models"]}
    assert states == {"OnDisk"}  # unloaded for memory: the files stay for a fast reload
    assert invoke(target(49))["load_count"] == 2


def _try(call: Any) -> Any:
    try:
        return call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ModelNotReadyException":
            return None
        raise


def test_sticky_instances_507_retries_and_disabled_cache(on_runtime: OnRuntime, runtime_endpoints: Endpoints) -> None:
    emulator, endpoints, prefix = on_runtime.emulator, runtime_endpoints, on_runtime.prefix
    sticky = endpoints.model(Mode="MultiModel", ModelDataUrl=prefix, env={"SMEMU_SAMPLE_MAX_MODELS": "2"})
    nocache = endpoints.model(
        Mode="MultiModel", ModelDataUrl=prefix, MultiModelConfig={"ModelCacheSetting": "Disabled"}
    )
    single = endpoints.model()
    name = endpoints.endpoint(
        endpoints.config(("sticky", sticky, 1.0, 2), ("nocache", nocache, 1.0, 1), ("single", single, 1.0, 1))
    )

    def invoke(variant: str, target_model: str) -> dict[str, Any]:
        answer = emulator.runtime.invoke_endpoint(
            EndpointName=name, TargetVariant=variant, TargetModel=target_model, Body=b"{}"
        )
        assert answer["InvokedProductionVariant"] == variant
        return dict(json.loads(answer["Body"].read()))

    # Six models over two instances whose containers hold two each: the third load on an
    # instance is answered 507, the platform unloads that instance's least recently used
    # model and retries. Every model then goes back to the instance it was loaded on.
    hosts = {target(i): invoke("sticky", target(i))["host"] for i in range(6)}
    assert len(set(hosts.values())) == 2 and sorted(list(hosts.values()).count(h) for h in set(hosts.values())) == [3, 3]
    for i in range(6):
        echo = invoke("sticky", target(i))
        assert echo["host"] == hosts[target(i)]
    view = {v["VariantName"]: v for v in emulator.view(name)["Variants"]}
    assert view["sticky"]["Stats"]["Evictions"] >= 4 and view["sticky"]["LoadedModelCount"] == 4
    assert view["single"]["MultiModel"] is False

    # ModelCacheSetting Disabled: each call loads the model; it is unloaded and deleted after.
    assert invoke("nocache", target(10))["load_count"] == 1

    def unloaded() -> bool:
        variant = next(v for v in emulator.view(name)["Variants"] if v["VariantName"] == "nocache")
        return variant["Instances"][0]["Models"] == []

    poll(unloaded, 10, 0.05, "the uncached model to be unloaded")
    assert invoke("nocache", target(10))["load_count"] == 2

    # TargetModel on a variant that is not multi-model (the same image serves /invocations there).
    plain = emulator.runtime.invoke_endpoint(EndpointName=name, TargetVariant="single", Body=b"{}")
    assert json.loads(plain["Body"].read())["model"] == "single"
    with pytest.raises(ClientError) as single_model:
        invoke("single", target(1))
    assert _error(single_model)[:2] == ("ValidationError", 400)
    assert "is not a multi-model endpoint and does not support target model header" in _error(single_model)[2]
