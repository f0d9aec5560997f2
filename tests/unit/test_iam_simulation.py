"""The policy simulator's evaluation and paging rules, without a server (emulator/iam_simulation.py)."""

from __future__ import annotations

import json

import pytest

from emulator import iam_simulation as sim


def _policy(source: str, *statements: dict[str, object], kind: str = "role") -> sim.Policy:
    return sim.Policy(source, kind, json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


ALLOW_ECR = _policy("ecr", {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"})
DENY_TOKEN = _policy("no-token", {"Effect": "Deny", "Action": "ecr:GetAuthorizationToken", "Resource": "*"})


def test_no_policy_is_an_implicit_deny_and_an_allow_names_its_policy() -> None:
    assert sim.simulate(["ecr:GetAuthorizationToken"], None, []) == [{
        "EvalActionName": "ecr:GetAuthorizationToken", "EvalResourceName": "*", "EvalDecision": "implicitDeny",
        "MatchedStatements": [], "MissingContextValues": []}]
    [allowed] = sim.simulate(["ECR:GetAuthorizationToken"], None, [ALLOW_ECR])
    assert allowed["EvalDecision"] == "allowed"
    assert allowed["MatchedStatements"] == [{"SourcePolicyId": "ecr", "SourcePolicyType": "role"}]


def test_an_explicit_deny_wins_over_any_allow() -> None:
    [result] = sim.simulate(["ecr:GetAuthorizationToken"], None, [ALLOW_ECR, DENY_TOKEN])
    assert result["EvalDecision"] == "explicitDeny"
    assert result["MatchedStatements"] == [{"SourcePolicyId": "no-token", "SourcePolicyType": "role"}]


def test_one_result_per_action_and_resource_in_request_order() -> None:
    bucket = _policy("b", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})
    results = sim.simulate(["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::b/k", "arn:aws:s3:::c/k"], [bucket])
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in results] == [
        ("s3:GetObject", "arn:aws:s3:::b/k", "allowed"), ("s3:GetObject", "arn:aws:s3:::c/k", "implicitDeny"),
        ("s3:PutObject", "arn:aws:s3:::b/k", "implicitDeny"), ("s3:PutObject", "arn:aws:s3:::c/k", "implicitDeny")]


def test_a_boundary_must_allow_too() -> None:
    everything = _policy("all", {"Effect": "Allow", "Action": "*", "Resource": "*"})
    [inside, outside] = sim.simulate(["ecr:GetAuthorizationToken", "s3:GetObject"], None, [everything], [ALLOW_ECR])
    assert inside["EvalDecision"] == "allowed"
    assert inside["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert outside["EvalDecision"] == "implicitDeny" and outside["MatchedStatements"] == []
    assert outside["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    [denied] = sim.simulate(["ecr:GetAuthorizationToken"], None, [everything], [DENY_TOKEN])
    assert denied["EvalDecision"] == "explicitDeny"


def test_conditions_read_the_context_entries() -> None:
    tagged = _policy("tagged", {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*",
                                "Condition": {"StringEquals": {"aws:RequestTag/team": "ml"}}})
    context = sim.context_values([{"ContextKeyName": "aws:RequestTag/team", "ContextKeyValues": ["ml"]}])
    assert sim.simulate(["sagemaker:CreateModel"], None, [tagged], context=context)[0]["EvalDecision"] == "allowed"
    [without] = sim.simulate(["sagemaker:CreateModel"], None, [tagged])
    assert without["EvalDecision"] == "implicitDeny"
    assert without["MissingContextValues"] == ["aws:RequestTag/team"]
    assert sim.simulate(["s3:GetObject"], None, [tagged])[0]["MissingContextValues"] == []


def test_paging_with_marker() -> None:
    results = [{"EvalActionName": str(i)} for i in range(5)]
    first = sim.page(results, None, 2)
    assert first["IsTruncated"] is True and first["Marker"] == "2" and len(first["EvaluationResults"]) == 2
    last = sim.page(results, "4", 2)
    assert last["IsTruncated"] is False and "Marker" not in last and last["EvaluationResults"] == results[4:]
    assert len(sim.page(results, None, None)["EvaluationResults"]) == 5
    with pytest.raises(sim.SimulationError):
        sim.page(results, "not-a-marker", None)


def test_input_policies_must_be_policy_documents() -> None:
    [policy] = sim.input_policies(['{"Statement": []}'])
    assert (policy.source_id, policy.source_type) == ("PolicyInputList.1", "none")
    with pytest.raises(sim.SimulationError, match="PolicyInputList.1 is not valid JSON"):
        sim.input_policies(["{nope"])
    with pytest.raises(sim.SimulationError, match="has no Statement"):
        sim.input_policies(['{"Version": "2012-10-17"}'])


def test_principal_arn_must_name_an_iam_entity_of_the_account() -> None:
    with pytest.raises(sim.SimulationError, match="must be a user, group or role"):
        sim.principal_policies("arn:aws:s3:::bucket", "123456789012")
    with pytest.raises(sim.SimulationError):
        sim.principal_policies("arn:aws:iam::999999999999:role/Other", "123456789012")
