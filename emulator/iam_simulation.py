"""IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy) over moto's IAM state.

moto stores users, groups, roles and policies but does not implement the simulator, and the
SageMaker SDK v3 asks it before every training job and model (``iam:SimulatePrincipalPolicy``
on the execution role, then ``RoleValidationError`` unless every action is ``allowed``). The
answer must be the one AWS would give for the same policies, never a blanket allow, so that a
role which would fail on AWS fails here too.

Each action is evaluated against each resource (``*`` when none is given) with the statement
evaluator of :mod:`emulator.iam` (moto's ``IAMPolicyStatement`` plus its corrections) and
AWS's combination rules:

- identity policies: an explicit Deny wins, else any Allow allows, else ``implicitDeny``;
- a permissions boundary (the entity's, or ``PermissionsBoundaryPolicyInputList``) must allow
  the action too: a Deny in it is an ``explicitDeny``, no Allow in it an ``implicitDeny``;
- a statement whose Condition needs a context key the request did not supply in
  ``ContextEntries`` does not apply (unless the operator is ``...IfExists`` or ``Null``), and the
  key is reported in ``MissingContextValues``. The evaluator's own gaps (condition operators
  other than StringEquals are treated as met) are emulator/iam.py's.

The policies of a principal are the ones AWS simulates: a role's or user's inline and attached
managed policies, plus for a user every policy of its groups; a group's own policies; and the
documents of ``PolicyInputList``. Resource-based policies are not evaluated:
:class:`Unsupported` is raised for a request that supplies one, rather than answering as if it
were absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from emulator.iam import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, _iam_backend, _statement_result, _statements

DEFAULT_MAX_ITEMS = 100
"""IAM's page size when a request gives no MaxItems."""


class SimulationError(Exception):
    """A request IAM rejects; ``code`` and ``status`` are IAM's error code and HTTP status."""

    code = "InvalidInput"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoSuchEntity(SimulationError):
    """The principal named by PolicySourceArn does not exist."""

    code = "NoSuchEntity"
    status = 404


class Unsupported(SimulationError):
    """A simulation input the emulator cannot evaluate faithfully (refused, not ignored)."""

    code = "NotImplemented"
    status = 501


@dataclass(frozen=True)
class Policy:
    """One policy document taking part in a simulation, named as IAM's MatchedStatements name it."""

    source_id: str
    """``SourcePolicyId``: the inline policy's name, the managed policy's name, or ``PolicyInputList.<n>``."""
    source_type: str
    """``SourcePolicyType``: user, group, role, aws-managed, user-managed or none."""
    document: Any
    """The policy document (JSON text, possibly URL-encoded, or a parsed dict)."""


def principal_policies(arn: str, account_id: str, region: str | None = None) -> tuple[list[Policy], list[Policy]]:
    """``(identity policies, permissions boundary)`` of the user, group or role ``arn`` names.

    Raises :class:`NoSuchEntity` when it does not exist and :class:`SimulationError` for an ARN
    that is not a user, group or role of this account.
    """
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or parts[4] != account_id:
        raise SimulationError(f"Invalid ARN {arn}: PolicySourceArn must be a user, group or role of account "
                              f"{account_id}.")
    kind, _, rest = parts[5].partition("/")
    name = rest.rsplit("/", 1)[-1]
    backend = _iam_backend(account_id, region)
    entity = _find_entity(backend, kind, name, arn)
    policies = _own_policies(entity, kind)
    if kind == "user":
        for group in backend.get_groups_for_user(entity.name):
            policies += _own_policies(group, "group")
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    boundary = _managed(backend, [boundary_arn]) if boundary_arn else []
    return policies, boundary


