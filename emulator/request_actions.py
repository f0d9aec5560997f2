"""Which IAM actions (and on which resources) an AWS API request needs, read from the request.

With ``SMEMU_IAM_ENFORCE=1`` the container gateway evaluates every call a container makes
with its role's credentials against the role's identity policies, as AWS would. That needs
the action (``s3:GetObject``, ``sagemaker:CreateTrainingJob``, ``logs:PutLogEvents``) and the
resource ARN, which this module reads from the raw request:

* S3 (REST-XML): the operation from method, bucket, key and sub-resource (``?uploads``,
  ``?tagging``...), then the same action mapping the platform's own S3 checks use
  (``emulator.iam.s3_permissions``);
* JSON services: ``X-Amz-Target``; query services (IAM, STS, SNS): ``Action``;
  sagemaker-runtime: the operation whose path matches botocore's model;
* resources: ARNs for the members that name one (SageMaker jobs, models, endpoints and
  configurations, log groups, ECR repositories, IAM roles and users); ``*`` otherwise.

Known gaps (documented in docs/security.md): for an action whose resource is not derived
here, a statement restricted to specific ARNs does not match (the call is denied, never
wrongly allowed); condition keys beyond those the policy engine reads are not supplied.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

if TYPE_CHECKING:
    from emulator.gateway.protocol import RestJsonProtocol

_IAM_PREFIXES = {"monitoring": "cloudwatch", "email": "ses", "states": "states"}
"""SigV4 signing names whose IAM action prefix differs."""

_FREE = {("sts", "GetCallerIdentity")}
"""Calls AWS answers without any permission."""

_SAGEMAKER_RESOURCES = {
    "TrainingJobName": "training-job", "ProcessingJobName": "processing-job", "TransformJobName": "transform-job",
    "HyperParameterTuningJobName": "hyper-parameter-tuning-job", "ModelName": "model", "EndpointName": "endpoint",
    "EndpointConfigName": "endpoint-config", "ModelPackageGroupName": "model-package-group",
}
_S3_OBJECT_SUBRESOURCES = {"tagging": "ObjectTagging", "acl": "ObjectAcl", "attributes": "ObjectAttributes",
                           "retention": "ObjectRetention", "legal-hold": "ObjectLegalHold"}
_S3_LIST = {"list-type": "ListObjectsV2", "versions": "ListObjectVersions", "uploads": "ListMultipartUploads"}


@dataclass(frozen=True)
class Permission:
    """One IAM action on one resource, with condition values for the evaluation."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


def permissions(service: str, method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes,
                region: str, account: str) -> list[Permission] | None:
    """What the request needs; ``[]`` when nothing (GetCallerIdentity); None when it cannot tell."""
    if service in ("s3", "s3express"):
        return _s3(method, raw_path, query, headers, body)
    prefix = _IAM_PREFIXES.get(service, service)
    target = headers.get("x-amz-target", "")
    document: dict[str, object] = {}
    if target:
        operation = target.rpartition(".")[2]
        document = _json(body)
    elif service == "sagemaker" and raw_path.startswith("/endpoints/"):
        return _runtime(method, raw_path, region, account)
    else:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if "x-www-form-urlencoded" in headers.get("content-type", ""):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        operation = params.get("Action", "")
        document = dict(params)
    if not operation:
        return None
    if (service, operation) in _FREE:
        return []
    return [Permission(f"{prefix}:{operation}", _resource(service, document, region, account))]


def _resource(service: str, document: Mapping[str, object], region: str, account: str) -> str:
    if service == "sagemaker":
        for member, kind in _SAGEMAKER_RESOURCES.items():
            name = document.get(member)
            if isinstance(name, str) and name:
                return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"
    if service == "logs":
        group = document.get("logGroupName")
        if isinstance(group, str) and group:
            stream = document.get("logStreamName")
            suffix = f"log-stream:{stream}" if isinstance(stream, str) and stream else "*"
            return f"arn:aws:logs:{region}:{account}:log-group:{group}:{suffix}"
    if service == "ecr":
        repository = document.get("repositoryName")
        if isinstance(repository, str) and repository:
            return f"arn:aws:ecr:{region}:{account}:repository/{repository}"
    if service == "iam":
        members: tuple[tuple[str, str | None], ...] = (("RoleName", "role"), ("UserName", "user"), ("PolicyArn", None))
        for iam_member, iam_kind in members:
            value = document.get(iam_member)
            if isinstance(value, str) and value:
                return value if iam_kind is None else f"arn:aws:iam::{account}:{iam_kind}/{value}"
    return "*"


