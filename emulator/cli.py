"""``smemu``: serve the emulator, check the machine and containers; ``status``/``logs`` are in cli_observe.py."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emulator.config import Settings, load_settings
from emulator.polling import poll_until


def export_lines(settings: Settings) -> list[str]:
    """The shell lines that point boto3, the AWS CLI and the SageMaker SDK at the emulator."""
    # S3 is relayed to the store on the edge port itself, signed with the store's credentials,
    # so one endpoint and any credentials do for every service and every store.
    return [
        f"export AWS_ENDPOINT_URL={settings.endpoint_url}",
        "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test",
        f"export AWS_DEFAULT_REGION={settings.region}",
    ]


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    return settings.with_overrides(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        home=Path(args.home).expanduser() if getattr(args, "home", None) else None,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the edge port in the foreground until SIGINT or SIGTERM."""
    from emulator.server import EmulatorServer

    from emulator.awsstate import JournalError
    from emulator.homelock import HomeInUse
    from emulator.objectstore import StoreUnavailable
    from emulator.store import StoreVersionError

    settings = _settings(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = EmulatorServer(settings)
    except (StoreUnavailable, JournalError, HomeInUse, StoreVersionError) as exc:
        print(f"sagemaker-emulator cannot start: {exc}", file=sys.stderr, flush=True)
        return 1

    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    print(f"sagemaker-emulator listening on {settings.endpoint_url} (state in {settings.home})", flush=True)
    print("Point your AWS clients at it:", flush=True)
    for line in export_lines(settings):
        print(f"  {line}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Start ``smemu serve`` in the background and return once it answers."""
    from emulator.server import port_is_open

    settings = _settings(args)
    settings.home.mkdir(parents=True, exist_ok=True)
    pid_file = settings.home / "smemu.pid"
    log_file = settings.home / "smemu.log"
    if port_is_open(settings.host, settings.port):
        print(f"sagemaker-emulator already answers on {settings.endpoint_url}")
    else:
        command = [sys.executable, "-m", "emulator.cli", "serve", "--host", settings.host,
                   "--port", str(settings.port), "--home", str(settings.home)]
        with open(log_file, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        pid_file.write_text(str(process.pid))
        if not poll_until(lambda: port_is_open(settings.host, settings.port), args.timeout, 0.1,
                          give_up=lambda: process.poll() is not None):
            print(f"sagemaker-emulator did not start; see {log_file}:", file=sys.stderr)
            print(log_file.read_text()[-4000:], file=sys.stderr)
            return 1
        print(f"sagemaker-emulator answers on {settings.endpoint_url} (pid {process.pid}, log {log_file})")
    print("Point your AWS clients at it:")
    for line in export_lines(settings):
        print(f"  {line}")
    return 0


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the background emulator started by ``smemu up``."""
    settings = _settings(args)
    pid_file = settings.home / "smemu.pid"
    if not pid_file.exists():
        print("no background emulator (no pid file)")
        return 0
    pid = int(pid_file.read_text().strip() or 0)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        print("background emulator was not running")
        return 0
    poll_until(lambda: not _process_exists(pid), 60, 0.1)
    pid_file.unlink(missing_ok=True)
    print(f"stopped sagemaker-emulator (pid {pid})")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print a line per check; exit 1 when a required piece is missing."""
    from emulator.doctor import run_checks

    checks = run_checks(_settings(args))
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}")
        if check.fix:
            print(f"       fix: {check.fix}")
    return 0 if all(c.ok for c in checks) else 1


def cmd_base_image(args: argparse.Namespace) -> int:
    """Build the offline base image with the script that ships inside the package."""
    from importlib import resources

    env = dict(os.environ)
    if args.image:
        env["SMEMU_BASE_IMAGE"] = args.image
    with resources.as_file(resources.files("emulator") / "resources" / "build-base-image") as script:
        return subprocess.call(["bash", str(script), *(["--force"] if args.force else [])], env=env)


def cmd_models(args: argparse.Namespace) -> int:
    """Print what a multi-model endpoint has loaded, per instance, with its cache counters."""
    import json
    import urllib.parse

    from emulator.cli_observe import CliError, emulator_url, get_json

    try:
        view = get_json(emulator_url(args), f"/_smemu/endpoints/{urllib.parse.quote(args.name, safe='')}/models")
    except CliError as exc:
        print(f"smemu: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(view, indent=2) if args.json else "\n".join(format_models(view)))
    return 0


def format_models(view: dict[str, Any]) -> list[str]:
    """``smemu models`` as text: counters per variant and instance, then one line per model."""

    def counters(stats: dict[str, Any]) -> str:
        return (
            f"hits {stats['Hits']}  misses {stats['Misses']}  loads {stats['Loads']}  "
            f"evictions {stats['Evictions']}  failures {stats['Failures']}  "
            f"load time mean {stats['LoadSecondsMean'] * 1000:.1f} ms  max {stats['LoadSecondsMax'] * 1000:.1f} ms"
        )

    lines = [f"endpoint {view['EndpointName']}: {counters(view['Stats'])}"]
    for variant in view["Variants"]:
        if not variant["MultiModel"]:
            lines.append(f"  variant {variant['VariantName']}: not a multi-model variant")
            continue
        lines.append(
            f"  variant {variant['VariantName']} ({variant['ModelDataUrl']}, cache {variant['ModelCacheSetting']}): "
            f"{variant['LoadedModelCount']} loaded; {counters(variant['Stats'])}"
        )
        for instance in variant["Instances"]:
            lines.append(f"    instance {instance['InstanceId']}: {instance['LoadedModelCount']} loaded")
            for model in instance["Models"]:
                lines.append(
                    f"      {model['State']:<9} {model['TargetModel']}  hits {model['Hits']}  loads {model['Loads']}  "
                    f"{model['SizeBytes']} B  last load {model['LastLoadSeconds'] * 1000:.1f} ms"
                )
    return lines


def build_parser() -> argparse.ArgumentParser:
    """The ``smemu`` argument parser."""
    parser = argparse.ArgumentParser(prog="smemu", description="Local emulator of Amazon SageMaker's container platform.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the emulator on its edge port")
    serve.add_argument("--host", help="bind address (SMEMU_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="edge port (SMEMU_PORT, default 4570)")
    serve.add_argument("--home", help="state folder (SMEMU_HOME, default ~/.smemu)")
    serve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    serve.set_defaults(func=cmd_serve)

    up = sub.add_parser("up", help="start the emulator in the background and wait until it answers")
    up.add_argument("--host")
    up.add_argument("--port", type=int)
    up.add_argument("--home")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the edge port")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the background emulator")
    down.add_argument("--home")
    down.set_defaults(func=cmd_down)

    doctor = sub.add_parser("doctor", help="check the engine, base image, registry, GPU runtime and S3")
    doctor.add_argument("--port", type=int)
    doctor.set_defaults(func=cmd_doctor)

    base = sub.add_parser("base-image", help="build the offline base image (smemu-base/python:3.11)")
    base.add_argument("--image", help="tag to build (SMEMU_BASE_IMAGE)")
    base.add_argument("--force", action="store_true", help="rebuild it even if it exists")
    base.set_defaults(func=cmd_base_image)

    models = sub.add_parser("models", help="show what a multi-model endpoint has loaded, with cache counters")
    models.add_argument("name", help="endpoint name")
    models.add_argument("--port", type=int, help="the emulator's port on localhost")
    models.add_argument("--endpoint-url", help="the emulator's URL (default: AWS_ENDPOINT_URL, else SMEMU_PORT)")
    models.add_argument("--json", action="store_true", help="print the raw view as JSON")
    models.set_defaults(func=cmd_models)

    from emulator import cli_check, cli_ecr, cli_observe

    cli_observe.register(sub)
    cli_ecr.register(sub)
    cli_check.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``smemu`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
