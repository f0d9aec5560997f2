"""Credentials and AWS endpoints inside containers, the way ECS and SageMaker hand them out.

On SageMaker a container gets its execution role's temporary credentials from a container
credentials endpoint; boto3 finds it through ``AWS_CONTAINER_CREDENTIALS_*`` variables and
never sees anyone else's keys. The emulator does the same:

* :class:`CredentialBroker` issues a signed per-container token for a role and, when the
  container presents it, answers ``{AccessKeyId, SecretAccessKey, Token, Expiration}`` from
  STS AssumeRole in moto (session name ``SageMaker``, as on AWS). Tokens are HMAC-signed with a
  key kept in ``SMEMU_HOME/state``, so they stay valid across a restart of the emulator
  (re-adopted endpoints keep working) and cannot be forged by a container.
* :class:`CredentialsMiddleware` serves it on the edge app at :data:`CREDENTIALS_PATH`.
* :class:`ContainerGateway` makes the emulator reachable from containers. The emulator itself
  listens on 127.0.0.1 only, which a container cannot reach. botocore accepts an ``http``
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` only for a loopback address or the ECS/EKS addresses
  169.254.170.2, 169.254.170.23, fd00:ec2::23 (``ContainerMetadataFetcher._ALLOWED_HOSTS``).
  So the gateway creates a Docker bridge network (``smemu-containers``, labelled
  ``smemu.kind=network``) whose **host-side** address is 169.254.170.2, and serves the edge
  application a second time on ``169.254.170.2:<edge port>``. A container on any bridge
  network reaches that host address through its default route (measured: the default bridge
  and a per-job network both answer; ``--network none`` and ``--internal`` networks do not,
  which matches SageMaker's network isolation, where containers get no credentials either).
  The address is link-local: nothing outside this machine can reach it.
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

from emulator.iam import SESSION_NAME, find_role

log = logging.getLogger(__name__)

CREDENTIALS_PATH = "/_smemu/credentials"
"""The credentials endpoint on the edge app (outside every AWS API's path space)."""
CONTAINER_HOST_IP = "169.254.170.2"
"""The ECS container-credentials address, which botocore accepts over plain http."""
NETWORK_NAME = "smemu-containers"
NETWORK_SUBNET = "169.254.170.0/24"
DURATION_SECONDS = 3600
REFRESH_MARGIN_SECONDS = 20 * 60
"""Hand out cached credentials only while they have this long left (botocore refreshes at 15 min)."""


class InvalidToken(Exception):
    """A token that this emulator did not issue (or that was altered)."""


class CredentialBroker:
    """Issues container tokens and turns them into the role's temporary credentials."""

    def __init__(self, key_path: Path, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._key = _load_or_create_key(key_path)
        self._cache: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> CredentialBroker:
        """A broker whose signing key lives in ``<home>/state/container-credentials.key``."""
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
        """The container credentials document for a token (cached until 20 min before expiry)."""
        role_arn, session = self.role_for(token)
        with self._lock:
            cached = self._cache.get(token)
            if cached is not None and cached["_expires"] - time.time() > REFRESH_MARGIN_SECONDS:
                return {k: v for k, v in cached.items() if not k.startswith("_")}
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else self.account_id
        if find_role(role_arn, account, self.region) is None:
            raise InvalidToken(f"the role {role_arn} no longer exists, so it cannot be assumed")
        assumed = _assume_role(role_arn, session, account, self.region)
        expires = assumed.expiration.replace(tzinfo=dt.timezone.utc)
        document = {
            "AccessKeyId": assumed.access_key_id,
            "SecretAccessKey": assumed.secret_access_key,
            "Token": assumed.session_token,
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": role_arn,
            "AccountId": account,
        }
        with self._lock:
            self._cache[token] = {**document, "_expires": expires.timestamp()}
        return document

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


class ContainerGateway:
    """The edge application served a second time, on 169.254.170.2, for containers.

    ``client`` is a docker-py ``DockerClient`` (only used to create the network). The network is
    shared by every emulator on this engine and never removed by us: each emulator listens on
    its own port of the same address.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], port: int, client: Any, *, threads: int = 16,
                 host_ip: str = CONTAINER_HOST_IP, network: str = NETWORK_NAME, subnet: str = NETWORK_SUBNET) -> None:
        self.app = app
        self.port = port
        self.client = client
        self.threads = threads
        self.host_ip = host_ip
        self.network = network
        self.subnet = subnet
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The emulator's URL as containers use it."""
        return f"http://{self.host_ip}:{self.port}"

    def ensure_network(self) -> None:
        """Create the network that puts ``host_ip`` on this machine, unless it exists."""
        import docker.errors
        from docker.types import IPAMConfig, IPAMPool

        for attempt in range(2):
            existing = [n for n in self.client.networks.list(names=[self.network]) if n.name == self.network]
            if existing:
                gateways = [c.get("Gateway") for c in (existing[0].attrs.get("IPAM") or {}).get("Config") or []]
                if self.host_ip not in gateways:
                    raise RuntimeError(f"Docker network {self.network} exists but its gateway is {gateways}, not "
                                       f"{self.host_ip}; remove it (`docker network rm {self.network}`)")
                return
            try:
                self.client.networks.create(
                    self.network, driver="bridge",
                    ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=self.subnet, gateway=self.host_ip)]),
                    labels={"smemu.kind": "network", "smemu.name": self.network},
                )
                return
            except docker.errors.APIError as exc:
                if attempt:  # not a race with another emulator: the subnet is taken
                    raise RuntimeError(f"cannot create Docker network {self.network} ({self.subnet}, gateway "
                                       f"{self.host_ip}): {exc.explanation or exc}") from exc

    def start(self) -> ContainerGateway:
        """Create the network if needed and serve on ``host_ip:port`` in a background thread."""
        from cheroot import wsgi

        self.ensure_network()
        self._server = wsgi.Server((self.host_ip, self.port), self.app, numthreads=self.threads,
                                   server_name="smemu-containers", request_queue_size=64, timeout=75,
                                   shutdown_timeout=5)
        try:
            self._server.prepare()
        except OSError as exc:
            raise RuntimeError(f"cannot listen on {self.host_ip}:{self.port} for containers: {exc}. The emulator "
                               f"must run on the Docker host itself (not inside a container) for this") from exc
        self._thread = threading.Thread(target=self._server.serve, name="smemu-container-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (the network stays for the next start)."""
        if self._server is not None:
            self._server.stop()
            self._server = None


def _assume_role(role_arn: str, session: str, account: str, region: str) -> Any:
    """moto's AssumeRole, journaled (emulator/awsstate) so the assumed role is known after a restart."""
    from emulator.awsstate import direct_write

    return direct_write("sts.assume_role", {"role_arn": role_arn, "session": session, "account": account,
                                            "region": region})


def apply_assume_role(role_arn: str, session: str, account: str, region: str) -> Any:
    """The write itself (also what a replay of the journal calls)."""
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    backend = sts_backends[account][get_partition(region)]
    return backend.assume_role(region_name=region, role_session_name=session, role_arn=role_arn, policy="",
                               duration=DURATION_SECONDS, external_id="")


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
