"""Two emulators with different homes on one Docker engine never touch each other's resources.

Each runs as ``smemu serve`` in its own process (as two users, or a user and a CI job, would),
and both run a two-host training job of the same name at the same time: the containers and
job networks carry each emulator's home id in their names and labels, so neither replaces or
removes the other's, and both jobs complete.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from emulator.runtime.naming import home_id
from tests.conftest import SAGEMAKER_TRUST_POLICY, free_port, make_client
from tests.integration.sample_images import build_sample_image
from tests.integration.test_restart import ServeProcess
from tests.integration.test_training_helpers import job_request, log_messages, wait_terminal

pytestmark = pytest.mark.docker

JOB = "same-name-on-two-emulators"


@pytest.fixture()
def two_emulators(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    servers = []
    for name in ("first", "second"):
        home = tmp_path / name
        home.mkdir()
        servers.append(ServeProcess(home, free_port()))
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def _objects(engine: docker.DockerClient) -> tuple[list[Any], list[Any]]:
    selector = {"label": f"smemu.name={JOB}"}
    return engine.containers.list(filters=selector), engine.networks.list(filters=selector)


def test_two_emulators_run_a_job_of_the_same_name_and_both_complete(two_emulators: list[ServeProcess]) -> None:
    image = build_sample_image("training")
    engine = docker.from_env()
    for server in two_emulators:
        iam, s3 = make_client("iam", server.url), make_client("s3", server.url)
        role = iam.create_role(RoleName="Trainer", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
        s3.create_bucket(Bucket="data")
        make_client("sagemaker", server.url).create_training_job(**job_request(
            JOB, image, role, "data",
            HyperParameters={"sleep_seconds": "6", "peer_check": "1", "peer_timeout_seconds": "60"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1}))

    homes = {home_id(server.home) for server in two_emulators}
    deadline = time.monotonic() + 120
    while True:  # both jobs' hosts running side by side
        containers, networks = _objects(engine)
        if len(containers) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {c.labels["smemu.home"] for c in containers} == homes, [c.name for c in containers]
    assert all(c.labels["smemu.home"] in c.name for c in containers)
    assert {n.attrs["Labels"]["smemu.home"] for n in networks} == homes
    assert all(n.attrs["Labels"]["smemu.home"] in n.name for n in networks)

    for server in two_emulators:
        job = wait_terminal(make_client("sagemaker", server.url), JOB, timeout=240)
        logs = log_messages(make_client("logs", server.url), JOB)
        assert job["TrainingJobStatus"] == "Completed", "\n".join(
            [str(job.get("FailureReason"))] + [f"{stream}: {line}" for stream, lines in logs.items() for line in lines
                                               if "heartbeat" not in line])
    assert _objects(engine) == ([], [])
    engine.close()
