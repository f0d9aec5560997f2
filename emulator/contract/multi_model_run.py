"""Running a multi-model image through the emulator and recording the model API's answers."""

from __future__ import annotations

import http.client
import json
import logging
import urllib.parse
import urllib.request
from typing import Any

from emulator.contract import endpoints
from emulator.contract.engine import ContainerEvents, docker_client, image_labels
from emulator.contract.inputs import CheckOptions, model_archive, tiny_model_archive
from emulator.contract.multi_model_rules import MULTI_MODEL_LABEL, Call, MultiModelObservations
from emulator.contract.session import EmulatorTarget, unique_name

log = logging.getLogger(__name__)

TARGET_MODEL = "model-a.tar.gz"
UNKNOWN_MODEL = "smemu-check-not-loaded"
MODELS_PATH = "/opt/ml/models"
CALL_TIMEOUT = 60.0


class MultiModelCheck:
    """One multi-model check: deploy, load and invoke through the emulator, probe the model API."""

    def __init__(self, target: EmulatorTarget, image: str, options: CheckOptions) -> None:
        self.target = target
        self.image = image
        self.options = options
        self.content_type, self.body = options.requests()[0]
        self.docker = docker_client()

    def run(self) -> MultiModelObservations:
        """Deploy the image as a multi-model endpoint and exercise it."""
        seen = MultiModelObservations()
        try:
            seen.label = image_labels(self.docker, self.image).get(MULTI_MODEL_LABEL, "")
        except Exception as exc:  # noqa: BLE001 - an image the engine cannot show fails the deploy anyway
            log.debug("labels of %s: %s", self.image, exc)
        name = unique_name("check-mme")
        definition: dict[str, Any] = {"Image": self.image, "Mode": "MultiModel", "ModelDataUrl": self._models()}
        if self.options.environment:
            definition["Environment"] = dict(self.options.environment)
        with ContainerEvents(self.docker, {"smemu.kind": endpoints.ENDPOINT_KIND, "smemu.name": name}) as events:
            deployment, seen.endpoint = endpoints.deploy(self.target, name, {"PrimaryContainer": definition},
                                                         self.options.instance_type, self.options.job_timeout)
            try:
                if seen.endpoint.in_service:
                    self._exercise(name, seen)
            finally:
                grace = self.target.endpoint_stop_grace
                endpoints.delete(self.target, deployment, (grace or 30.0) + 60.0)
                if seen.endpoint.in_service:
                    seen.stop = events.observe_stop(timeout=5.0, grace=grace)
        return seen

    def _models(self) -> str:
        """Upload the model archive as ``<prefix>/model-a.tar.gz``; the prefix is the ModelDataUrl."""
        s3 = self.target.client("s3")
        source = self.options.model
        bucket, prefix = self.target.bucket(), f"{unique_name('multi-model')}/models"
        if source and source.startswith("s3://"):
            src_bucket, _, key = source[5:].partition("/")
            body = s3.get_object(Bucket=src_bucket, Key=key)["Body"].read()
        else:
            from pathlib import Path

            body = model_archive(Path(source).expanduser()) if source else tiny_model_archive("model-a")
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{TARGET_MODEL}", Body=body)
        return f"s3://{bucket}/{prefix}/"

    def _exercise(self, name: str, seen: MultiModelObservations) -> None:
        runtime = self.target.client("sagemaker-runtime")
        seen.first_invoke = endpoints.invoke(runtime, name, self.body, self.content_type, TargetModel=TARGET_MODEL)
        if not seen.first_invoke.ok:
            return
        seen.model_name = self._loaded_name(name)
        container = endpoints.serving_container(self.docker, name)
        address = endpoints.published(container, 8080) if container is not None else None
        if seen.model_name is None or address is None:
            seen.not_probed = "the loaded model or the container's port could not be found"
            return
        model, url = seen.model_name, f"{MODELS_PATH}/{seen.model_name}/model"
        probe = _Prober(*address)
        load = json.dumps({"model_name": model, "url": url}).encode()
        seen.calls["list"] = probe.call("GET", "/models")
        seen.calls["get"] = probe.call("GET", f"/models/{model}")
        seen.calls["get-unknown"] = probe.call("GET", f"/models/{UNKNOWN_MODEL}")
        seen.calls["load-again"] = probe.call("POST", "/models", load, {"Content-Type": "application/json"})
        seen.calls["invoke-unknown"] = probe.call("POST", f"/models/{UNKNOWN_MODEL}/invoke", self.body,
                                                  {"Content-Type": self.content_type})
        seen.calls["unload-unknown"] = probe.call("DELETE", f"/models/{UNKNOWN_MODEL}")
        seen.calls["unload"] = probe.call("DELETE", f"/models/{model}")
        seen.calls["get-after-unload"] = probe.call("GET", f"/models/{model}")
        seen.calls["list-after-unload"] = probe.call("GET", "/models")
        seen.second_invoke = endpoints.invoke(runtime, name, self.body, self.content_type, TargetModel=TARGET_MODEL)

    def _loaded_name(self, endpoint: str) -> str | None:
        """The model name the emulator gave TARGET_MODEL, from its ``/_smemu/endpoints/<name>/models`` view."""
        url = f"{self.target.url}/_smemu/endpoints/{urllib.parse.quote(endpoint, safe='')}/models"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(url, timeout=10) as response:
                view = json.loads(response.read())
        except (OSError, ValueError) as exc:
            log.warning("reading %s: %s", url, exc)
            return None
        for variant in view.get("Variants", []):
            for instance in variant.get("Instances", []):
                for model in instance.get("Models", []):
                    if model.get("TargetModel") == TARGET_MODEL:
                        return str(model["ModelName"])
        return None


class _Prober:
    """Model-API calls on the container's published port, one connection each, as the platform makes them."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Call:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=CALL_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers={"Accept": "application/json", **(headers or {})})
            response = conn.getresponse()
            return Call(method, path, response.status, response.read())
        except (OSError, http.client.HTTPException) as exc:
            return Call(method, path, f"no answer ({type(exc).__name__}: {exc})")
        finally:
            conn.close()


def check_multi_model(target: EmulatorTarget, image: str, options: CheckOptions) -> MultiModelObservations:
    """Run a multi-model image's contract check through ``target``."""
    return MultiModelCheck(target, image, options).run()
