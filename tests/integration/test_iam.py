"""Role checks and strict-mode S3 evaluation against the running emulator's IAM (moto).

Roles and policies are created through the emulator's IAM API with boto3, as a user would;
emulator/iam.py reads the same in-process moto backends. S3 goes to the store the emulator
uses (embedded or MinIO): strict mode decides before a request is sent, so both behave alike.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import iam
from emulator.config import Settings
from emulator.errors import ValidationException
from emulator.s3 import S3Store
from emulator.training.channels import ChannelError, list_objects
from tests.conftest import SAGEMAKER_TRUST_POLICY, make_client, unique_name

EC2_TRUST_POLICY = SAGEMAKER_TRUST_POLICY.replace("sagemaker.amazonaws.com", "ec2.amazonaws.com")


@pytest.fixture(scope="module")
def iam_client(endpoint_url: str) -> Any:
    return make_client("iam", endpoint_url)


def test_existing_sagemaker_role_passes(role_arn: str, emulator_settings: Settings) -> None:
    for operation in ("CreateTrainingJob", "CreateProcessingJob", "CreateTransformJob", "CreateModel"):
        iam.check_role(role_arn, operation, emulator_settings.account_id, region=emulator_settings.region)


def test_nonexistent_role(emulator_settings: Settings) -> None:
    arn = f"arn:aws:iam::{emulator_settings.account_id}:role/{unique_name('NoSuchRole')}"
    with pytest.raises(ValidationException) as raised:
        iam.check_role(arn, "CreateTrainingJob", emulator_settings.account_id)
    assert raised.value.message == (f"Could not assume role {arn}. Please ensure that the role exists and allows "
                                    f"principal 'sagemaker.amazonaws.com' to assume the role.")


def test_role_without_sagemaker_trust(iam_client: Any, emulator_settings: Settings) -> None:
    arn = iam_client.create_role(RoleName=unique_name("Ec2Role"),
                                 AssumeRolePolicyDocument=EC2_TRUST_POLICY)["Role"]["Arn"]
    with pytest.raises(ValidationException) as raised:
        iam.check_role(arn, "CreateModel", emulator_settings.account_id)
    assert raised.value.message.startswith(f'The execution role ARN "{arn}" is invalid.')
    iam_client.update_assume_role_policy(RoleName=arn.rsplit("/", 1)[1], PolicyDocument=SAGEMAKER_TRUST_POLICY)
    iam.check_role(arn, "CreateModel", emulator_settings.account_id)


def test_strict_mode_refuses_a_channel_until_the_policy_is_attached(
        iam_client: Any, s3_client: Any, bucket: str, emulator_settings: Settings) -> None:
    s3_client.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2\n")
    name = unique_name("StrictRole")
    arn = iam_client.create_role(RoleName=name, AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
    account, region = emulator_settings.account_id, emulator_settings.region
    factory = iam.role_s3_client_factory(S3Store(emulator_settings), arn, account, region, enforce=True)
    channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}}}

    with pytest.raises(ClientError) as raised:
        factory().list_objects_v2(Bucket=bucket, Prefix="train/")
    assert raised.value.response["Error"] == {
        "Code": "AccessDenied",
        "Message": f'User: arn:aws:sts::{account}:assumed-role/{name}/SageMaker is not authorized to perform: '
                   f's3:ListBucket on resource: "arn:aws:s3:::{bucket}" because no identity-based policy allows '
                   f'the s3:ListBucket action'}
    with pytest.raises(ChannelError) as failed:  # how a training job reports it (AWS's FailureReason)
        list_objects(channel, factory(), region, arn)
    assert f'the role "{arn}" has "s3:ListBucket" permissions on bucket "{bucket}"' in str(failed.value)

    iam_client.put_role_policy(RoleName=name, PolicyName="read-train", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/train/*"}]}))
    objects = list_objects(channel, factory(), region, arn)
    assert [o.relative for o in objects] == ["data.csv"]
    assert factory().get_object(Bucket=bucket, Key="train/data.csv")["Body"].read() == b"1,2\n"
    with pytest.raises(ClientError) as raised:  # writing the output is a separate permission
        factory().put_object(Bucket=bucket, Key="output/model.tar.gz", Body=b"")
    assert "s3:PutObject" in raised.value.response["Error"]["Message"]


def test_managed_policy_and_explicit_deny(iam_client: Any, emulator_settings: Settings) -> None:
    name = unique_name("ManagedRole")
    arn = iam_client.create_role(RoleName=name, AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)["Role"]["Arn"]
    policy = iam_client.create_policy(PolicyName=unique_name("s3-all"), PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}))["Policy"]["Arn"]
    iam_client.attach_role_policy(RoleName=name, PolicyArn=policy)
    account = emulator_settings.account_id
    iam.check_s3_access(arn, "s3:PutObject", "any-bucket", "k", account_id=account)
    with pytest.raises(iam.S3AccessDenied) as raised:
        iam.check_s3_access(arn, "s3:DeleteObject", "any-bucket", "k", account_id=account)
    assert raised.value.message.endswith("with an explicit deny in an identity-based policy")
    iam_client.detach_role_policy(RoleName=name, PolicyArn=policy)
    assert iam.evaluate(arn, "s3:PutObject", "arn:aws:s3:::any-bucket/k", account) == iam.IMPLICIT_DENY
