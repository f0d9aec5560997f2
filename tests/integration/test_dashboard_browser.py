"""The dashboard in a real browser (Debian's chromium driven by Playwright): it finds a running
training job and an endpoint, shows the job's log lines, timeline and metric chart while it
runs, the endpoint's instance and invocation count, and asks nothing of any other origin."""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.conftest import make_client, unique_name
from tests.integration.sample_images import build_sample_image
from tests.integration.test_endpoints_support import Endpoints
from tests.integration.test_training_helpers import job_request, wait_secondary, wait_terminal

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
"""No sandbox (tests may run as root); no background traffic: the browser talks to the emulator only."""
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium from Debian (scripts/install-browser; SMEMU_CHROMIUM names another), launched by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("SMEMU_CHROMIUM") or shutil.which("chromium") or CHROMIUM
    assert shutil.which(executable), "chromium is not installed: run scripts/install-browser (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Any, endpoint_url: str) -> Iterator[Any]:
    """A fresh page; every request it makes and every script error are recorded."""
    context = browser.new_context(base_url=endpoint_url)
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    opened.requests = []  # type: ignore[attr-defined]
    opened.errors = []  # type: ignore[attr-defined]
    opened.on("request", lambda request: opened.requests.append(request.url))  # type: ignore[attr-defined]
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))  # type: ignore[attr-defined]
    opened.on("console", lambda message: message.type == "error" and opened.errors.append(message.text))  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        context.close()


def test_dashboard_shows_a_running_job_its_logs_and_metrics_and_an_endpoint(
    page: Any, sagemaker_client: Any, runtime_client: Any, s3_client: Any, bucket: str, role_arn: str,
    training_image: str, endpoint_url: str
) -> None:
    from playwright.sync_api import expect

    engine = docker.from_env()
    serving = build_sample_image("serving", client=engine)
    job = unique_name("dash-train")
    with Endpoints(sagemaker_client, s3_client, bucket, serving, engine, role_arn) as endpoints:
        endpoint = endpoints.endpoint(endpoints.config(("AllTraffic", endpoints.model("m"), 1.0, 1)))
        for _ in range(3):
            runtime_client.invoke_endpoint(EndpointName=endpoint, Body=b"{}", ContentType="application/json")
        request = job_request(job, training_image, role_arn, bucket,
                              HyperParameters={"epochs": "120", "epoch_seconds": "0.5"})
        request["AlgorithmSpecification"]["MetricDefinitions"] = [
            {"Name": "train_loss", "Regex": "train_loss=([0-9.]+)"}]
        sagemaker_client.create_training_job(**request)
        try:
            wait_secondary(sagemaker_client, job, "Training")

            page.goto("/_smemu/")
            job_row = page.locator(f'#jobs tr[data-name="{job}"]')
            expect(job_row.locator('[data-status="InProgress"]')).to_be_visible()
            expect(job_row).to_contain_text("Training")
            expect(page.locator(f'#endpoints tr[data-name="{endpoint}"] [data-status="InService"]')).to_be_visible()

            job_row.get_by_role("link", name=job).click()
            expect(page.locator("h1")).to_contain_text(job)
            expect(page.locator("#logs")).to_contain_text("epoch 2/120")
            expect(page.locator("#logs")).to_contain_text(f"{job}/algo-1-")
            expect(page.locator("#timeline li").first).to_contain_text("Starting")
            expect(page.locator("#timeline")).to_contain_text("Training")
            chart = page.locator('svg.chart[data-metric="train_loss"]')
            expect(chart).to_be_visible()
            page.wait_for_function(
                "() => Number(document.querySelector('svg.chart[data-metric=\"train_loss\"]')"
                "?.dataset.points || 0) >= 2")
            expect(chart.locator("polyline")).to_have_count(1)

            page.get_by_role("link", name="← everything").click()
            page.locator(f'#endpoints tr[data-name="{endpoint}"]').get_by_role("link", name=endpoint).click()
            variant = page.locator('#variants tr[data-variant="AllTraffic"]')
            expect(variant.locator(".invocations")).to_have_text("3")
            expect(variant.locator(".latency")).to_contain_text(" ms")
            expect(variant.locator(".instance [data-status='Healthy']")).to_be_visible()
            expect(page.locator("#logs")).to_contain_text("model loaded")
        finally:
            sagemaker_client.stop_training_job(TrainingJobName=job)
            wait_terminal(sagemaker_client, job)
    foreign = [url for url in page.requests if not url.startswith(endpoint_url + "/_smemu/")]
    assert foreign == [], "the dashboard asked something of another origin or path"
    assert page.errors == []
    # The chart's numbers are CloudWatch's: the CloudWatch API on the same port reads them too.
    cloudwatch = make_client("cloudwatch", endpoint_url)
    now = datetime.datetime.now(datetime.timezone.utc)
    stats = cloudwatch.get_metric_statistics(
        Namespace="/aws/sagemaker/TrainingJobs", MetricName="train_loss",
        Dimensions=[{"Name": "TrainingJobName", "Value": job}], StartTime=now - datetime.timedelta(minutes=10),
        EndTime=now + datetime.timedelta(minutes=1), Period=600, Statistics=["SampleCount", "Minimum"])
    assert stats["Datapoints"] and stats["Datapoints"][0]["SampleCount"] >= 2
    invocations = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=[
            {"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=1), Period=600,
        Statistics=["Sum"])
    assert [d["Sum"] for d in invocations["Datapoints"]] == [3.0]


def test_dashboard_shows_a_multi_model_endpoints_loaded_models(
    page: Any, sagemaker_client: Any, runtime_client: Any, s3_client: Any, bucket: str, role_arn: str
) -> None:
    import io
    import json
    import tarfile

    from playwright.sync_api import expect

    engine = docker.from_env()
    image = build_sample_image("multi_model", client=engine)
    for target in ("alpha.tar.gz", "beta.tar.gz"):
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            data = json.dumps({"name": target}).encode()
            info = tarfile.TarInfo("model.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        s3_client.put_object(Bucket=bucket, Key=f"mme/{target}", Body=archive.getvalue())
    with Endpoints(sagemaker_client, s3_client, bucket, image, engine, role_arn) as endpoints:
        model = endpoints.model(Mode="MultiModel", ModelDataUrl=f"s3://{bucket}/mme/")
        name = endpoints.endpoint(endpoints.config(("AllTraffic", model, 1.0, 1)))
        for target in ("alpha.tar.gz", "beta.tar.gz", "alpha.tar.gz"):
            runtime_client.invoke_endpoint(EndpointName=name, TargetModel=target, Body=b"{}")
        page.goto(f"/_smemu/#/r/endpoint/{name}")
        models = page.locator("#models")
        expect(models.locator("tr", has_text="alpha.tar.gz")).to_contain_text("Loaded")
        expect(models.locator("tr", has_text="beta.tar.gz")).to_be_visible()
        expect(page.locator('#variants tr[data-variant="AllTraffic"] .invocations')).to_have_text("3")
    assert page.errors == []
