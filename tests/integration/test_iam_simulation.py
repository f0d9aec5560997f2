"""IAM's policy simulator on the edge: the role's real policies decide, in IAM's XML shapes.

Driven with boto3's IAM client (query protocol, XML answers parsed by botocore), as the
SageMaker SDK v3 calls it before a training job or a model.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import SAGEMAKER_TRUST_POLICY, make_client, unique_name

SDK_V3_ACTIONS = ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "logs:CreateLogStream", "s3:GetObject"]


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def iam_client(endpoint_url: str) -> Any:
    return make_client("iam", endpoint_url)


@pytest.fixture()
def role(iam_client: Any) -> dict[str, str]:
    created = iam_client.create_role(RoleName=unique_name("SimRole"), AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
    return {"name": created["Role"]["RoleName"], "arn": created["Role"]["Arn"]}


def _decisions(answer: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["EvalActionName"], r["EvalResourceName"]): r["EvalDecision"] for r in answer["EvaluationResults"]}


def test_a_role_without_policies_is_denied_everything(iam_client: Any, role: dict[str, str]) -> None:
    answer = iam_client.simulate_principal_policy(PolicySourceArn=role["arn"], ActionNames=SDK_V3_ACTIONS)
    assert answer["IsTruncated"] is False
    assert [r["EvalActionName"] for r in answer["EvaluationResults"]] == SDK_V3_ACTIONS
    for result in answer["EvaluationResults"]:
        assert result["EvalDecision"] == "implicitDeny"
        assert result["EvalResourceName"] == "*"
        assert result["MatchedStatements"] == []


def test_inline_and_managed_policies_allow_and_an_explicit_deny_wins(iam_client: Any, role: dict[str, str]) -> None:
    iam_client.put_role_policy(RoleName=role["name"], PolicyName="ecr-and-logs", PolicyDocument=_policy(
        {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "logs:*"], "Resource": "*"}))
    managed = iam_client.create_policy(PolicyName=unique_name("bucket-read"), PolicyDocument=_policy(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/secret/*"}))["Policy"]
    iam_client.attach_role_policy(RoleName=role["name"], PolicyArn=managed["Arn"])

    answer = iam_client.simulate_principal_policy(
        PolicySourceArn=role["arn"], ActionNames=["ecr:GetAuthorizationToken", "s3:GetObject"],
        ResourceArns=["arn:aws:s3:::data/train.csv", "arn:aws:s3:::data/secret/key", "arn:aws:s3:::other/x"])

    assert _decisions(answer) == {
        ("ecr:GetAuthorizationToken", "arn:aws:s3:::data/train.csv"): "allowed",
        ("ecr:GetAuthorizationToken", "arn:aws:s3:::data/secret/key"): "allowed",
        ("ecr:GetAuthorizationToken", "arn:aws:s3:::other/x"): "allowed",
        ("s3:GetObject", "arn:aws:s3:::data/train.csv"): "allowed",
        ("s3:GetObject", "arn:aws:s3:::data/secret/key"): "explicitDeny",
        ("s3:GetObject", "arn:aws:s3:::other/x"): "implicitDeny",
    }
    by_key = {(r["EvalActionName"], r["EvalResourceName"]): r for r in answer["EvaluationResults"]}
    assert by_key[("ecr:GetAuthorizationToken", "arn:aws:s3:::other/x")]["MatchedStatements"] == [
        {"SourcePolicyId": "ecr-and-logs", "SourcePolicyType": "role"}]
    assert by_key[("s3:GetObject", "arn:aws:s3:::data/secret/key")]["MatchedStatements"] == [
        {"SourcePolicyId": managed["PolicyName"], "SourcePolicyType": "user-managed"}]


def test_a_permissions_boundary_limits_what_the_policies_allow(iam_client: Any) -> None:
    boundary = iam_client.create_policy(PolicyName=unique_name("boundary"), PolicyDocument=_policy(
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}))["Policy"]["Arn"]
    created = iam_client.create_role(RoleName=unique_name("Bounded"), AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY,
                                     PermissionsBoundary=boundary)["Role"]
    iam_client.put_role_policy(RoleName=created["RoleName"], PolicyName="everything",
                               PolicyDocument=_policy({"Effect": "Allow", "Action": "*", "Resource": "*"}))

    answer = iam_client.simulate_principal_policy(PolicySourceArn=created["Arn"],
                                                  ActionNames=["ecr:GetAuthorizationToken", "s3:GetObject"])

    assert _decisions(answer) == {("ecr:GetAuthorizationToken", "*"): "allowed", ("s3:GetObject", "*"): "implicitDeny"}
    details = [r["PermissionsBoundaryDecisionDetail"] for r in answer["EvaluationResults"]]
    assert details == [{"AllowedByPermissionsBoundary": True}, {"AllowedByPermissionsBoundary": False}]


def test_a_user_gets_its_groups_policies_and_conditions_read_the_context(iam_client: Any) -> None:
    user = iam_client.create_user(UserName=unique_name("sim-user"))["User"]
    group = iam_client.create_group(GroupName=unique_name("sim-group"))["Group"]
    iam_client.add_user_to_group(GroupName=group["GroupName"], UserName=user["UserName"])
    iam_client.put_group_policy(GroupName=group["GroupName"], PolicyName="tagged-only", PolicyDocument=_policy(
        {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/team": "ml"}}}))

    def decision(team: str) -> str:
        answer = iam_client.simulate_principal_policy(
            PolicySourceArn=user["Arn"], ActionNames=["sagemaker:CreateTrainingJob"],
            ContextEntries=[{"ContextKeyName": "aws:RequestTag/team", "ContextKeyValues": [team],
                             "ContextKeyType": "string"}])
        return str(answer["EvaluationResults"][0]["EvalDecision"])

    assert decision("ml") == "allowed"
    assert decision("web") == "implicitDeny"


def test_results_are_paged_with_marker(iam_client: Any, role: dict[str, str]) -> None:
    actions = [f"s3:Action{i}" for i in range(5)]
    first = iam_client.simulate_principal_policy(PolicySourceArn=role["arn"], ActionNames=actions, MaxItems=2)
    assert first["IsTruncated"] is True and len(first["EvaluationResults"]) == 2
    pages = iam_client.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=role["arn"], ActionNames=actions, PaginationConfig={"PageSize": 2})
    assert [r["EvalActionName"] for p in pages for r in p["EvaluationResults"]] == actions


def test_custom_policy_simulation(iam_client: Any) -> None:
    answer = iam_client.simulate_custom_policy(
        PolicyInputList=[_policy({"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"})],
        ActionNames=["s3:GetObject", "s3:PutObject"], ResourceArns=["arn:aws:s3:::b/k"])
    assert _decisions(answer) == {("s3:GetObject", "arn:aws:s3:::b/k"): "allowed",
                                  ("s3:PutObject", "arn:aws:s3:::b/k"): "implicitDeny"}
    assert answer["EvaluationResults"][0]["MatchedStatements"] == [
        {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none"}]


def test_errors_in_iam_shapes(iam_client: Any, endpoint_url: str, emulator_settings: Any) -> None:
    missing = f"arn:aws:iam::{emulator_settings.account_id}:role/{unique_name('NoSuchRole')}"
    with pytest.raises(ClientError) as raised:
        iam_client.simulate_principal_policy(PolicySourceArn=missing, ActionNames=["s3:GetObject"])
    assert raised.value.response["Error"]["Code"] == "NoSuchEntity"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    unchecked = make_client("iam", endpoint_url, parameter_validation=False)
    with pytest.raises(ClientError) as raised:
        unchecked.simulate_principal_policy(PolicySourceArn=missing)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "Value null at 'actionNames' failed to satisfy constraint: Member must not be null" in str(raised.value)

    with pytest.raises(ClientError) as raised:
        iam_client.simulate_custom_policy(
            PolicyInputList=[_policy({"Effect": "Allow", "Action": "*", "Resource": "*"})],
            ActionNames=["s3:GetObject"], ResourcePolicy=_policy())
    assert raised.value.response["Error"]["Code"] == "NotImplemented"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_other_iam_calls_still_reach_moto(iam_client: Any, role: dict[str, str]) -> None:
    assert iam_client.get_role(RoleName=role["name"])["Role"]["Arn"] == role["arn"]
