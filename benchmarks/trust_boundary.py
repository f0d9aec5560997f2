"""What the trust boundary costs per request, against a baseline in the same process.

    python benchmarks/trust_boundary.py [--requests 20000]

Calls WSGI applications directly (no sockets), so the numbers are the Python work each layer
adds to one request:

* the edge's request policy (``EdgePolicy``: Host, Origin, /moto-api, Content-Length) in
  front of an app that answers at once, versus that app alone, for an InvokeEndpoint-shaped
  request (the hot path);
* the container gateway's checks (``GatewayAuth``: peer, issued credentials, SigV4 recomputed)
  for a SageMaker JSON call and an S3 GET signed by botocore, versus the bare app.

Measured, not asserted; printed as a table of microseconds per request and ratios.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bare(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _environ(request: Any) -> dict[str, Any]:
    from tests.signed_wsgi import environ_of

    environ = environ_of(request)
    environ["smemu.body"] = environ["wsgi.input"].getvalue()
    return environ


def _per_request(app: Any, environ: dict[str, Any], count: int) -> float:
    """Microseconds per call of ``app`` with a fresh copy of ``environ`` each time."""
    def start_response(*_: Any) -> None:
        return None

    started = time.perf_counter()
    for _ in range(count):
        copy = dict(environ)
        copy["wsgi.input"] = io.BytesIO(environ["smemu.body"])
        b"".join(app(copy, start_response))
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()

    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from moto import mock_aws

    from emulator.config import Settings
    from emulator.container_gateway import GatewayAuth
    from emulator.credentials import CredentialBroker
    from emulator.gateway.policy_middleware import EdgePolicy

    settings = Settings()
    invoke = AWSRequest("POST", "http://localhost:4570/endpoints/my-endpoint/invocations", data=b'{"rows": [[1, 2]]}',
                        headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("test", "test"), "sagemaker", "us-east-1").add_auth(invoke)
    rows = [("edge policy, InvokeEndpoint", _bare, EdgePolicy(_bare, settings), _environ(invoke))]

    with mock_aws(), tempfile.TemporaryDirectory() as home:
        import boto3

        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(RoleName="Bench", AssumeRolePolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
            '"sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'))["Role"]["Arn"]
        broker = CredentialBroker(Path(home) / "key", "123456789012", "us-east-1")
        issued = broker.credentials(broker.issue(role))
        credentials = Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["Token"])
        gateway = GatewayAuth(_bare, broker)
        control = AWSRequest("POST", "http://169.254.170.2:4570/", data=b'{"MaxResults": 10}',
                             headers={"X-Amz-Target": "SageMaker.ListTrainingJobs",
                                      "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(credentials, "sagemaker", "us-east-1").add_auth(control)
        get = AWSRequest("GET", "http://169.254.170.2:4570/bucket/train/part-0001.csv")
        S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(get)
        rows += [("gateway, SageMaker JSON call", _bare, gateway, _environ(control)),
                 ("gateway, S3 GetObject", _bare, gateway, _environ(get))]

        print(f"{'layer':32} {'baseline us':>12} {'with layer us':>14} {'added us':>9} {'ratio':>6}")
        for label, baseline_app, layered_app, environ in rows:
            _per_request(layered_app, environ, 200)  # warm up (imports, caches)
            baseline = _per_request(baseline_app, environ, args.requests)
            layered = _per_request(layered_app, environ, args.requests)
            print(f"{label:32} {baseline:12.2f} {layered:14.2f} {layered - baseline:9.2f} {layered / baseline:6.1f}")


if __name__ == "__main__":
    main()
