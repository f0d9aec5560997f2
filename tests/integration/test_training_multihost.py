"""Multi-host training: algo-1..N on a per-job network, sharding, heterogeneous clusters."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.runtime.gateway_network import GATEWAY_ADDRESS

from tests.conftest import unique_name
from tests.integration.runtimes import Runtime
from tests.integration.test_training_helpers import (
    job_request,
    leftovers,
    log_messages,
    s3_channel,
    tar_members,
    wait_terminal,
)

pytestmark = pytest.mark.docker
pytest_plugins = ["tests.integration.test_training_helpers", "tests.integration.runtimes"]


@pytest.fixture(scope="module")
def host_addresses() -> Iterator[list[str]]:
    """``address:port`` of a listener on every IPv4 address of this machine and the container gateway.

    What a job's container might reach of the host: its services (the listener stands in for
    them); tests add the emulator's own port at the gateway.
    """
    listener = socket.create_server(("0.0.0.0", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                listener.accept()[0].close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    found = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    # Bridges of other tests' job networks come and go: the machine's own interfaces and the gateway stay.
    addresses = sorted({address for interface, address in re.findall(r"^\d+:\s+(\S+)\s+inet (\d+\.\d+\.\d+\.\d+)/",
                                                                         found, re.MULTILINE)
                        if not address.startswith("127.") and not interface.startswith(("br-", "veth"))})
    try:
        yield [f"{a}:{port}" for a in addresses] + [f"{GATEWAY_ADDRESS}:{port}"]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _host_reports(s3_client: Any, bucket: str, name: str) -> dict[str, dict[str, Any]]:
    members = tar_members(s3_client, bucket, f"output/{name}/output/model.tar.gz")
    return {k.split("/")[1][: -len(".json")]: json.loads(v) for k, v in members.items() if k.startswith("hosts/")}


def test_two_hosts_talk_to_each_other_and_get_their_shards(runtime: Runtime, training_image: str,
                                                           host_addresses: list[str]) -> None:
    sagemaker_client, s3_client, logs_client = runtime.sagemaker, runtime.s3, runtime.logs
    bucket, role_arn = runtime.bucket(), runtime.role_arn
    reachable = [*host_addresses, f"{GATEWAY_ADDRESS}:{runtime.server.port}"]
    keys = [f"shards/part-{i}.txt" for i in range(5)]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=f"{key}\n".encode())
    s3_client.put_object(Bucket=bucket, Key="common/vocab.txt", Body=b"a\nb\n")
    name = unique_name("train-2hosts")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket,
        HyperParameters={"peer_check": "1", "peer_timeout_seconds": "30", "reach_check": ",".join(reachable)},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
        InputDataConfig=[
            s3_channel("train", f"s3://{bucket}/shards/", source={"S3DataDistributionType": "ShardedByS3Key"}),
            s3_channel("vocab", f"s3://{bucket}/common/"),
        ]))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    reports = _host_reports(s3_client, bucket, name)
    assert sorted(reports) == ["algo-1", "algo-2"]
    for host, report in reports.items():
        assert report["hostname"] == host
        assert report["resource_config"]["current_host"] == host
        assert report["resource_config"]["hosts"] == ["algo-1", "algo-2"]
        assert report["peer_check"]["ok"], report["peer_check"]
        assert report["channels"]["vocab"]["file_count"] == 1
        assert report["input_data_config"]["train"]["S3DistributionType"] == "ShardedByS3Key"
    assert reports["algo-1"]["peer_check"]["answered"] == {"algo-2": "algo-2"}
    # Without isolation a job reaches the container gateway and this machine (as on SageMaker, the internet).
    assert all(v == "open" for v in reports["algo-1"]["reach_check"].values()), reports["algo-1"]["reach_check"]
    shards = {h: sorted(f["path"] for f in r["channels"]["train"]["files"]) for h, r in reports.items()}
    assert shards == {"algo-1": ["part-0.txt", "part-2.txt", "part-4.txt"], "algo-2": ["part-1.txt", "part-3.txt"]}

    streams = log_messages(logs_client, name)
    assert sorted(s.split("/")[1].rsplit("-", 1)[0] for s in streams) == ["algo-1", "algo-2"]
    assert runtime.leftovers(name) == []


def test_heterogeneous_cluster_and_isolated_peers(sagemaker_client: Any, s3_client: Any, bucket: str,
                                                  role_arn: str, training_image: str, docker_client: Any,
                                                  host_addresses: list[str], emulator_settings: Any) -> None:
    """InstanceGroups number hosts across groups; a channel can go to some groups only.

    With EnableNetworkIsolation the hosts still reach each other (an internal network), and
    nothing else: not this machine at any of its addresses, not the container gateway.
    """
    s3_client.put_object(Bucket=bucket, Key="workers/data.txt", Body=b"w\n")
    reachable = [*host_addresses, f"{GATEWAY_ADDRESS}:{emulator_settings.port}"]
    name = unique_name("train-hetero")
    sagemaker_client.create_training_job(**job_request(
        name, training_image, role_arn, bucket, EnableNetworkIsolation=True,
        HyperParameters={"peer_check": "1", "peer_timeout_seconds": "30", "reach_check": ",".join(reachable)},
        ResourceConfig={"VolumeSizeInGB": 1, "InstanceGroups": [
            {"InstanceGroupName": "controller", "InstanceType": "ml.m5.large", "InstanceCount": 1},
            {"InstanceGroupName": "workers", "InstanceType": "ml.c5.xlarge", "InstanceCount": 1}]},
        InputDataConfig=[s3_channel("work", f"s3://{bucket}/workers/", source={"InstanceGroupNames": ["workers"]})]))
    job = wait_terminal(sagemaker_client, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")

    reports = _host_reports(s3_client, bucket, name)
    controller, worker = reports["algo-1"], reports["algo-2"]
    assert controller["resource_config"]["current_group_name"] == "controller"
    assert worker["resource_config"]["current_group_name"] == "workers"
    assert worker["resource_config"]["current_instance_type"] == "ml.c5.xlarge"
    assert worker["resource_config"]["instance_groups"] == [
        {"instance_group_name": "controller", "instance_type": "ml.m5.large", "hosts": ["algo-1"]},
        {"instance_group_name": "workers", "instance_type": "ml.c5.xlarge", "hosts": ["algo-2"]}]
    assert "work" not in controller["input_data_config"] and "work" not in controller["channels"]
    assert worker["channels"]["work"]["file_count"] == 1
    assert controller["peer_check"]["ok"] and worker["peer_check"]["ok"]
    for report in (controller, worker):
        assert set(report["reach_check"]) == set(reachable)
        assert not [a for a, v in report["reach_check"].items() if v == "open"], report["reach_check"]
    assert leftovers(docker_client, name) == []
