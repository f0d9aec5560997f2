"""``smemu ecr ...``: push local images into the emulator's ECR, log Docker in, re-sync.

``cli.py`` adds these with one line, ``cli_ecr.register(sub)``::

    smemu ecr push LOCAL_IMAGE [REPO[:TAG]]   tag + push into the local registry, mirror into ECR,
                                              print the ECR URI to use in TrainingImage / Image
    smemu ecr login                           `docker login` to the local registry with an ECR token
    smemu ecr sync                            mirror everything in the registry into ECR (after a
                                              plain `docker push 127.0.0.1:4571/...`)

The push works without a running emulator (the registry is started on demand, and resolution
reads the registry); the ECR mirror (DescribeImages, ...) needs the emulator and is refreshed
by ``smemu ecr sync`` when it was down.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

from emulator.config import Settings, load_settings

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def register(subparsers: Any) -> None:
    """Add ``ecr push|login|sync`` to the ``smemu`` subcommands."""
    ecr = subparsers.add_parser("ecr", help="push images into the emulator's ECR (a local registry)")
    commands = ecr.add_subparsers(dest="ecr_command", required=True)

    push = commands.add_parser("push", help="push a local image; prints the ECR URI to use")
    push.add_argument("local_image", metavar="LOCAL_IMAGE", help="a local image, e.g. my-algo:latest")
    push.add_argument("target", metavar="REPO[:TAG]", nargs="?",
                      help="ECR repository and tag (default: the local image's repository and tag)")
    push.add_argument("--region", help="region of the ECR URI (default SMEMU_REGION)")
    push.add_argument("--port", type=int, help="the emulator's edge port (SMEMU_PORT)")
    push.add_argument("-q", "--quiet", action="store_true", help="print only the ECR URI")
    push.set_defaults(func=cmd_push)

    login = commands.add_parser("login", help="docker login to the local registry with an ECR token")
    login.add_argument("--port", type=int, help="the emulator's edge port (SMEMU_PORT)")
    login.set_defaults(func=cmd_login)

    sync = commands.add_parser("sync", help="mirror every image of the local registry into ECR")
    sync.add_argument("--region", help="region (default SMEMU_REGION)")
    sync.add_argument("--port", type=int, help="the emulator's edge port (SMEMU_PORT)")
    sync.set_defaults(func=cmd_sync)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings().with_overrides(port=getattr(args, "port", None))


def cmd_push(args: argparse.Namespace) -> int:
    """Push LOCAL_IMAGE to the local registry as REPO:TAG and mirror it into ECR."""
    from emulator.ecr import PushFailed, push_image
    from emulator.images import InvalidImageReference, ecr_uri, parse_image, parse_repository_and_tag
    from emulator.registry import RegistryUnavailable, get_registry
    from emulator.runtime.factory import local_engine
    from emulator.runtime.spec import ImageNotFound, RuntimeError_

    settings = _settings(args)
    region = args.region or settings.region
    try:
        if args.target:
            repository, tag = parse_repository_and_tag(args.target)
        else:
            source = parse_image(args.local_image)
            repository, tag = source.repository, source.effective_tag or "latest"
    except InvalidImageReference as exc:
        print(f"smemu ecr push: {exc}", file=sys.stderr)
        return 2
    refusal = _immutable_tag_refusal(settings, region, repository, tag)
    if refusal:
        print(f"smemu ecr push: {refusal}", file=sys.stderr)
        return 1
    say = (lambda _line: None) if args.quiet else (lambda line: print(line, flush=True))
    try:
        result = push_image(local_engine(), args.local_image, repository, tag, get_registry(settings), progress=say)
    except ImageNotFound:
        print(f"smemu ecr push: no local image {args.local_image!r} (see `docker images`)", file=sys.stderr)
        return 1
    except (PushFailed, RegistryUnavailable, RuntimeError_) as exc:
        print(f"smemu ecr push: {exc}", file=sys.stderr)
        return 1
    uri = ecr_uri(settings.account_id, region, repository, tag)
    detail = _post(settings, "/_smemu/ecr/images", {"repositoryName": repository, "imageTag": tag, "region": region})
    if args.quiet:
        print(uri)
        return 0
    print(f"pushed {args.local_image} as {result.registry_reference} ({result.digest})")
    if detail is None:
        print(f"note: the emulator does not answer on {settings.endpoint_url}; run `smemu ecr sync` once it is up so "
              f"ECR's DescribeImages lists the image (jobs can use it already)")
    elif "message" in detail:
        print(f"warning: mirroring into ECR failed: {detail['message']}", file=sys.stderr)
        return 1
    else:
        print(f"ECR image: {detail['imageDigest']}, {detail['imageSizeInBytes']} bytes")
    print(f"use: {uri}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    """``aws ecr get-login-password | docker login --username AWS --password-stdin <registry>``."""
    from emulator.registry import RegistryUnavailable, get_registry

    settings = _settings(args)
    registry = get_registry(settings)
    try:
        registry.ensure_running()
    except RegistryUnavailable as exc:
        print(f"smemu ecr login: {exc}", file=sys.stderr)
        return 1
    from botocore.exceptions import BotoCoreError, ClientError

    user, password = "AWS", f"{settings.account_id}-auth-token"
    try:
        import base64

        ecr = _ecr_client(settings, settings.region)
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        user, _, password = base64.b64decode(token).decode().partition(":")
    except (BotoCoreError, ClientError, ValueError, LookupError) as exc:  # no emulator: any password will do
        print(f"note: no ECR token from {settings.endpoint_url} ({type(exc).__name__}); using a local one")
    docker_cli = shutil.which("docker")
    if docker_cli:
        done = subprocess.run([docker_cli, "login", "--username", user, "--password-stdin", registry.address],
                              input=password.encode(), check=False)
        return done.returncode
    from emulator.runtime.factory import local_engine
    from emulator.runtime.spec import RuntimeError_

    try:
        print(local_engine().login(registry.url, user, password))
    except RuntimeError_ as exc:
        print(f"smemu ecr login: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Ask the running emulator to mirror the whole registry into ECR."""
    settings = _settings(args)
    answer = _post(settings, "/_smemu/ecr/sync", {"region": args.region or settings.region})
    if answer is None:
        print(f"smemu ecr sync: the emulator does not answer on {settings.endpoint_url} (`smemu up`)", file=sys.stderr)
        return 1
    if "message" in answer:
        print(f"smemu ecr sync: {answer['message']}", file=sys.stderr)
        return 1
    for image in answer.get("images", []):
        print(f"{image['imageUri']}  {image['imageDigest']}  {image['imageSizeInBytes']} bytes")
    return 0


def _post(settings: Settings, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """POST JSON to the emulator; its JSON answer (errors too), or None when it does not answer."""
    request = urllib.request.Request(f"http://127.0.0.1:{settings.port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _NO_PROXY.open(request, timeout=120) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            return dict(json.loads(exc.read()))
        except ValueError:
            return {"message": f"HTTP {exc.code}"}
    except (OSError, urllib.error.URLError):
        return None


def _immutable_tag_refusal(settings: Settings, region: str, repository: str, tag: str) -> str | None:
    """ECR's refusal when the repository is IMMUTABLE and already has ``tag`` (None: push is fine)."""
    from botocore.exceptions import BotoCoreError, ClientError

    ecr = _ecr_client(settings, region)
    try:
        found = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
        if found.get("imageTagMutability") != "IMMUTABLE":
            return None
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except (ClientError, BotoCoreError, IndexError):
        return None  # no repository, no such tag, or no emulator running: nothing to refuse
    return (f"The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten "
            f"because the repository is immutable.")


def _ecr_client(settings: Settings, region: str) -> Any:
    """An ECR client for the emulator that fails fast when it is not running."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "ecr", endpoint_url=f"http://127.0.0.1:{settings.port}", region_name=region,
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30),
    )
