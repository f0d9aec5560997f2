"""The emulator dies (SIGKILL) while a training job runs; the next start settles the job.

The job ends Failed with a reason a user can act on, and its container and scratch files are
gone: nothing of the old run is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from emulator.runtime.naming import home_id
from tests.conftest import create_sagemaker_role, free_port, make_client, unique_name
from tests.integration.test_training_helpers import (
    job_request,
    leftovers,
    wait_secondary,
    wait_terminal,
)

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers"]


class Serve:
    """``smemu serve`` in its own process, so the test can kill it like a crash would."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "SMEMU_HOME": str(self.home), "SMEMU_PORT": str(self.port)}
        with (self.home / "serve.log").open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "serve"],
                                            stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                make_client("sagemaker", self.url).list_training_jobs()
                return
            except (BotoCoreError, ClientError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.home / "serve.log").read_text()[-3000:])
                time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path)
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=60)


def test_job_running_when_the_emulator_dies_is_failed_and_cleaned_up(serve: Serve, training_image: str,
                                                                     docker_client: Any) -> None:
    serve.start()
    make_client("s3", serve.url).create_bucket(Bucket="restart-bucket")
    name = unique_name("train-crash")
    sagemaker = make_client("sagemaker", serve.url)
    sagemaker.create_training_job(**job_request(name, training_image, create_sagemaker_role(serve.url),
                                                "restart-bucket", HyperParameters={"sleep_seconds": "120"}))
    wait_secondary(sagemaker, name, "Training")
    deadline = time.monotonic() + 30
    own = f"container smemu-{home_id(serve.home)}-train-{name}-algo-1"  # the home id in the name
    while own not in leftovers(docker_client, name):
        assert time.monotonic() < deadline, "the job's container never appeared"
        time.sleep(0.1)

    serve.kill()
    assert leftovers(docker_client, name), "the container outlives the killed emulator"
    serve.start()

    job = wait_terminal(make_client("sagemaker", serve.url), name, timeout=10)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"].startswith("InternalServerError: The emulator stopped while the training job")
    assert leftovers(docker_client, name) == []
    assert not (serve.home / "work" / "training" / name).exists()