def _runtime(method: str, raw_path: str, region: str, account: str) -> list[Permission] | None:
    """sagemaker-runtime: the operation whose path matches the model (InvokeEndpoint...)."""
    found = _runtime_protocol().operation_for(method, raw_path)
    if found is None:
        return None
    operation, labels = found
    endpoint = labels.get("EndpointName", "")
    return [Permission(f"sagemaker:{operation.name}", f"arn:aws:sagemaker:{region}:{account}:endpoint/{endpoint.lower()}")]


@functools.lru_cache(maxsize=1)
def _runtime_protocol() -> RestJsonProtocol:
    from emulator.gateway.protocol import RestJsonProtocol

    return RestJsonProtocol("sagemaker-runtime")


def _json(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def _s3(method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes) -> list[Permission]:
    from emulator.iam import s3_permissions

    bucket, _, key = unquote(raw_path).lstrip("/").partition("/")
    params_in_query = dict(parse_qsl(query, keep_blank_values=True))
    operation = s3_operation(method.upper(), bucket, key, set(params_in_query), headers)
    params: dict[str, object] = {"Bucket": bucket, "Key": key, "Prefix": params_in_query.get("prefix")}
    if headers.get("x-amz-copy-source"):
        params["CopySource"] = headers["x-amz-copy-source"]
    if operation == "DeleteObjects":
        keys = re.findall(rb"<Key>(.*?)</Key>", body, re.DOTALL)
        params["Delete"] = {"Objects": [{"Key": _xml_text(k)} for k in keys]}
    found = []
    for action, resource_bucket, resource_key, prefix in s3_permissions(operation, params):
        resource = (f"arn:aws:s3:::{resource_bucket}" + (f"/{resource_key}" if resource_key is not None else "")
                    ) if resource_bucket else "*"
        found.append(Permission(action, resource, {"s3:prefix": prefix} if prefix is not None else {}))
    return found


def s3_operation(method: str, bucket: str, key: str, query: set[str], headers: Mapping[str, str]) -> str:
    """The S3 API operation of a path-style request (``GetObject``, ``ListObjectsV2``...)."""
    if not bucket:
        return "ListBuckets"
    if not key:
        return _bucket_operation(method, query)
    copy = bool(headers.get("x-amz-copy-source"))
    sub = next((name for sub_key, name in _S3_OBJECT_SUBRESOURCES.items() if sub_key in query), None)
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            return "ListParts"
        return f"Get{sub}" if sub and method == "GET" else ("HeadObject" if method == "HEAD" else "GetObject")
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        return f"Put{sub}" if sub else ("CopyObject" if copy else "PutObject")
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "RestoreObject" if "restore" in query else "SelectObjectContent" if "select" in query else "PutObject"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return f"Delete{sub}" if sub else "DeleteObject"
    return "GetObject"


def _bucket_operation(method: str, query: set[str]) -> str:
    sub = next((q for q in sorted(query) if q and q[0].islower() and q not in ("prefix", "delimiter", "marker",
                                                                                 "max-keys", "encoding-type",
                                                                                 "continuation-token", "start-after",
                                                                                 "fetch-owner", "key-marker",
                                                                                 "version-id-marker",
                                                                                 "upload-id-marker", "max-uploads")),
               None)
    if method == "GET":
        for marker, operation in _S3_LIST.items():
            if marker in query:
                return operation
        return f"GetBucket{_camel(sub)}" if sub else "ListObjects"
    if method == "HEAD":
        return "HeadBucket"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    verb = {"PUT": "Put", "DELETE": "Delete"}.get(method, "Get")
    if sub:
        return f"{verb}Bucket{_camel(sub)}"
    return "CreateBucket" if method == "PUT" else "DeleteBucket"


def _camel(word: str | None) -> str:
    return "".join(part.capitalize() for part in (word or "").split("-"))


def _xml_text(raw: bytes) -> str:
    from xml.sax.saxutils import unescape

    return unescape(raw.decode("utf-8", "replace"), {"&quot;": '"', "&apos;": "'"})
