"""A restart of ``smemu serve`` keeps every resource and every object (kill -9: test_durability.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import SAGEMAKER_TRUST_POLICY, free_port, make_client


class ServeProcess:
    """``smemu serve`` as a separate process, as a user runs it."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.home / "serve.log").open("ab")
        env = {**os.environ, "SMEMU_HOME": str(self.home), "SMEMU_PORT": str(self.port)}
        self.process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve"],
                                        stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                make_client("sts", self.url).get_caller_identity()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.home / "serve.log").read_text()[-3000:])
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=60)


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(tmp_path, free_port())
    try:
        yield server
    finally:
        server.stop()


def test_restart_keeps_resources_and_objects(serve: ServeProcess) -> None:
    serve.start()
    s3 = make_client("s3", serve.url)
    s3.create_bucket(Bucket="kept-bucket")
    s3.put_object(Bucket="kept-bucket", Key="data/1.bin", Body=b"\x00\x01" * 50_000)
    make_client("iam", serve.url).create_role(RoleName="KeptRole", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    make_client("ecr", serve.url).create_repository(repositoryName="kept-repo")
    make_client("logs", serve.url).create_log_group(logGroupName="/kept/group")
    make_client("sagemaker", serve.url).create_experiment(ExperimentName="kept-experiment")

    serve.stop()
    assert serve.process is not None and serve.process.returncode == 0
    serve.start()

    s3 = make_client("s3", serve.url)
    assert s3.get_object(Bucket="kept-bucket", Key="data/1.bin")["Body"].read() == b"\x00\x01" * 50_000
    assert make_client("iam", serve.url).get_role(RoleName="KeptRole")["Role"]["RoleName"] == "KeptRole"
    repos = make_client("ecr", serve.url).describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repos] == ["kept-repo"]
    groups = make_client("logs", serve.url).describe_log_groups()["logGroups"]
    assert "/kept/group" in [g["logGroupName"] for g in groups]
    experiment = make_client("sagemaker", serve.url).describe_experiment(ExperimentName="kept-experiment")
    assert experiment["ExperimentName"] == "kept-experiment"


def test_up_starts_in_the_background_and_down_stops_it(tmp_path: Path) -> None:
    """`smemu up` (what scripts/setup ends with) leaves the emulator answering; `down` stops it."""
    port = free_port()
    up = subprocess.run([sys.executable, "-m", "emulator.cli", "up", "--home", str(tmp_path), "--port", str(port)],
                        capture_output=True, text=True, timeout=120)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"export AWS_ENDPOINT_URL=http://localhost:{port}" in up.stdout
        url = f"http://127.0.0.1:{port}"
        assert make_client("sagemaker", url).list_training_jobs()["TrainingJobSummaries"] == []
    finally:
        down = subprocess.run([sys.executable, "-m", "emulator.cli", "down", "--home", str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped sagemaker-emulator" in down.stdout
    assert not (tmp_path / "smemu.pid").exists()
