"""The contract checker against the sample containers: every reference passes, every broken one
fails exactly its rule, through a real emulator, real containers and the real Docker engine.

All checks of the session run at once (threads) through one emulator with short SIGTERM graces
and /ping deadline, so the broken variants that wait for a SIGKILL or a deadline cost seconds,
not minutes; each image is built once per content hash.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emulator.contract import CheckOptions, EmulatorTarget, Outcome, Report, render_table, rules_of, run_check
from emulator.contract.session import check_settings
from tests.integration.sample_images import build_broken_image, build_sample_image

pytestmark = pytest.mark.docker

SAMPLES = {"training": "training", "serving": "serving", "multi-model": "multi_model", "processing": "processing",
           "transform": "serving"}
"""The sample container each kind's reference (and broken variants) is built from."""
EXECUTION_PARAMETERS = '{"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}'
GRACE = 6.0
STARTUP = 20.0
REFERENCE = "reference"
CASES = [(kind, REFERENCE) for kind in SAMPLES] + [(kind, rule.id) for kind in SAMPLES for rule in rules_of(kind)]


def options(kind: str, data: Path) -> CheckOptions:
    """What each kind's check is given (the same for the reference and every broken variant)."""
    if kind == "training":
        return CheckOptions(channels={"train": str(data / "train.csv")},
                            hyperparameters={"epochs": "2", "input_format": "csv"},
                            error_hyperparameters={"fail": "1"}, error_channels={"train": str(data / "bad.csv")},
                            stop_hyperparameters={"sleep_seconds": "60"}, stop_after=4.0, job_timeout=300)
    if kind == "serving":
        return CheckOptions(content_types=("application/json", "text/csv"), concurrency=6, requests_per_client=2,
                            job_timeout=300)
    if kind == "processing":
        return CheckOptions(channels={"data": str(data / "train.csv")}, error_arguments=("--fail",),
                            stop_arguments=("--sleep-seconds", "60"), stop_after=4.0, job_timeout=300)
    if kind == "transform":
        return CheckOptions(content_types=("text/csv",), job_timeout=300, environment={
            "SMEMU_SAMPLE_BATCH": "sum", "SMEMU_SAMPLE_EXECUTION_PARAMETERS": EXECUTION_PARAMETERS})
    return CheckOptions(job_timeout=300)


@pytest.fixture(scope="module")
def contract_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorTarget]:
    """One emulator for every check of the module, with short graces and /ping deadline.

    Its account has a raised instance quota (SMEMU_INSTANCE_QUOTAS): the module runs every case
    at once, each check with its own jobs and endpoints, which can be more instances of one type
    than the default quota of 20 allows at a given moment; one ResourceLimitExceeded would fail
    every case of the module.
    """
    from emulator.quotas import parse_quotas
    from emulator.server import EmulatorServer

    settings = check_settings(tmp_path_factory.mktemp("contract-home"), startup_timeout=STARTUP,
                              training_stop_grace=GRACE, endpoint_stop_grace=GRACE)
    settings = settings.with_overrides(instance_quotas=parse_quotas("*=200"))
    with EmulatorServer(settings):
        yield EmulatorTarget.for_settings(settings)


@pytest.fixture(scope="module")
def reports(contract_emulator: EmulatorTarget, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Report]:
    """Every case's report: the reference images first, then each variant built and checked in parallel."""
    data = tmp_path_factory.mktemp("contract-data")
    (data / "train.csv").write_text("1,2\n3,4\n5,6\n")
    (data / "bad.csv").write_text("1,2\nnot,numbers\n")
    references = {sample: build_sample_image(sample) for sample in set(SAMPLES.values())}

    def check(kind: str, variant: str) -> Report:
        image = references[SAMPLES[kind]] if variant == REFERENCE else build_broken_image(SAMPLES[kind], variant)
        return run_check(contract_emulator, image, kind, options(kind, data))

    with ThreadPoolExecutor(max_workers=int(os.environ.get("SMEMU_TEST_CONTRACT_WORKERS", "8"))) as pool:
        futures = {case: pool.submit(check, *case) for case in CASES}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize(("kind", "variant"), CASES, ids=[f"{k}:{v}" for k, v in CASES])
def test_reference_passes_and_each_broken_variant_fails_exactly_its_rule(
        reports: dict[tuple[str, str], Report], kind: str, variant: str) -> None:
    report = reports[(kind, variant)]
    table = render_table(report, 160)
    if variant == REFERENCE:
        assert report.ids(Outcome.FAIL) == [], table
        assert report.ids(Outcome.SKIP) == [], table  # the reference is checked by every rule
        assert report.exit_code == 0
    else:
        assert report.ids(Outcome.FAIL) == [variant], table
        assert report.exit_code == 1


def test_the_training_check_reports_what_it_saw(reports: dict[tuple[str, str], Report]) -> None:
    evidence = {r.rule.id: r.verdict.evidence for r in reports[("training", REFERENCE)].results}
    assert "hyperparameters.json" in evidence["training.hyperparameters"]
    assert "train.csv" in evidence["training.channels"]
    assert "model.json" in evidence["training.model-dir"]
    assert "sample trainer failed on purpose" in evidence["training.failure-file"] or "InputError" in evidence[
        "training.failure-file"]
    broken = {r.rule.id: r.verdict.evidence for r in reports[("training", "training.sigterm")].results}
    assert "SIGKILL" in broken["training.sigterm"] and "137" in broken["training.sigterm"]


def test_the_serving_check_reports_ports_and_load(reports: dict[tuple[str, str], Report]) -> None:
    evidence = {r.rule.id: r.verdict.evidence for r in reports[("serving", REFERENCE)].results}
    assert "SAGEMAKER_SAFE_PORT_RANGE=21000-21999" in evidence["serving.safe-port-range"]
    assert "12 requests from 6 concurrent clients" in evidence["serving.concurrency"]
    broken = {r.rule.id: r.verdict.evidence for r in reports[("serving", "serving.safe-port-range")].results}
    assert "9000" in broken["serving.safe-port-range"]


def test_smemu_check_exits_1_names_the_broken_rule_and_writes_junit(tmp_path: Path) -> None:
    """The console script end to end, with its own emulator in its own process."""
    image = build_broken_image("training", "training.model-dir")
    (tmp_path / "train.csv").write_text("1,2\n")
    junit = tmp_path / "report.xml"
    done = subprocess.run(
        [sys.executable, "-m", "emulator.cli", "check", image, "--as", "training",
         "--channel", f"train={tmp_path / 'train.csv'}", "--hyperparameter", "epochs=1",
         "--error-hyperparameter", "fail=1", "--stop-hyperparameter", "sleep_seconds=60",
         "--stop-timeout", "5", "--junit-xml", str(junit)],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "training.model-dir" in done.stdout and "FAIL" in done.stdout and "model.tar.gz is empty" in done.stdout
    assert "your-algorithms-training-algo-output.html" in done.stdout
    suite = ET.parse(junit).getroot()
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["training.model-dir"]


def test_smemu_check_exits_0_for_a_conforming_image_and_2_for_bad_options(tmp_path: Path) -> None:
    image = build_sample_image("serving")
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "check", image, "--as", "serving",
                           "--stop-timeout", "5"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed, 0 failed, 0 skipped" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "emulator.cli", "check", image, "--as", "serving",
                          "--content-type", "image/png"], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "--payload" in bad.stderr
