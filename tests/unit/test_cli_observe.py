"""`smemu status` / `smemu logs` without an emulator: where they look, what they print, how
they fail."""

from __future__ import annotations

import argparse

import pytest

from emulator import cli_observe
from emulator.cli import build_parser
from tests.conftest import free_port


def args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**{"endpoint_url": None, "port": None, **values})


def test_the_emulator_is_found_by_flag_then_port_then_aws_endpoint_url_then_settings() -> None:
    env = {"AWS_ENDPOINT_URL": "http://localhost:4700/", "SMEMU_PORT": "4800"}
    assert cli_observe.emulator_url(args(endpoint_url="http://127.0.0.1:4900/", port=5000), env) == \
        "http://127.0.0.1:4900"
    assert cli_observe.emulator_url(args(port=5000), env) == "http://localhost:5000"
    assert cli_observe.emulator_url(args(), env) == "http://localhost:4700"
    assert cli_observe.emulator_url(args(), {"SMEMU_PORT": "4800"}) == "http://localhost:4800"


def test_no_emulator_is_one_clear_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for argv in (["status", "--endpoint-url", url], ["logs", "job", "--endpoint-url", url],
                 ["models", "ep", "--endpoint-url", url]):
        parsed = build_parser().parse_args(argv)
        assert parsed.func(parsed) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"smemu: no sagemaker-emulator answers on {url}") and "Traceback" not in err
        assert "smemu up" in err and err.count("\n") == 1


def test_logs_kinds_are_the_kinds_table() -> None:
    parsed = build_parser().parse_args(["logs", "j", "--kind", "tuning", "-f"])
    assert (parsed.kind, parsed.follow) == ("tuning", True)
    assert set(cli_observe.KIND_CHOICES) == {"training", "processing", "transform", "tuning", "endpoint"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["logs", "j", "--kind", "notebook"])


def test_final_line_names_the_status_and_the_reason() -> None:
    page = {"Kind": "training-job", "Name": "j", "Status": "Failed", "SecondaryStatus": "Failed",
            "FailureReason": "AlgorithmError: boom"}
    assert cli_observe.final_line(page) == "training job j: Failed: AlgorithmError: boom"
    page = {"Kind": "hyper-parameter-tuning-job", "Name": "t", "Status": "InProgress", "SecondaryStatus": None}
    assert cli_observe.final_line(page) == "tuning job t: InProgress"
    page = {"Kind": "training-job", "Name": "j", "Status": "InProgress", "SecondaryStatus": "Downloading"}
    assert cli_observe.final_line(page) == "training job j: InProgress (Downloading)"


def test_status_table_shows_jobs_endpoint_instances_ports_and_reasons() -> None:
    status = {
        "Emulator": {"Version": "1.0", "EndpointUrl": "http://localhost:4570", "Pid": 7, "Home": "/h",
                     "S3": "embedded", "Dashboard": "http://localhost:4570/_smemu/"},
        "Jobs": [{"Kind": "training-job", "Name": "j", "Status": "Failed", "SecondaryStatus": "Failed",
                  "Instances": "ml.m5.large x 1", "CreationTime": 100.0, "StartTime": 100.0, "EndTime": 112.0,
                  "FailureReason": "AlgorithmError: boom"}],
        "Endpoints": [{"Name": "ep", "Status": "InService", "Invocations": {"AllTraffic": {"Invocations": 4}},
                       "Fleet": {"Active": {"Variants": [{
                           "VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "Serverless": False,
                           "Instances": [{"InstanceId": "i-1", "Health": "Healthy", "Containers": [
                               {"Hostname": "primary", "Address": "127.0.0.1:49153", "Port": 8080}]}]}]}}}],
    }
    text = "\n".join(cli_observe.format_status(status))
    assert "home       /h" in text and "dashboard  http://localhost:4570/_smemu/" in text
    job_line = next(line for line in text.splitlines() if line.startswith("training-job"))
    assert job_line.split()[:4] == ["training-job", "j", "Failed", "Failed"] and job_line.endswith("12 s")
    assert "  j: AlgorithmError: boom" in text
    endpoint_line = next(line for line in text.splitlines() if line.startswith("ep "))
    assert endpoint_line.split() == ["ep", "InService", "AllTraffic", "(ml.m5.large)", "i-1", "Healthy", "primary",
                                     "127.0.0.1:49153", "(:8080)", "4"]
    empty = "\n".join(cli_observe.format_status({**status, "Jobs": [], "Endpoints": []}))
    assert "JOBS: none" in empty and "ENDPOINTS: none" in empty
