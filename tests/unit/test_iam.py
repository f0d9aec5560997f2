"""Role checks, policy evaluation and container credential tokens against moto's in-memory IAM/STS.

No Docker and no emulator: ``moto.mock_aws`` gives boto3 the same in-process backends that
emulator/iam.py reads, so roles are created exactly as a user would create them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import iam
from emulator.config import Settings
from emulator.credentials import CredentialBroker, InvalidToken, container_environment
from emulator.errors import ValidationException

ACCOUNT = "123456789012"
SAGEMAKER_TRUST: dict[str, Any] = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
EC2_TRUST: dict[str, Any] = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture()
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def make_role(client: Any, name: str, trust: dict[str, Any] = SAGEMAKER_TRUST, path: str = "/") -> str:
    return str(client.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def allow(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# -- role checks ---------------------------------------------------------------------------------------


def test_a_role_sagemaker_may_assume_passes(client: Any) -> None:
    arn = make_role(client, "Good", path="/service-role/")
    for operation in ("CreateTrainingJob", "CreateProcessingJob", "CreateTransformJob", "CreateModel"):
        iam.check_role(arn, operation, ACCOUNT)
    iam.check_role(None, "CreateModel", ACCOUNT)  # ExecutionRoleArn is optional for CreateModel


def test_missing_role_and_wrong_trust_get_awss_messages(client: Any) -> None:
    ec2_only = make_role(client, "Ec2Only", EC2_TRUST)
    missing = f"arn:aws:iam::{ACCOUNT}:role/Nope"
    for arn in (missing, ec2_only):
        with pytest.raises(ValidationException) as raised:
            iam.check_role(arn, "CreateTrainingJob", ACCOUNT)
        assert raised.value.message == (
            f"Could not assume role {arn}. Please ensure that the role exists and allows principal "
            f"'sagemaker.amazonaws.com' to assume the role.")
        with pytest.raises(ValidationException) as raised:
            iam.check_role(arn, "CreateModel", ACCOUNT)
        assert raised.value.message == (
            f'The execution role ARN "{arn}" is invalid. Please ensure that the role exists and that its trust '
            f'relationship policy allows the action "sts:AssumeRole" for the service principal '
            f'"sagemaker.amazonaws.com".')


def test_cross_account_role(client: Any) -> None:
    with pytest.raises(ValidationException) as raised:
        iam.check_role("arn:aws:iam::999999999999:role/Other", "CreateProcessingJob", ACCOUNT)
    assert raised.value.message == "RoleArn: Cross-account pass role is not allowed."


def test_trust_policy_variants(client: Any) -> None:
    listed = make_role(client, "Listed", {"Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole"],
                       "Principal": {"Service": ["ec2.amazonaws.com", "sagemaker.amazonaws.com"]}}]})
    iam.check_role(listed, "CreateTrainingJob", ACCOUNT)
    denied = make_role(client, "Denied", {"Statement": [
        SAGEMAKER_TRUST["Statement"][0],
        {"Effect": "Deny", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:*"}]})
    conditioned = make_role(client, "Conditioned", {"Statement": [{**SAGEMAKER_TRUST["Statement"][0],
                            "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}}}]})
    tag_only = make_role(client, "TagOnly", {"Statement": [{**SAGEMAKER_TRUST["Statement"][0],
                         "Action": "sts:TagSession"}]})
    for arn in (denied, conditioned, tag_only):
        with pytest.raises(ValidationException):
            iam.check_role(arn, "CreateTrainingJob", ACCOUNT)
    own_account = make_role(client, "OwnAccount", {"Statement": [{**SAGEMAKER_TRUST["Statement"][0],
                            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]})
    iam.check_role(own_account, "CreateTrainingJob", ACCOUNT)


# -- identity-policy evaluation ---------------------------------------------------------------------------


def test_no_policy_is_an_implicit_deny_with_awss_message(client: Any) -> None:
    arn = make_role(client, "Bare", path="/service-role/")
    with pytest.raises(iam.S3AccessDenied) as raised:
        iam.check_s3_access(arn, "s3:GetObject", "data", "train/a.csv", account_id=ACCOUNT)
    assert raised.value.message == (
        f'User: arn:aws:sts::{ACCOUNT}:assumed-role/Bare/SageMaker is not authorized to perform: s3:GetObject on '
        f'resource: "arn:aws:s3:::data/train/a.csv" because no identity-based policy allows the s3:GetObject action')


def test_inline_and_managed_policies_allow(client: Any) -> None:
    arn = make_role(client, "Reader")
    client.put_role_policy(RoleName="Reader", PolicyName="read", PolicyDocument=allow(
        {"Effect": "Allow", "Action": "S3:GetObject", "Resource": "arn:aws:s3:::data/train/*"}))
    iam.check_s3_access(arn, "s3:GetObject", "data", "train/a.csv", account_id=ACCOUNT)
    with pytest.raises(iam.S3AccessDenied):
        iam.check_s3_access(arn, "s3:GetObject", "data", "test/a.csv", account_id=ACCOUNT)
    with pytest.raises(iam.S3AccessDenied):
        iam.check_s3_access(arn, "s3:ListBucket", "data", account_id=ACCOUNT)
    policy = client.create_policy(PolicyName="list", PolicyDocument=allow(
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::data"]}))["Policy"]["Arn"]
    client.attach_role_policy(RoleName="Reader", PolicyArn=policy)
    iam.check_s3_access(arn, "s3:ListBucket", "data", account_id=ACCOUNT, prefix="train/")


def test_explicit_deny_wins_and_conditions_apply(client: Any) -> None:
    arn = make_role(client, "Mixed")
    client.put_role_policy(RoleName="Mixed", PolicyName="p", PolicyDocument=allow(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::data/locked/*"},
        {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*",
         "Condition": {"StringEquals": {"s3:prefix": "secret/"}}}))
    iam.check_s3_access(arn, "s3:PutObject", "data", "open/x", account_id=ACCOUNT)
    with pytest.raises(iam.S3AccessDenied) as raised:
        iam.check_s3_access(arn, "s3:PutObject", "data", "locked/x", account_id=ACCOUNT)
    assert raised.value.message.endswith(
        'perform: s3:PutObject on resource: "arn:aws:s3:::data/locked/x" with an explicit deny in an identity-based '
        'policy')
    iam.check_s3_access(arn, "s3:ListBucket", "data", account_id=ACCOUNT, prefix="public/")
    with pytest.raises(iam.S3AccessDenied):
        iam.check_s3_access(arn, "s3:ListBucket", "data", account_id=ACCOUNT, prefix="secret/")


def test_allow_with_an_unmet_condition_is_not_a_deny(client: Any) -> None:
    arn = make_role(client, "Cond")
    client.put_role_policy(RoleName="Cond", PolicyName="p", PolicyDocument=allow(
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
         "Condition": {"StringEquals": {"s3:prefix": "only/"}}},
        {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::data/private/*"}))
    assert iam.evaluate(arn, "s3:ListBucket", "arn:aws:s3:::data", ACCOUNT, {"s3:prefix": "other/"}) == iam.IMPLICIT_DENY
    assert iam.evaluate(arn, "s3:ListBucket", "arn:aws:s3:::data", ACCOUNT, {"s3:prefix": "only/"}) == iam.ALLOWED
    assert iam.evaluate(arn, "s3:GetObject", "arn:aws:s3:::data/public/x", ACCOUNT) == iam.ALLOWED
    assert iam.evaluate(arn, "s3:GetObject", "arn:aws:s3:::data/private/x", ACCOUNT) == iam.IMPLICIT_DENY


def test_s3_operations_map_to_iam_actions() -> None:
    assert iam.s3_permissions("HeadObject", {"Bucket": "b", "Key": "k"}) == [("s3:GetObject", "b", "k", None)]
    assert iam.s3_permissions("ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}) == [("s3:ListBucket", "b", None, "p/")]
    assert iam.s3_permissions("UploadPart", {"Bucket": "b", "Key": "k"})[0][0] == "s3:PutObject"
    assert iam.s3_permissions("CopyObject", {"Bucket": "b", "Key": "k", "CopySource": "src/a%20b"}) == [
        ("s3:PutObject", "b", "k", None), ("s3:GetObject", "src", "a b", None)]
    assert iam.s3_permissions("DeleteObjects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "x"}]}}) == [
        ("s3:DeleteObject", "b", "x", None)]


def test_guarded_client_raises_access_denied_before_sending(client: Any) -> None:
    arn = make_role(client, "Writer")
    client.put_role_policy(RoleName="Writer", PolicyName="p", PolicyDocument=allow(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::data/out/*"}))
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    s3.create_bucket(Bucket="data")
    iam.guard_s3_client(s3, arn, ACCOUNT)
    s3.put_object(Bucket="data", Key="out/model.tar.gz", Body=b"x")
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket="data", Key="out/model.tar.gz")
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDenied" and "s3:GetObject" in error["Message"]
    assert str(raised.value).startswith("An error occurred (AccessDenied) when calling the GetObject operation: User:")


def test_client_factory_is_free_without_enforcement() -> None:
    class Store:
        def client(self) -> str:
            return "shared"

    store = Store()
    assert iam.role_s3_client_factory(store, "arn:aws:iam::1:role/r", ACCOUNT, None, enforce=False) == store.client
    assert iam.role_s3_client_factory(store, None, ACCOUNT, None, enforce=True) == store.client
    assert iam.enforcing(Settings()) is False


# -- container credentials ----------------------------------------------------------------------------------


def test_broker_hands_out_the_roles_session(client: Any, tmp_path: Path) -> None:
    arn = make_role(client, "Job", path="/service-role/")
    broker = CredentialBroker(tmp_path / "key", ACCOUNT, "us-east-1")
    token = broker.issue(arn)
    assert broker.role_for(token) == (arn, "SageMaker")
    first = broker.credentials(token)
    assert first["AccessKeyId"].startswith("ASIA") and first["Token"] and first["Expiration"].endswith("Z")
    assert broker.credentials(token) == first  # cached while far from expiry
    identity = boto3.client("sts", region_name="us-east-1", aws_access_key_id=first["AccessKeyId"],
                            aws_secret_access_key=first["SecretAccessKey"],
                            aws_session_token=first["Token"]).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/Job/SageMaker"
    assert broker.issue(arn) != token
    # The key persists: a restarted emulator accepts tokens it issued before.
    assert CredentialBroker(tmp_path / "key", ACCOUNT, "us-east-1").role_for(token) == (arn, "SageMaker")
    forged = token.rsplit(".", 1)[0] + ".AAAA"
    for bad in (forged, "nonsense", ""):
        with pytest.raises(InvalidToken):
            broker.role_for(bad)
    client.delete_role(RoleName="Job")
    with pytest.raises(InvalidToken):
        CredentialBroker(tmp_path / "key", ACCOUNT, "us-east-1").credentials(token)


def test_container_environment_has_no_host_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOSTKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")
    settings = Settings(port=4570, home=tmp_path, region="eu-west-1")
    broker = CredentialBroker(tmp_path / "key", ACCOUNT, "eu-west-1")
    env = container_environment("arn:aws:iam::123456789012:role/R", settings, broker)
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://169.254.170.2:4570/_smemu/credentials"
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_S3"] == "http://169.254.170.2:4570"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert broker.role_for(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"])[0] == "arn:aws:iam::123456789012:role/R"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
    assert "host" not in json.dumps(env).lower()
    bare = container_environment(None, settings, broker)
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in bare and bare["AWS_ENDPOINT_URL"]
    # With an external S3 too, containers reach S3 through the gateway (the edge signs for the store).
    external = Settings(port=4570, home=tmp_path, s3_endpoint="http://127.0.0.1:9100")
    assert container_environment("arn:aws:iam::123456789012:role/R", external, broker)["AWS_ENDPOINT_URL_S3"] \
        == "http://169.254.170.2:4570"


