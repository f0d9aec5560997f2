"""Credentials and AWS endpoints inside containers, the way ECS and SageMaker hand them out.

On SageMaker a container gets its execution role's temporary credentials from a container
credentials endpoint; boto3 finds it through ``AWS_CONTAINER_CREDENTIALS_*`` variables and
never sees anyone else's keys. The emulator does the same:

* :class:`CredentialBroker` issues a signed per-container token for a role and, when the
  container presents it, answers ``{AccessKeyId, SecretAccessKey, Token, Expiration}``: an
  access key, secret and session token it generates itself for the role (session name
  ``SageMaker``, as on AWS), valid for an hour and renewed before botocore refreshes. Tokens
  are HMAC-signed with a key kept in ``SMEMU_HOME/state`` and the issued credentials are kept
  in the emulator's own SQLite file (``emulator.credential_store``), so both stay valid across
  a restart (re-adopted endpoints keep working) and cannot be forged by a container. The
  credentials are also made known to moto's STS, so ``GetCallerIdentity`` names the role.
* :class:`CredentialsMiddleware` serves the endpoint at :data:`CREDENTIALS_PATH`.
* The container gateway (``emulator.container_gateway``) is where containers reach the
  emulator, at 169.254.170.2 on the shared network ``smemu-containers``
  (``emulator.runtime.gateway_network``); it admits AWS calls only when they are signed with
  credentials issued here.
* :func:`container_environment` gives a container the variables: the credentials URI and
  token, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` pointing at the gateway (S3 included:
  the edge relays S3 to whichever store is configured, signed with the store's credentials,
  so role credentials work on every store), the region, and ``AWS_EC2_METADATA_DISABLED``. Nothing from this machine's
  environment is copied: the host's AWS credentials never reach a container.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from emulator.credential_store import CredentialStore, Issued
from emulator.iam import SESSION_NAME, find_role
from emulator.runtime.gateway_network import GATEWAY_ADDRESS, NETWORK_NAME, NETWORK_SUBNET  # noqa: F401

log = logging.getLogger(__name__)

CREDENTIALS_PATH = "/_smemu/credentials"
"""The credentials endpoint on the edge app (outside every AWS API's path space)."""
CONTAINER_HOST_IP = GATEWAY_ADDRESS
"""The ECS container-credentials address, which botocore accepts over plain http."""
DURATION_SECONDS = 3600
REFRESH_MARGIN_SECONDS = 20 * 60
"""Hand out the same set only while it has this long left (botocore refreshes 15 min before expiry)."""
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class InvalidToken(Exception):
    """A token that this emulator did not issue (or that was altered)."""


class CredentialBroker:
    """Issues container tokens and, for a token, the role's temporary credentials."""

    def __init__(self, key_path: Path, account_id: str, region: str, store: CredentialStore | None = None) -> None:
        self.account_id = account_id
        self.region = region
        self._key = _load_or_create_key(key_path)
        self.store = store or CredentialStore(key_path.with_name("container-credentials.db"))
        self._lock = threading.Lock()
        self._registered = False

    @classmethod
    def from_settings(cls, settings: Any) -> CredentialBroker:
        """A broker whose key and issued credentials live in ``<home>/state/``."""
        return cls(Path(settings.state_dir) / "container-credentials.key", settings.account_id, settings.region)

    def issue(self, role_arn: str, session_name: str = SESSION_NAME) -> str:
        """A new token for one container (or one job); random, so no two containers share one."""
        payload = _b64(json.dumps({"r": role_arn, "s": session_name, "n": secrets.token_hex(8)}).encode())
        return f"{payload}.{self._sign(payload)}"

    def role_for(self, token: str) -> tuple[str, str]:
        """``(role ARN, session name)`` of a token; raises :class:`InvalidToken`."""
        payload, _, signature = token.strip().partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            raise InvalidToken("the authorization token was not issued by this emulator")
        claims = json.loads(_unb64(payload))
        return str(claims["r"]), str(claims["s"])

    def credentials(self, token: str) -> dict[str, Any]:
        """The container credentials document for a token (the same set until 20 min before expiry)."""
        role_arn, session = self.role_for(token)
        token_id = hashlib.sha256(token.strip().encode()).hexdigest()[:32]
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else self.account_id
        if find_role(role_arn, account, self.region) is None:
            raise InvalidToken(f"the role {role_arn} no longer exists, so it cannot be assumed")
        with self._lock:
            latest = self.store.latest_for_token(token_id)
            if latest is not None and latest.expires - time.time() > REFRESH_MARGIN_SECONDS:
                return _document(latest)
            now = time.time()
            issued = Issued(access_key_id="ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
                            secret_access_key=secrets.token_urlsafe(30), session_token=secrets.token_urlsafe(96),
                            role_arn=role_arn, session_name=session, account_id=account, token_id=token_id,
                            issued=now, expires=now + DURATION_SECONDS)
            self.store.add(issued)
        _make_known_to_sts(issued, self.region)
        return _document(issued)

    def lookup(self, access_key_id: str) -> Issued | None:
        """The credentials issued with this access key (for the gateway's signature check)."""
        return self.store.by_access_key(access_key_id)

    def restore_identities(self) -> int:
        """Make every unexpired issued set known to moto's STS again (after a restart); how many."""
        restored = 0
        for issued in self.store.unexpired():
            restored += _make_known_to_sts(issued, self.region)
        return restored

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


class CredentialsMiddleware:
    """Serves ``GET /_smemu/credentials`` (token in ``Authorization``) in front of the edge app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], broker: CredentialBroker) -> None:
        self.app = app
        self.broker = broker

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != CREDENTIALS_PATH:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "GET":
            return _answer(start_response, "405 Method Not Allowed", {"code": "MethodNotAllowed", "message": "GET only"})
        token = environ.get("HTTP_AUTHORIZATION", "")
        if not token:
            return _answer(start_response, "401 Unauthorized",
                           {"code": "MissingToken", "message": "send AWS_CONTAINER_AUTHORIZATION_TOKEN as Authorization"})
        try:
            document = self.broker.credentials(token)
        except InvalidToken as exc:
            return _answer(start_response, "403 Forbidden", {"code": "AccessDenied", "message": str(exc)})
        except (ValueError, KeyError) as exc:
            return _answer(start_response, "403 Forbidden", {"code": "AccessDenied", "message": f"bad token: {exc}"})
        return _answer(start_response, "200 OK", document)


def container_environment(role_arn: str | None, settings: Any, broker: CredentialBroker, *,
                          gateway_url: str | None = None, region: str | None = None,
                          session_name: str = SESSION_NAME) -> dict[str, str]:
    """The AWS variables of a container running as ``role_arn`` (None: endpoints but no credentials).

    ``gateway_url`` is :attr:`ContainerGateway.url` (default: 169.254.170.2 on the edge port).
    Put these *under* the request's own ``Environment`` so a user's explicit value still wins,
    as on SageMaker.
    """
    url = gateway_url or f"http://{CONTAINER_HOST_IP}:{settings.port}"
    region = region or settings.region
    env = {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT_URL_S3": url,
        "AWS_EC2_METADATA_DISABLED": "true",  # never probe 169.254.169.254
    }
    if role_arn:
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = url + CREDENTIALS_PATH
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = broker.issue(role_arn, session_name)
    return env


def _document(issued: Issued) -> dict[str, Any]:
    """The container credentials endpoint's answer (what botocore's ContainerProvider reads)."""
    expires = dt.datetime.fromtimestamp(issued.expires, dt.timezone.utc)
    return {
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "Token": issued.session_token,
        "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "RoleArn": issued.role_arn,
        "AccountId": issued.account_id,
    }


def _make_known_to_sts(issued: Issued, region: str) -> int:
    """Register the set in moto's STS as an assumed role (1), unless it knows it already (0).

    Only so that STS answers ``GetCallerIdentity`` with the role's session, as AWS would; the
    gateway never asks moto whether a key is valid.
    """
    from moto.iam.models import AccessKey
    from moto.sts.models import AssumedRole, sts_backends
    from moto.utilities.utils import get_partition

    backend = sts_backends[issued.account_id][get_partition(region)]
    if backend.get_assumed_role_from_access_key(issued.access_key_id) is not None:
        return 0
    key = AccessKey(None, prefix="ASIA", account_id=issued.account_id)  # type: ignore[abstract]
    key.access_key_id, key.secret_access_key, key.role_arn = (issued.access_key_id, issued.secret_access_key,
                                                             issued.role_arn)
    role = AssumedRole(account_id=issued.account_id, region_name=region, access_key=key,
                       role_session_name=issued.session_name, role_arn=issued.role_arn, policy="",
                       duration=DURATION_SECONDS, external_id="")
    role.session_token = issued.session_token
    role.expiration = dt.datetime.fromtimestamp(issued.expires, dt.timezone.utc).replace(tzinfo=None)
    backend.assumed_roles.append(role)
    return 1


def _load_or_create_key(path: Path) -> bytes:
    """The signing key, created (mode 0600) on first use; a concurrent creator's key wins."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
    return path.read_bytes()


def _answer(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
