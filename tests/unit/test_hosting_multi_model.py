"""Multi-model endpoints without Docker: the cache bookkeeping (pure), the loader against an
in-process container that speaks the MME API, the router's instance choice and errors, and
the model rules. Waits are polls with deadlines."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emulator.cli import format_models
from emulator.config import load_settings
from emulator.context import CallContext
from emulator.errors import ModelError, ModelNotReadyException, ValidationError, ValidationException
from emulator.hosting.container_http import ConnectionPool
from emulator.hosting.invoke import Invocation
from emulator.hosting.model_loader import (
    InstanceModels,
    LoadRefused,
    ModelNotReady,
    TargetMissing,
)
from emulator.hosting.multi_model import (
    LOADING,
    UNLOADING,
    Budget,
    ModelCache,
    MultiModelPlan,
    container_url,
    instance_models_dir,
    model_name,
    object_key,
    target_problem,
)
from emulator.hosting.multi_model_metrics import MetricsPublisher
from emulator.hosting.multi_model_router import MultiModelRouter
from emulator.hosting.plan import ContainerPlan, VariantPlan, container_plans
from emulator.hosting.routing import ContainerTarget, EndpointRoute, InstanceRoute, RoutingTable, VariantRoute
from emulator.hosting.validation import validate_endpoint_config, validate_model
from tests.unit.test_hosting_fakes import FakeS3, wait_for

CTX = CallContext(region="us-east-1", account_id="123456789012")
PREFIX = "s3://models/mme/"

# -- names, paths and plans ------------------------------------------------------------------


def test_names_paths_and_target_rules() -> None:
    name = model_name("a/m1.tar.gz")
    assert name == model_name("a/m1.tar.gz") != model_name("m1.tar.gz")
    assert len(name) == 32 and int(name, 16) >= 0
    assert container_url(name) == f"/opt/ml/models/{name}/model"
    assert instance_models_dir(Path("/w/dep/AllTraffic/1"), "i-1") == Path("/w/dep/AllTraffic/1-models/i-1")
    assert object_key("mme/", "a/m1.tar.gz") == "mme/a/m1.tar.gz"
    assert target_problem("m1.tar.gz") is None and target_problem("dir/m1.tar.gz") is None
    for bad, why in [
        ("../other/m.tar.gz", "escapes"),
        ("a/../../m.tar.gz", "escapes"),
        ("a\\..\\m.tar.gz", "escapes"),
        ("/abs.tar.gz", "absolute"),
        ("a/./m.tar.gz", "not the key"),
        ("dir/", "not the key"),
    ]:
        assert why in (target_problem(bad) or ""), bad


def test_multi_model_plan_from_the_container_definition() -> None:
    assert MultiModelPlan.from_definition({"Image": "i", "ModelDataUrl": "s3://b/p.tar.gz"}) is None
    plan = MultiModelPlan.from_definition({"Mode": "MultiModel", "ModelDataUrl": "s3://b/mme"})
    assert plan == MultiModelPlan(prefix="s3://b/mme/", caching=True)
    disabled = MultiModelPlan.from_definition(
        {
            "Mode": "MultiModel",
            "ModelDataUrl": "s3://b/mme/",
            "MultiModelConfig": {"ModelCacheSetting": "Disabled"},
            "Environment": {"SMEMU_MME_CACHE_MODELS": "3"},
        }
    )
    assert disabled is not None and not disabled.caching and disabled.max_models == 3
    assert disabled.budget(10, 99, 5).max_models == 3  # the model's override wins
    assert MultiModelPlan(prefix="s3://b/").budget(10, None, 5) == Budget(10, None, 5)
    with pytest.raises(ValueError, match="whole number"):
        MultiModelPlan.from_definition(
            {"Mode": "MultiModel", "ModelDataUrl": "s3://b/", "Environment": {"SMEMU_MME_CACHE_MODELS": "x"}}
        )

    _mode, (container,) = container_plans(
        {"PrimaryContainer": {"Image": "i", "Mode": "MultiModel", "ModelDataUrl": "s3://b/mme/"}}, "us-east-1"
    )
    assert container.environment["SAGEMAKER_MULTI_MODEL"] == "true"
    assert container.model_data is None  # nothing is staged at /opt/ml/model
    assert container.multi_model == MultiModelPlan(prefix="s3://b/mme/")


def test_model_rules_for_multi_model_containers() -> None:
    validate_model({"PrimaryContainer": {"Image": "i", "Mode": "MultiModel", "ModelDataUrl": "s3://b/mme/"}})
    for bad, message in [
        ({"PrimaryContainer": {"Image": "i", "Mode": "MultiModel"}}, "need ModelDataUrl"),
        (
            {
                "PrimaryContainer": {
                    "Image": "i",
                    "Mode": "MultiModel",
                    "ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/", "S3DataType": "S3Prefix"}},
                }
            },
            "cannot use ModelDataSource",
        ),
        (
            {
                "PrimaryContainer": {
                    "Image": "i",
                    "Mode": "MultiModel",
                    "ModelDataUrl": "s3://b/",
                    "Environment": {"SMEMU_MME_CACHE_MODELS": "0"},
                }
            },
            "at least 1",
        ),
        (
            {"Containers": [{"Image": "i", "Mode": "MultiModel", "ModelDataUrl": "s3://b/"}, {"Image": "j"}]},
            "inference pipeline",
        ),
    ]:
        with pytest.raises(ValidationException, match=message):
            validate_model(bad)
    mme = {"PrimaryContainer": {"Image": "i", "Mode": "MultiModel", "ModelDataUrl": "s3://b/"}}
    with pytest.raises(ValidationException, match="serverless endpoints do not support multi-model"):
        validate_endpoint_config(
            {
                "ProductionVariants": [
                    {"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 1024}}
                ]
            },
            {"m": mme}.get,
            lambda n: n,
        )


def test_cache_settings_come_from_the_environment() -> None:
    settings = load_settings({"SMEMU_MME_CACHE_MODELS": "10", "SMEMU_MME_CACHE_BYTES": "4096"})
    assert (settings.mme_cache_models, settings.mme_cache_bytes) == (10, 4096)
    assert load_settings({}).mme_cache_models is None


# -- the cache bookkeeping (pure) -------------------------------------------------------------


def _loaded(cache: ModelCache, *targets: str, size: int = 10) -> None:
    for target in targets:
        entry = cache.add(target)
        entry.busy, entry.loaded, entry.on_disk, entry.size = None, True, True, size


def test_disk_budget_evicts_least_recently_used_idle_models() -> None:
    cache = ModelCache(Budget(max_models=3))
    _loaded(cache, "a", "b", "c")
    cache.touch(cache.get("a"), 1.0)  # b is now the least recently used
    incoming = cache.add("d")
    assert incoming.busy == LOADING and len(cache) == 4
    assert [v.target for v in cache.claim_disk_victims(keep=incoming)] == ["b"]
    assert cache.get("b").busy == UNLOADING
    assert cache.claim_disk_victims(keep=incoming) == []  # b already counts as leaving
    cache.unloaded(cache.get("b"), files_removed=True)
    assert [e.target for e in cache] == ["c", "a", "d"]
    assert (cache.stats.evictions, cache.stats.removals) == (1, 1)


def test_busy_and_in_use_models_are_never_evicted() -> None:
    cache = ModelCache(Budget(max_models=1))
    _loaded(cache, "a", "b")
    cache.get("a").in_use = 1
    assert [v.target for v in cache.claim_disk_victims()] == ["b"]
    cache.unloaded(cache.get("b"), files_removed=True)
    incoming = cache.add("c")
    assert cache.claim_disk_victims(keep=incoming) == []  # over budget while "a" is in use
    cache.get("a").in_use = 0
    assert [v.target for v in cache.claim_disk_victims(keep=incoming)] == ["a"]


def test_byte_and_memory_budgets() -> None:
    cache = ModelCache(Budget(max_bytes=25, memory_bytes=25))
    _loaded(cache, "a", "b", size=10)
    incoming = cache.add("c")
    incoming.size, incoming.on_disk = 10, True
    assert [v.target for v in cache.claim_disk_victims(keep=incoming)] == ["a"]
    cache.unloaded(cache.get("a"), files_removed=True)
    assert [v.target for v in cache.claim_memory_victims(incoming, incoming=20)] == ["b"]
    cache.unloaded(cache.get("b"), files_removed=False)
    b = cache.get("b")
    assert b is not None and b.state == "OnDisk" and b.on_disk  # unloaded for memory, files kept
    assert cache.claim_lru_loaded(incoming) is None
    _loaded(cache, "d")
    victim = cache.claim_lru_loaded(incoming)
    assert victim is not None and victim.target == "d" and victim.state == UNLOADING


# -- a multi-model container in this process --------------------------------------------------


@dataclass
class FakeMme:
    """An HTTP server that implements the MME container API over a models folder."""

    root: Path
    max_models: int = 0
    loaded: dict[str, str] = field(default_factory=dict)
    load_counts: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event | None = None  # when set by a test, slow loads wait for it instead of sleeping

    def start(self) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.wfile.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )

            def handle_one(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amzn-SageMaker-Target-Model")
                parts = self.path.strip("/").split("/")
                fake.calls.append((method, self.path, target))
                if method == "POST" and parts == ["models"]:
                    request = json.loads(body)
                    name, url = request["model_name"], request["url"]
                    folder = fake.root / url.removeprefix("/opt/ml/models/")
                    if not folder.is_dir():
                        return self.send(404, {"message": f"no folder {url}"})
                    if (folder / "load-status").is_file():
                        return self.send(int((folder / "load-status").read_text()), {"message": "refused"})
                    with fake.lock:
                        if name in fake.loaded:
                            return self.send(409, {"message": "already loaded"})
                        if fake.max_models and len(fake.loaded) >= fake.max_models:
                            return self.send(507, {"message": "full"})
                        fake.loaded[name] = "loading"
                    if (folder / "load-seconds").is_file():
                        if fake.gate is not None:
                            fake.gate.wait(10)
                        else:
                            time.sleep(float((folder / "load-seconds").read_text()))
                    with fake.lock:
                        fake.loaded[name] = url
                        fake.load_counts[name] = fake.load_counts.get(name, 0) + 1
                    return self.send(200, {"status": "loaded"})
                if method == "DELETE" and len(parts) == 2:
                    with fake.lock:
                        gone = fake.loaded.pop(parts[1], None)
                    return self.send(200 if gone else 404, {})
                if method == "POST" and len(parts) == 3 and parts[2] == "invoke":
                    url = fake.loaded.get(parts[1])
                    if url is None or url == "loading":
                        return self.send(404, {"message": "not loaded"})
                    files = sorted(p.name for p in (fake.root / url.removeprefix("/opt/ml/models/")).iterdir())
                    return self.send(200, {"model": parts[1], "target": target, "files": files, "body": body.decode()})
                return self.send(404, {})

            def do_POST(self) -> None:
                self.handle_one("POST")

            def do_DELETE(self) -> None:
                self.handle_one("DELETE")

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

        server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p, _ in self.calls if m == method and p.startswith(prefix))


def archive(target: str, extra: dict[str, str] | None = None) -> bytes:
    files = {"model.json": json.dumps({"name": target}), f"{target.replace('/', '_')}.txt": target, **(extra or {})}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture()
def s3() -> FakeS3:
    store = FakeS3()
    for i in range(8):
        store.put_object("models", f"mme/m{i}.tar.gz", archive(f"m{i}.tar.gz"))
    store.put_object("models", "mme/slow.tar.gz", archive("slow.tar.gz", {"load-seconds": "0.8"}))
    store.put_object("models", "mme/refuse.tar.gz", archive("refuse.tar.gz", {"load-status": "500"}))
    store.put_object("models", "mme/broken.tar.gz", b"not a tar archive")
    return store


class Instance:
    """A fake MME container and the InstanceModels that drives it."""

    def __init__(
        self, root: Path, s3: FakeS3, budget: Budget, caching: bool = True, max_models: int = 0, own_copy: bool = False
    ) -> None:
        """``own_copy``: the container reads a copy of the models folder of its own (a pod), kept in
        step through ``on_folder`` as RuntimeBackend.copy_in does; otherwise the folder itself."""
        root.mkdir(parents=True, exist_ok=True)
        here = root / "here" if own_copy else root
        self.fake = FakeMme(root / "pod" if own_copy else root, max_models=max_models)
        self.copies: list[tuple[str, bool]] = []
        self.server = self.fake.start()
        self.pool = ConnectionPool("127.0.0.1", int(self.server.server_address[1]))
        self.models = InstanceModels(
            "i-test",
            self.pool,
            here,
            MultiModelPlan(prefix=PREFIX, caching=caching),
            budget,
            lambda: s3,
            lambda work: threading.Thread(target=work, daemon=True).start(),
            on_folder=self._copy if own_copy else None,
        )

    def _copy(self, name: str, source: Path | None) -> None:
        self.copies.append((name, source is not None))
        shutil.rmtree(self.fake.root / name, ignore_errors=True)
        if source is not None:
            shutil.copytree(source, self.fake.root / name)

    def call(self, target: str, wait: float = 5.0) -> dict[str, Any]:
        entry, _hit = self.models.acquire(target, wait)
        try:
            response = self.models.invoke(entry, b"x", {}, 5.0)
        finally:
            self.models.release(entry)
        assert response.status == 200, response.body
        return dict(json.loads(response.body))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def instances(tmp_path: Path, s3: FakeS3) -> Iterator[Any]:
    made: list[Instance] = []

    def make(budget: Budget | None = None, **options: Any) -> Instance:
        instance = Instance(tmp_path / f"i{len(made)}", s3, budget or Budget(), **options)
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.close()


# -- the loader -----------------------------------------------------------------------------------


def test_first_use_downloads_extracts_and_loads_then_hits(instances: Any) -> None:
    instance = instances()
    answer = instance.call("m1.tar.gz")
    name = model_name("m1.tar.gz")
    assert answer == {"model": name, "target": "m1.tar.gz", "files": ["m1.tar.gz.txt", "model.json"], "body": "x"}
    assert (instance.fake.root / name / "model" / "model.json").is_file()
    load = [c for c in instance.fake.calls if c[:2] == ("POST", "/models")]
    assert load == [("POST", "/models", "m1.tar.gz")]  # the header travels with the load too
    entry, hit = instance.models.acquire("m1.tar.gz", 1.0)
    instance.models.release(entry)
    assert hit and entry.hits == 1
    stats = instance.models.stats
    assert (stats.hits, stats.misses, stats.loads, stats.downloads) == (1, 1, 1, 1)


def test_budget_evicts_least_recently_used_and_reloads(instances: Any) -> None:
    instance = instances(Budget(max_models=2))
    for target in ("m0.tar.gz", "m1.tar.gz", "m0.tar.gz", "m2.tar.gz"):  # m1 is least recently used
        instance.call(target)
    cached = {e.target for e in instance.models.cache}
    assert cached == {"m0.tar.gz", "m2.tar.gz"}
    assert ("DELETE", f"/models/{model_name('m1.tar.gz')}", "m1.tar.gz") in instance.fake.calls
    assert not (instance.fake.root / model_name("m1.tar.gz")).exists()  # files removed
    assert instance.call("m1.tar.gz")["files"] == ["m1.tar.gz.txt", "model.json"]  # reloaded
    assert instance.fake.load_counts[model_name("m1.tar.gz")] == 2
    assert sorted(p.name for p in instance.fake.root.iterdir()) == sorted(
        model_name(t) for t in ("m2.tar.gz", "m1.tar.gz")
    )
    assert (instance.models.stats.evictions, instance.models.stats.removals) == (2, 2)


def test_a_container_with_its_own_copy_gets_each_model_before_its_load_and_loses_it_on_removal(
    instances: Any,
) -> None:
    instance = instances(Budget(max_models=1), own_copy=True)
    assert instance.call("m0.tar.gz")["files"] == ["m0.tar.gz.txt", "model.json"]  # read from the copy
    assert instance.call("m1.tar.gz")["files"] == ["m1.tar.gz.txt", "model.json"]  # m0 evicted
    first, second = model_name("m0.tar.gz"), model_name("m1.tar.gz")
    assert instance.copies == [(first, True), (first, False), (second, True)]
    assert sorted(p.name for p in instance.fake.root.iterdir()) == [second]


def test_a_copy_that_cannot_be_removed_does_not_stop_an_eviction(instances: Any) -> None:
    from emulator.runtime.spec import ContainerNotFound

    instance = instances(Budget(max_models=1), own_copy=True)
    copy = instance.models.on_folder

    def copy_but_never_remove(name: str, source: Path | None) -> None:
        if source is None:
            raise ContainerNotFound("the pod is gone")
        copy(name, source)

    instance.models.on_folder = copy_but_never_remove
    instance.call("m0.tar.gz")
    assert instance.call("m1.tar.gz")["files"] == ["m1.tar.gz.txt", "model.json"]
    assert [e.target for e in instance.models.cache] == ["m1.tar.gz"]  # m0 evicted all the same
    assert instance.models.stats.evictions == 1


def test_simultaneous_first_calls_load_once_and_other_models_are_not_blocked(instances: Any) -> None:
    instance = instances()
    instance.fake.gate = threading.Event()  # "slow" stays loading until the test opens the gate
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(instance.call("slow.tar.gz"))) for _ in range(12)]
    for thread in threads:
        thread.start()
    wait_for(lambda: instance.fake.loaded.get(model_name("slow.tar.gz")) == "loading", 5)
    fast = instance.call("m3.tar.gz")  # loads and answers while "slow" is still loading
    assert instance.fake.loaded.get(model_name("slow.tar.gz")) == "loading"
    instance.fake.gate.set()
    for thread in threads:
        thread.join(10)
    assert fast["target"] == "m3.tar.gz"
    assert len(results) == 12 and {r["target"] for r in results} == {"slow.tar.gz"}
    assert instance.fake.load_counts[model_name("slow.tar.gz")] == 1
    assert instance.fake.count("POST", "/models") - instance.fake.count("POST", "/models/") == 2


def test_a_load_longer_than_the_wait_is_not_ready_and_goes_on(instances: Any) -> None:
    instance = instances()
    with pytest.raises(ModelNotReady):
        instance.models.acquire("slow.tar.gz", 0.1)
    answer = wait_for(lambda: instance.call("slow.tar.gz", wait=2.0), 5)
    assert answer["target"] == "slow.tar.gz"
    assert instance.fake.load_counts[model_name("slow.tar.gz")] == 1


def test_507_evicts_an_idle_model_and_retries(instances: Any) -> None:
    instance = instances(max_models=2)
    for target in ("m0.tar.gz", "m1.tar.gz", "m2.tar.gz"):
        instance.call(target)
    assert set(instance.fake.loaded) == {model_name("m1.tar.gz"), model_name("m2.tar.gz")}
    m0 = instance.models.cache.get("m0.tar.gz")
    assert m0 is not None and m0.state == "OnDisk"  # unloaded for memory, files kept
    instance.call("m0.tar.gz")
    assert instance.models.stats.downloads == 3  # the reload needed no download


def test_refused_missing_and_broken_models(instances: Any) -> None:
    instance = instances()
    with pytest.raises(LoadRefused) as refused:
        instance.models.acquire("refuse.tar.gz", 2.0)
    assert refused.value.status == 500
    assert instance.models.cache.get("refuse.tar.gz") is None
    assert not (instance.fake.root / model_name("refuse.tar.gz")).exists()
    with pytest.raises(TargetMissing) as missing:
        instance.models.acquire("absent.tar.gz", 2.0)
    assert (missing.value.bucket, missing.value.key) == ("models", "mme/absent.tar.gz")
    with pytest.raises(Exception, match="not a valid tar archive"):
        instance.models.acquire("broken.tar.gz", 2.0)
    assert instance.models.stats.failures == 3 and len(instance.models.cache) == 0


def test_caching_disabled_unloads_and_deletes_after_each_call(instances: Any) -> None:
    instance = instances(caching=False)
    instance.call("m4.tar.gz")
    wait_for(lambda: len(instance.models.cache) == 0, 5)
    assert not (instance.fake.root / model_name("m4.tar.gz")).exists()
    assert instance.fake.loaded == {}
    instance.call("m4.tar.gz")
    assert instance.fake.load_counts[model_name("m4.tar.gz")] == 2


def test_memory_budget_unloads_but_keeps_files(instances: Any) -> None:
    size = len(json.dumps({"name": "m0.tar.gz"})) + len("m0.tar.gz")
    instance = instances(Budget(memory_bytes=size + 5))
    instance.call("m0.tar.gz")
    instance.call("m1.tar.gz")
    assert set(instance.fake.loaded) == {model_name("m1.tar.gz")}
    assert (instance.fake.root / model_name("m0.tar.gz")).is_dir()


# -- the router -----------------------------------------------------------------------------------


def _variant(instances: list[Instance], caching: bool = True) -> VariantRoute:
    plan = MultiModelPlan(prefix=PREFIX, caching=caching)
    container = ContainerPlan(1, "primary", "img", {}, 8080, None, plan)
    variant_plan = VariantPlan("AllTraffic", "model", 1.0, len(instances), "ml.m5.large", "Single", (container,))
    routes = tuple(
        InstanceRoute(f"i-{n}", (ContainerTarget("primary", f"c{n}", i.pool, f"AllTraffic/i-{n}"),))
        for n, i in enumerate(instances)
    )
    return VariantRoute(variant_plan, 1.0, routes)


@pytest.fixture()
def router(tmp_path: Path, s3: FakeS3) -> Iterator[tuple[MultiModelRouter, RoutingTable, list[Instance]]]:
    table = RoutingTable()
    fakes = []
    for n in range(2):
        folder = tmp_path / "endpoints" / "ep" / "dep1" / "AllTraffic" / "1-models" / f"i-{n}"
        fakes.append(Instance(folder, s3, Budget()))
    published: list[tuple[str, float]] = []

    class Client:
        def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
            published.extend((d["MetricName"], d["StatisticValues"]["Sum"]) for d in MetricData)

    metrics = MetricsPublisher(lambda region: Client(), interval=60)
    made = MultiModelRouter(table, tmp_path, lambda: s3, max_models=3, metrics=metrics)
    made.published = published  # type: ignore[attr-defined]
    yield made, table, fakes
    made.stop()
    for fake in fakes:
        fake.close()


def test_router_spreads_models_and_keeps_them_where_they_were_loaded(router: Any) -> None:
    made, table, fakes = router
    variant = _variant(fakes)
    route = EndpointRoute("ep", [variant])
    table.publish(route)

    def invoke(target: str) -> dict[str, Any]:
        response = made.invoke(route, variant, target, Invocation(b"{}", "application/json"), CTX, 5.0)
        return dict(json.loads(response.body))

    homes = {}
    for i in range(6):
        invoke(f"m{i}.tar.gz")
        homes[f"m{i}.tar.gz"] = next(n for n, f in enumerate(fakes) if model_name(f"m{i}.tar.gz") in f.fake.loaded)
    assert sorted(homes.values()) == [0, 0, 0, 1, 1, 1]  # the fewest models first
    invoke("m6.tar.gz")  # evicts the least recently used model of its instance (budget 3)
    for target, home in homes.items():  # every model goes back where it was loaded before
        invoke(target)
        assert model_name(target) in fakes[home].fake.loaded

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(invoke("slow.tar.gz")["model"])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert sum(f.fake.load_counts.get(model_name("slow.tar.gz"), 0) for f in fakes) == 1

    view = made.describe("ep")
    assert view is not None and view["Variants"][0]["ModelCacheSetting"] == "Enabled"
    stats = view["Stats"]
    assert stats["Loads"] == sum(sum(f.fake.load_counts.values()) for f in fakes)
    assert stats["Evictions"] >= 1 and stats["Hits"] >= 1
    assert stats["Misses"] == stats["Loads"] + 7  # eight callers waited for the one "slow" load
    assert sum(i["LoadedModelCount"] for i in view["Variants"][0]["Instances"]) == 6
    text = "\n".join(format_models(view))
    assert "slow.tar.gz" in text and "evictions" in text
    assert made.describe("nope") is None

    made.metrics.flush()
    names = {name for name, _ in made.published}
    assert {"ModelCacheHit", "ModelLoadingTime", "ModelDownloadingTime", "LoadedModelCount"} <= names


def test_router_errors_are_sagemakers(router: Any) -> None:
    made, table, fakes = router
    variant = _variant(fakes[:1])
    route = EndpointRoute("ep", [variant])
    table.publish(route)

    def invoke(target: str, timeout: float = 5.0) -> Any:
        return made.invoke(route, variant, target, Invocation(b"{}"), CTX, timeout)

    with pytest.raises(ValidationError, match=r"TargetModel \.\./x\.tar\.gz escapes the model prefix"):
        invoke("../x.tar.gz")
    with pytest.raises(ValidationError) as missing:
        invoke("absent.tar.gz")
    assert missing.value.message.startswith(
        "Failed to download model data(bucket: models, key: mme/absent.tar.gz). Please ensure"
    )
    with pytest.raises(ModelError) as refused:
        invoke("refuse.tar.gz")
    assert refused.value.original_status_code == 500
    assert refused.value.message.startswith("Received server error (500) from primary with message")
    with pytest.raises(ModelNotReadyException):
        invoke("slow.tar.gz", timeout=0.1)
    with pytest.raises(ValidationError, match="Failed to extract model data"):
        invoke("broken.tar.gz")


# -- the hosting service over the fake backend ----------------------------------------------------


def test_hosting_service_runs_a_multi_model_endpoint(tmp_path: Path, s3: FakeS3) -> None:
    from tests.unit.test_hosting_service import Harness

    harness = Harness(tmp_path, s3=s3, mme_cache_models=2)
    try:
        harness.model("mme", image="img", Mode="MultiModel", ModelDataUrl=PREFIX)
        harness.config("c", ("AllTraffic", "mme", 1.0, 1))
        harness.endpoint("ep", "c")
        spec = harness.backend.started[0]
        assert spec.environment["SAGEMAKER_MULTI_MODEL"] == "true"
        folder = spec.folders[1]
        assert (folder.target, folder.read_only) == ("/opt/ml/models", True)
        assert folder.source is not None and folder.source.name == spec.labels["smemu.instance"]

        answer = harness.invoke("ep", b"hi", TargetModel="m1.tar.gz")
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        assert (folder.source / model_name("m1.tar.gz") / "model" / "m1.tar.gz.txt").is_file()
        for target in ("m2.tar.gz", "m3.tar.gz"):  # the budget of 2 evicts m1 and deletes its files
            harness.invoke("ep", b"hi", TargetModel=target)
        assert not (folder.source / model_name("m1.tar.gz")).exists()
        view = harness.service.multi_models.describe("ep")
        assert view is not None and view["Stats"]["Evictions"] == 1
        assert [m["TargetModel"] for m in view["Variants"][0]["Instances"][0]["Models"]] == ["m2.tar.gz", "m3.tar.gz"]

        with pytest.raises(ValidationError, match="is missing a target model header"):
            harness.invoke("ep", b"hi")
        with pytest.raises(ValidationError, match="multi-model endpoint; invoke it with InvokeEndpoint"):
            harness.service.streamer.handle("InvokeEndpointWithResponseStream", {"EndpointName": "ep", "Body": b""}, CTX)
        harness.delete("ep")
    finally:
        harness.service.stop()
