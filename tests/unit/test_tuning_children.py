"""What a tuning job's training job definitions turn into (emulator/tuning/children.py)."""

from __future__ import annotations

from emulator.tuning.children import resource_config


def test_resource_config_is_taken_as_given() -> None:
    given = {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 30}
    assert resource_config({"ResourceConfig": given}) == given


def test_the_sdks_tuning_resource_config_becomes_a_resource_config() -> None:
    tuning = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30, "VolumeKmsKeyId": "k"}
    assert resource_config({"HyperParameterTuningResourceConfig": tuning}) == tuning


def test_prioritized_instance_configs_use_the_first() -> None:
    tuning = {"AllocationStrategy": "Prioritized", "InstanceConfigs": [
        {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 20}]}
    assert resource_config({"HyperParameterTuningResourceConfig": tuning}) == {
        "InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10}


def test_no_resource_config_at_all() -> None:
    assert resource_config({}) is None