def input_policies(documents: Sequence[str] | None, prefix: str = "PolicyInputList") -> list[Policy]:
    """Policies given as strings in a request, checked to be JSON policy documents as IAM does."""
    policies = []
    for index, document in enumerate(documents or [], start=1):
        try:
            parsed = json.loads(document)
        except ValueError as exc:
            raise SimulationError(f"The policy document in {prefix}.{index} is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict) or "Statement" not in parsed:
            raise SimulationError(f"The policy document in {prefix}.{index} has no Statement.")
        policies.append(Policy(f"{prefix}.{index}", "none", parsed))
    return policies


def simulate(actions: Sequence[str], resources: Sequence[str] | None, policies: Sequence[Policy],
             boundary: Sequence[Policy] = (), context: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """IAM's ``EvaluationResults``: one result per action and resource, in request order."""
    results = []
    for action in actions:
        for resource in resources or ["*"]:
            results.append(_evaluate(action, resource, policies, boundary, context or {}))
    return results


def context_values(entries: Iterable[dict[str, Any]] | None) -> dict[str, str]:
    """``ContextEntries`` as the evaluator's context (keys lower-cased; a list keeps its first value)."""
    values: dict[str, str] = {}
    for entry in entries or []:
        given = entry.get("ContextKeyValues") or []
        if entry.get("ContextKeyName") and given:
            values[str(entry["ContextKeyName"]).lower()] = str(given[0])
    return values


def page(results: list[dict[str, Any]], marker: str | None, max_items: int | None) -> dict[str, Any]:
    """One page of results with IsTruncated/Marker, as IAM pages them."""
    start = 0
    if marker:
        try:
            start = int(marker)
        except ValueError:
            raise SimulationError(f"Invalid Marker {marker!r}.") from None
    size = max_items or DEFAULT_MAX_ITEMS
    answer: dict[str, Any] = {"EvaluationResults": results[start:start + size],
                              "IsTruncated": start + size < len(results)}
    if answer["IsTruncated"]:
        answer["Marker"] = str(start + size)
    return answer


# -- evaluation ----------------------------------------------------------------------------------


def _evaluate(action: str, resource: str, policies: Sequence[Policy], boundary: Sequence[Policy],
              context: dict[str, str]) -> dict[str, Any]:
    missing: list[str] = []
    decision, matched = _combine(action, resource, policies, context, missing)
    result: dict[str, Any] = {"EvalActionName": action, "EvalResourceName": resource}
    if boundary:
        bounded, _ = _combine(action, resource, boundary, context, missing)
        result["PermissionsBoundaryDecisionDetail"] = {"AllowedByPermissionsBoundary": bounded == ALLOWED}
        if decision == ALLOWED and bounded != ALLOWED:
            decision, matched = bounded, []
        elif bounded == EXPLICIT_DENY:
            decision = EXPLICIT_DENY
    result["EvalDecision"] = decision
    result["MatchedStatements"] = matched
    result["MissingContextValues"] = sorted(set(missing))
    return result


def _combine(action: str, resource: str, policies: Sequence[Policy], context: dict[str, str],
             missing: list[str]) -> tuple[str, list[dict[str, str]]]:
    """AWS's rule over a set of policies; the statements that decided it (Denies, else Allows).

    A statement whose condition names a context key the request did not supply does not apply
    (the condition is false, as in IAM, unless its operator is ``...IfExists`` or ``Null``); the
    key is added to ``missing`` when the statement's action and resource match.
    """
    allows, denies = [], []
    for policy in policies:
        for statement in _statements(policy.document):
            absent = _absent_keys(statement.get("Condition"), context)
            if absent:
                unconditional = {k: v for k, v in statement.items() if k != "Condition"}
                if _statement_result(unconditional, action, resource, context):
                    missing.extend(absent)
                continue
            verdict = _statement_result(statement, action, resource, context)
            matched = {"SourcePolicyId": policy.source_id, "SourcePolicyType": policy.source_type}
            if verdict == EXPLICIT_DENY:
                denies.append(matched)
            elif verdict == ALLOWED:
                allows.append(matched)
    if denies:
        return EXPLICIT_DENY, _unique(denies)
    if allows:
        return ALLOWED, _unique(allows)
    return IMPLICIT_DENY, []


def _absent_keys(condition: Any, context: dict[str, str]) -> list[str]:
    """Context keys a Condition block needs that the context lacks (as written in the policy)."""
    if not isinstance(condition, dict):
        return []
    return [str(key) for operator, values in condition.items()
            if not (str(operator).endswith("IfExists") or operator == "Null") and isinstance(values, dict)
            for key in values if str(key).lower() not in context]


def _unique(matched: list[dict[str, str]]) -> list[dict[str, str]]:
    seen, kept = set(), []
    for entry in matched:
        key = (entry["SourcePolicyId"], entry["SourcePolicyType"])
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return kept


# -- moto's IAM state ------------------------------------------------------------------------------


def _find_entity(backend: Any, kind: str, name: str, arn: str) -> Any:
    if kind == "role":
        found = [r for r in backend.get_roles() if r.arn == arn]
    elif kind == "user":
        user = backend.users.get(name)
        found = [user] if user is not None and user.arn == arn else []
    elif kind == "group":
        group = backend.groups.get(name)
        found = [group] if group is not None and group.arn == arn else []
    else:
        raise SimulationError(f"Invalid ARN {arn}: PolicySourceArn must be a user, group or role.")
    if not found:
        raise NoSuchEntity(f"The {kind} with name {name} cannot be found.")
    return found[0]


def _own_policies(entity: Any, kind: str) -> list[Policy]:
    inline = [Policy(name, kind, document) for name, document in entity.policies.items()]
    return inline + _attached(entity.managed_policies.values())


def _managed(backend: Any, arns: Iterable[str]) -> list[Policy]:
    policies = []
    for arn in arns:
        policy = backend.managed_policies.get(arn)
        if policy is None:
            raise NoSuchEntity(f"Policy {arn} was not found.")
        policies.append(policy)
    return _attached(policies)


def _attached(policies: Iterable[Any]) -> list[Policy]:
    attached = []
    for policy in policies:
        source_type = "aws-managed" if ":aws:policy/" in policy.arn else "user-managed"
        attached += [Policy(policy.name, source_type, version.document)
                     for version in policy.versions if version.is_default]
    return attached
