"""What each host sees: host names, config files, container specs and instance resources."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest

from emulator.instances import GIB, instance_resources
from emulator.training.containers import HostFolders, command_and_entrypoint, host_spec
from emulator.training.layout import (
    checkpoint_dir,
    input_data_config_json,
    instance_count,
    plan_hosts,
    resource_config_json,
    write_config_files,
)

GROUPS = {"InstanceGroups": [
    {"InstanceGroupName": "ctl", "InstanceType": "ml.m5.large", "InstanceCount": 1},
    {"InstanceGroupName": "gpu", "InstanceType": "ml.g5.xlarge", "InstanceCount": 10},
]}


def test_hosts_are_numbered_across_groups_and_sorted_as_text() -> None:
    hosts = plan_hosts(GROUPS)
    assert [(h.name, h.group, h.instance_type) for h in hosts[:2]] == [
        ("algo-1", "ctl", "ml.m5.large"), ("algo-2", "gpu", "ml.g5.xlarge")]
    assert instance_count(GROUPS) == 11 == len(hosts)
    config = resource_config_json(hosts[1], hosts)
    assert config["hosts"][:3] == ["algo-1", "algo-10", "algo-11"], "SageMaker sorts host names as text"
    assert config["current_group_name"] == "gpu" and config["network_interface_name"] == "eth0"
    assert config["instance_groups"][0] == {"instance_group_name": "ctl", "instance_type": "ml.m5.large",
                                            "hosts": ["algo-1"]}
    single = plan_hosts({"InstanceType": "ml.m5.large", "InstanceCount": 1})
    assert resource_config_json(single[0], single)["current_group_name"] == "homogeneousCluster"


def test_config_files(tmp_path: Path) -> None:
    request = {
        "HyperParameters": {"epochs": "3", "lr": "0.1"},
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": GROUPS,
        "InputDataConfig": [
            {"ChannelName": "train", "ContentType": "text/csv", "InputMode": "FastFile",
             "DataSource": {"S3DataSource": {"S3Uri": "s3://b/t", "S3DataDistributionType": "ShardedByS3Key"}}},
            {"ChannelName": "gpu-only", "RecordWrapperType": "RecordIO", "InputMode": "Pipe",
             "DataSource": {"S3DataSource": {"S3Uri": "s3://b/g", "InstanceGroupNames": ["gpu"]}}},
        ],
    }
    hosts = plan_hosts(GROUPS)
    write_config_files(tmp_path, request, hosts[0], hosts)
    assert json.loads((tmp_path / "hyperparameters.json").read_text()) == {"epochs": "3", "lr": "0.1"}
    assert json.loads((tmp_path / "inputdataconfig.json").read_text()) == {
        "train": {"ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key",
                  "RecordWrapperType": "None"}}
    gpu = input_data_config_json(request["InputDataConfig"], request["AlgorithmSpecification"], hosts[1], hosts)
    assert gpu["gpu-only"] == {"TrainingInputMode": "Pipe", "S3DistributionType": "FullyReplicated",
                               "RecordWrapperType": "RecordIO"}
    assert json.loads((tmp_path / "resourceconfig.json").read_text())["current_host"] == "algo-1"
    assert checkpoint_dir({}) is None
    assert checkpoint_dir({"CheckpointConfig": {"S3Uri": "s3://b/c"}}) == "/opt/ml/checkpoints"
    assert checkpoint_dir({"CheckpointConfig": {"S3Uri": "s3://b/c", "LocalPath": "/ckpt/"}}) == "/ckpt"


def test_command_and_entrypoint() -> None:
    assert command_and_entrypoint({}) == (["train"], None)
    assert command_and_entrypoint({"ContainerArguments": ["a", "b"]}) == (["a", "b"], None)
    assert command_and_entrypoint({"ContainerEntrypoint": ["python", "x.py"]}) == (None, ["python", "x.py"])
    assert command_and_entrypoint({"ContainerEntrypoint": ["p"], "ContainerArguments": ["1"]}) == (["1"], ["p"])


def test_host_spec(tmp_path: Path) -> None:
    request = {"TrainingJobName": "job", "AlgorithmSpecification": {"TrainingImage": "img"},
               "Environment": {"A": "1", "AWS_REGION": "mine"}, "EnableNetworkIsolation": True}
    hosts = plan_hosts({"InstanceType": "ml.t3.medium", "InstanceCount": 1})
    folders = HostFolders(tmp_path / "input", {"train": tmp_path / "train"}, None)
    spec = host_spec(request, "img", hosts[0], hosts, folders, arn="arn:x", region="eu-west-1", home_id="h",
                     checkpoint_path="/opt/ml/checkpoints", resource_limits=True, gpu_device_ids=["all"])
    assert spec.name == "smemu-train-job-algo-1" and spec.hostname == "algo-1" and spec.command == ["train"]
    assert spec.environment == {"TRAINING_JOB_NAME": "job", "TRAINING_JOB_ARN": "arn:x", "AWS_REGION": "mine",
                                "AWS_DEFAULT_REGION": "eu-west-1", "A": "1"}
    assert spec.network_isolated and spec.network is None
    assert spec.memory_bytes == 4 * GIB and spec.cpus == 2.0 and spec.gpu_device_ids is None
    assert spec.labels == {"smemu.kind": "training-job", "smemu.name": "job", "smemu.home": "h", "smemu.host": "algo-1"}
    mounts = {f.target: (f.read_only, f.private) for f in spec.folders}
    assert mounts == {"/opt/ml/input": (True, False), "/opt/ml/input/data/train": (True, False),
                      "/opt/ml/model": (False, True), "/opt/ml/output": (False, True),
                      "/opt/ml/output/data": (False, True), "/opt/ml/checkpoints": (False, True)}
    small = host_spec(request, "img", hosts[0], hosts, folders, arn="a", region="r", home_id="h",
                      checkpoint_path=None, resource_limits=False, gpu_device_ids=None, memory_limit_mb=100,
                      extra_environment={"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://x", "A": "platform"})
    assert small.memory_bytes == 100 * 1024**2 and small.cpus is None
    assert small.environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://x"
    assert small.environment["A"] == "1", "the request's Environment wins over the platform's additions"
    multi = plan_hosts({"InstanceType": "ml.g5.xlarge", "InstanceCount": 2})
    gpu = host_spec(request, "img", multi[1], multi, folders, arn="a", region="r", home_id="h",
                    checkpoint_path=None, resource_limits=True, gpu_device_ids=["all"])
    assert gpu.gpu_device_ids == ["all"] and gpu.network == "smemu-train-job" and not gpu.network_isolated


def test_instance_resources_cover_every_training_instance_type() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    for instance_type in model.shape_for("TrainingInstanceType").enum:
        vcpus, memory, gpus = instance_resources(instance_type)
        assert vcpus >= 2 and memory >= 4 * GIB and gpus >= 0, instance_type
    assert instance_resources("ml.m5.large") == (2, 8 * GIB, 0)
    assert instance_resources("ml.p3.8xlarge").gpus == 4
    assert instance_resources("ml.g6.xlarge").gpus == 1
    with pytest.raises(ValueError):
        instance_resources("m5.large")
