"""Execution roles as SageMaker checks them, and (strict mode) the role's S3 permissions.

Two promises, so that what passes here does not fail on AWS for a wrong role or permission:

1. **Role checks, always.** CreateTrainingJob / CreateProcessingJob / CreateTransformJob /
   CreateModel refuse a role that does not exist in (moto's) IAM, lives in another account, or
   whose trust policy does not let ``sagemaker.amazonaws.com`` assume it, with the
   ValidationException text AWS sends (:func:`check_role`).
2. **Strict mode** (``SMEMU_IAM_ENFORCE=1``): every S3 read and write the platform does for a
   job or endpoint (channels, outputs, checkpoints, model data, capture) is evaluated against
   the role's identity policies (inline and attached) first, and a denied one fails with S3's
   ``AccessDenied`` and the exact message AWS gives (:func:`check_s3_access`,
   :func:`role_s3_client_factory`).

Policies are evaluated with moto's own evaluator (``moto.iam.access_control.IAMPolicyStatement``:
Action/NotAction, Resource wildcards, StringEquals conditions), one statement at a time, with
AWS's combination rule: an explicit Deny wins, else any Allow allows, else implicit deny. Three
corrections keep moto's evaluator from answering what AWS would not: actions match
case-insensitively; a statement whose condition does not hold is not applicable (moto reports
it as a Deny, even for Allow statements); ``NotResource`` is honoured. Known gaps (moto's):
condition operators other than StringEquals are treated as met; bucket policies, permission
boundaries, session policies and SCPs are not evaluated.

AWS managed policies (``arn:aws:iam::aws:policy/...``) exist in moto only when it loads them
(``MOTO_IAM_LOAD_MANAGED_POLICIES=true``).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

from emulator.errors import ValidationException

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
SESSION_NAME = "SageMaker"
"""The session name SageMaker uses when it assumes an execution role (seen in AWS's messages)."""
ALLOWED, IMPLICIT_DENY, EXPLICIT_DENY = "allowed", "implicitDeny", "explicitDeny"
"""Evaluation decisions, named as IAM's SimulatePrincipalPolicy names them."""

_ROLE_FIELD = {
    "CreateTrainingJob": "RoleArn",
    "CreateProcessingJob": "RoleArn",
    "CreateHyperParameterTuningJob": "RoleArn",
    "CreateTransformJob": "ExecutionRoleArn",  # the model's role; the request itself has none
    "CreateModel": "ExecutionRoleArn",
}


# -- role checks --------------------------------------------------------------------------------


def role_error_message(operation: str, role_arn: str) -> str:
    """AWS's text for a role that is missing or does not trust SageMaker, per operation."""
    if operation == "CreateModel":
        return (f'The execution role ARN "{role_arn}" is invalid. Please ensure that the role exists and that its '
                f'trust relationship policy allows the action "sts:AssumeRole" for the service principal '
                f'"{SAGEMAKER_PRINCIPAL}".')
    return (f"Could not assume role {role_arn}. Please ensure that the role exists and allows principal "
            f"'{SAGEMAKER_PRINCIPAL}' to assume the role.")


def check_role(role_arn: str | None, operation: str, account_id: str, *, region: str | None = None,
               source_arn: str | None = None) -> None:
    """Raise SageMaker's ValidationException unless SageMaker could assume ``role_arn``.

    ``operation`` is the SageMaker operation (``CreateTrainingJob``, ``CreateModel``, ...);
    ``source_arn`` the ARN of the resource being created (for ``aws:SourceArn`` conditions in
    trust policies). A missing optional role (CreateModel without ExecutionRoleArn) passes.
    """
    if not role_arn:
        return
    if _arn_account(role_arn) != account_id:
        raise ValidationException(f"{_ROLE_FIELD.get(operation, 'RoleArn')}: Cross-account pass role is not allowed.")
    role = find_role(role_arn, account_id, region)
    if role is None or not trusts_sagemaker(role, account_id, source_arn):
        raise ValidationException(role_error_message(operation, role_arn))


def find_role(role_arn: str, account_id: str, region: str | None = None) -> Any | None:
    """moto's role object for an ARN (path included), or None."""
    from moto.iam.exceptions import NotFoundException

    try:
        return _iam_backend(account_id, region).get_role_by_arn(role_arn)
    except NotFoundException:
        return None


def trusts_sagemaker(role: Any, account_id: str, source_arn: str | None = None) -> bool:
    """Whether the role's trust policy lets sagemaker.amazonaws.com call sts:AssumeRole."""
    context = {"aws:sourceaccount": account_id}
    if source_arn:
        context["aws:sourcearn"] = source_arn
    allowed = False
    for statement in _statements(role.assume_role_policy_document):
        if not _names_sagemaker(statement.get("Principal")):
            continue
        rest = {k: v for k, v in statement.items() if k not in ("Principal", "Resource", "NotResource")}
        result = _statement_result({**rest, "Resource": "*"}, "sts:AssumeRole", "*", context)
        if result == EXPLICIT_DENY:
            return False
        allowed = allowed or result == ALLOWED
    return allowed


def _names_sagemaker(principal: Any) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    services = principal.get("Service", [])
    services = [services] if isinstance(services, str) else list(services)
    return SAGEMAKER_PRINCIPAL in services or principal.get("AWS") == "*"


# -- policy evaluation (moto's evaluator, statement by statement) ----------------------------------


def evaluate(role_arn: str, action: str, resource: str, account_id: str,
             context: dict[str, str] | None = None, region: str | None = None) -> str:
    """``allowed`` / ``implicitDeny`` / ``explicitDeny`` for the role's identity policies."""
    role = find_role(role_arn, account_id, region)
    if role is None:
        return IMPLICIT_DENY
    values = {"aws:principalarn": role_arn, "aws:principalaccount": account_id, "aws:securetransport": "true"}
    if region:
        values["aws:requestedregion"] = region
    values.update({k.lower(): v for k, v in (context or {}).items()})
    decision = IMPLICIT_DENY
    for document in _identity_policies(role, account_id, region):
        for statement in _statements(document):
            result = _statement_result(statement, action, resource, values)
            if result == EXPLICIT_DENY:
                return EXPLICIT_DENY
            if result == ALLOWED:
                decision = ALLOWED
    return decision


def _identity_policies(role: Any, account_id: str, region: str | None) -> list[Any]:
    """The role's inline policy documents and attached managed policies' default versions."""
    backend = _iam_backend(account_id, region)
    documents: list[Any] = [backend.get_role_policy(role.name, name)[1] for name in backend.list_role_policies(role.name)]
    attached, _marker = backend.list_attached_role_policies(role.name)
    for policy in attached:
        documents += [version.document for version in policy.versions if version.is_default]
    return documents


def _statement_result(statement: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> str:
    """One statement's verdict: ``allowed``, ``explicitDeny`` or ``""`` (not applicable)."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    statement = _lower_actions(statement)
    condition = statement.pop("Condition", None)
    if condition and not _condition_holds(condition, context):
        return ""
    if "NotResource" in statement:
        excluded = IAMPolicyStatement({"Effect": "Allow", "Action": "*", "Resource": statement.pop("NotResource")})
        if excluded.is_action_permitted("any:action", resource) == PermissionResult.PERMITTED:
            return ""
        statement["Resource"] = "*"
    if "Resource" not in statement:  # an identity statement without a resource applies to nothing
        return ""
    result = IAMPolicyStatement(statement).is_action_permitted(action.lower(), resource)
    if result == PermissionResult.DENIED and statement.get("Effect") == "Deny":
        return EXPLICIT_DENY
    if result == PermissionResult.PERMITTED:
        return ALLOWED
    return ""


def _condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    """moto's condition evaluation of one Condition block (keys compared case-insensitively)."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    lowered = {op: {str(k).lower(): v for k, v in values.items()} for op, values in condition.items()}
    probe = IAMPolicyStatement({"Effect": "Allow", "Action": "*", "Condition": lowered})
    return probe.is_action_permitted("any:action", "*", None, context) == PermissionResult.PERMITTED


def _lower_actions(statement: dict[str, Any]) -> dict[str, Any]:
    copy = dict(statement)
    for key in ("Action", "NotAction"):
        if isinstance(copy.get(key), str):
            copy[key] = copy[key].lower()
        elif isinstance(copy.get(key), list):
            copy[key] = [str(a).lower() for a in copy[key]]
    return copy


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(urllib.parse.unquote(document))
    statements = (document or {}).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


# -- S3 access (strict mode) ------------------------------------------------------------------------


class S3AccessDenied(Exception):
    """S3 refused a request of the role; ``message`` is AWS's text (``User: ... is not authorized ...``)."""

    code = "AccessDenied"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_client_error(self, operation: str) -> Exception:
        """The botocore ``ClientError`` boto3 raises for this denial (``AccessDenied``, 403)."""
        from botocore.exceptions import ClientError

        return ClientError({"Error": {"Code": self.code, "Message": self.message},
                            "ResponseMetadata": {"HTTPStatusCode": 403}}, operation)  # type: ignore[typeddict-item]


def assumed_role_arn(role_arn: str, session_name: str = SESSION_NAME) -> str:
    """``arn:aws:sts::<acct>:assumed-role/<role name>/<session>`` (the role's path is dropped)."""
    partition = role_arn.split(":")[1] if role_arn.count(":") >= 5 else "aws"
    name = role_arn.rsplit("/", 1)[-1]
    return f"arn:{partition}:sts::{_arn_account(role_arn)}:assumed-role/{name}/{session_name}"


def denial_message(role_arn: str, action: str, resource: str, decision: str) -> str:
    """AWS's AccessDenied text for an identity-policy denial of the role's SageMaker session."""
    on = f' on resource: "{resource}"' if resource != "*" else ""
    why = ("with an explicit deny in an identity-based policy" if decision == EXPLICIT_DENY
           else f"because no identity-based policy allows the {action} action")
    return f"User: {assumed_role_arn(role_arn)} is not authorized to perform: {action}{on} {why}"


def check_s3_access(role_arn: str, action: str, bucket: str, key: str | None = None, *, account_id: str,
                    region: str | None = None, prefix: str | None = None) -> None:
    """Raise :class:`S3AccessDenied` unless the role's policies allow ``action`` on the bucket/object.

    ``action`` is an IAM action (``s3:GetObject``, ``s3:ListBucket``, ...); ``key`` None means the
    bucket itself; ``prefix`` feeds the ``s3:prefix`` condition key of ListBucket.
    """
    resource = (f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")) if bucket else "*"
    context = {"s3:prefix": prefix} if prefix is not None else None
    decision = evaluate(role_arn, action, resource, account_id, context, region)
    if decision != ALLOWED:
        raise S3AccessDenied(denial_message(role_arn, action, resource, decision))


_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "GetObjectAttributes": "s3:GetObject",
    "SelectObjectContent": "s3:GetObject", "GetObjectTagging": "s3:GetObjectTagging",
    "PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject", "PutObjectTagging": "s3:PutObjectTagging",
    "AbortMultipartUpload": "s3:AbortMultipartUpload", "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
}
_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions", "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}


def s3_permissions(operation: str, params: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    """``[(action, bucket, key or None, s3:prefix or None)]`` an S3 API call needs from IAM."""
    bucket, key = str(params.get("Bucket", "")), params.get("Key")
    if operation in ("CopyObject", "UploadPartCopy"):
        source = params.get("CopySource")
        if isinstance(source, dict):
            source_bucket, source_key = str(source.get("Bucket", "")), str(source.get("Key", ""))
        else:
            source_bucket, _, source_key = urllib.parse.unquote(str(source or "")).lstrip("/").partition("/")
            source_key = source_key.split("?versionId=")[0]
        return [("s3:PutObject", bucket, str(key), None), ("s3:GetObject", source_bucket, source_key, None)]
    if operation == "DeleteObjects":
        objects = (params.get("Delete") or {}).get("Objects") or []
        return [("s3:DeleteObject", bucket, str(o.get("Key", "")), None) for o in objects]
    if operation in _OBJECT_ACTIONS:
        return [(_OBJECT_ACTIONS[operation], bucket, str(key), None)]
    if operation in _BUCKET_ACTIONS:
        prefix = None if operation == "HeadBucket" else str(params.get("Prefix") or "")
        return [(_BUCKET_ACTIONS[operation], bucket, None, prefix)]
    if operation == "ListBuckets":
        return [("s3:ListAllMyBuckets", "", None, None)]
    return [(f"s3:{operation}", bucket, None, None)]


def guard_s3_client(client: Any, role_arn: str, account_id: str, region: str | None = None) -> Any:
    """Make every call of this (dedicated) boto3 S3 client pass the role's policies first.

    A denied call raises botocore's ``ClientError`` (``AccessDenied``) before anything is sent,
    so the platform's existing error handling reports it exactly as a denial from AWS. Install
    it only on a client no other job shares.
    """
    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        for action, bucket, key, prefix in s3_permissions(model.name, params):
            try:
                check_s3_access(role_arn, action, bucket, key, account_id=account_id, region=region, prefix=prefix)
            except S3AccessDenied as denied:
                raise denied.as_client_error(model.name) from None

    client.meta.events.register("before-parameter-build.s3", check, unique_id=f"smemu-iam-{id(client)}")
    return client


def role_s3_client_factory(store: Any, role_arn: str | None, account_id: str, region: str | None,
                           enforce: bool) -> Callable[[], Any]:
    """The S3 client factory a job or endpoint should use for its role.

    ``store`` is the platform's ``S3Store``. Without enforcement (or without a role) this is
    ``store.client`` itself, costing nothing; with it, one dedicated client per job whose calls
    are checked by :func:`guard_s3_client`.
    """
    if not enforce or not role_arn:
        return store.client
    lock = threading.Lock()
    made: list[Any] = []

    def factory() -> Any:
        with lock:
            if not made:
                made.append(guard_s3_client(_fresh_client(store), str(role_arn), account_id, region))
            return made[0]

    return factory


def enforcing(settings: Any) -> bool:
    """Whether strict mode is on (``SMEMU_IAM_ENFORCE``, Settings field ``iam_enforce``)."""
    return bool(getattr(settings, "iam_enforce", False))


def model_data_error(uri: str, role_arn: str, region: str) -> ValidationException:
    """CreateModel's ValidationException when the role cannot read ``ModelDataUrl`` (AWS's text)."""
    return ValidationException(
        f'Could not access model data at {uri}. Please ensure that the role "{role_arn}" exists and that its trust '
        f'relationship policy allows the action "sts:AssumeRole" for the service principal "{SAGEMAKER_PRINCIPAL}". '
        f'Also ensure that the role has "s3:GetObject" permissions and that the object is located in {region}. If '
        f'your Model uses multiple models or uncompressed models, please ensure that the role has "s3:ListBucket" '
        f"permission."
    )


# -- helpers --------------------------------------------------------------------------------------


def _fresh_client(store: Any) -> Any:
    """A new S3 client for the store (never the shared one: event hooks are per client)."""
    new_client = getattr(store, "new_client", None)
    if callable(new_client):
        return new_client()
    import boto3
    from botocore.config import Config

    key, secret = store.credentials
    return boto3.session.Session().client(
        "s3", endpoint_url=store.endpoint_url, aws_access_key_id=key, aws_secret_access_key=secret,
        region_name=store.settings.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                      max_pool_connections=32),
    )


def _iam_backend(account_id: str, region: str | None) -> Any:
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    return iam_backends[account_id][get_partition(region) if region else "aws"]


def _arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""

