"""``smemu status`` and ``smemu logs``: what a running emulator runs, and its logs.

Both ask the emulator's read-only API (``/_smemu/api/``, emulator/observe/dashboard.py), so
every kind the emulator knows works the same way and the CLI holds no kind table of its own.
The emulator is found at ``--endpoint-url``, else ``--port`` on localhost, else
``AWS_ENDPOINT_URL`` (what the user's AWS tools use), else ``SMEMU_HOST``/``SMEMU_PORT``.
Every failure is one clear line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from emulator.config import load_settings
from emulator.observe.kinds import KINDS, find_kind

FOLLOW_SECONDS = 1.0
KIND_CHOICES = tuple(kind.cli_name for kind in KINDS)
"""``--kind`` spellings; without it every kind is searched, in this order."""


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit status 1."""


class NotFound(CliError):
    """The emulator answered 404."""


def emulator_url(args: argparse.Namespace, environ: dict[str, str] | None = None) -> str:
    """Where the emulator answers (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    if getattr(args, "endpoint_url", None):
        return str(args.endpoint_url).rstrip("/")
    if getattr(args, "port", None):
        return f"http://localhost:{args.port}"
    if env.get("AWS_ENDPOINT_URL"):
        return env["AWS_ENDPOINT_URL"].rstrip("/")
    return load_settings(env).endpoint_url


def get_json(base: str, path: str, timeout: float = 10.0) -> Any:
    """GET ``base + path`` and decode its JSON; CliError/NotFound with the emulator's message."""
    url = base + path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read() or b"{}").get("message")
        except ValueError:
            message = None
        error = NotFound if exc.code == 404 else CliError
        raise error(message or f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"no sagemaker-emulator answers on {base} ({reason}). Start one with `smemu up`, or point "
            "--endpoint-url or AWS_ENDPOINT_URL at it."
        ) from None
    except ValueError:
        raise CliError(f"{url} did not answer JSON: is {base} a sagemaker-emulator?") from None


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# -- smemu status ---------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    """Print every job and endpoint of the running emulator."""
    try:
        status = get_json(emulator_url(args), "/_smemu/api/status")
    except CliError as exc:
        print(f"smemu: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2) if args.json else "\n".join(format_status(status)))
    return 0


def _clock(epoch: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(epoch))) if epoch else ""


def _duration(start: Any, end: Any) -> str:
    if not start:
        return ""
    seconds = max(0, round((float(end) if end else time.time()) - float(start)))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def format_status(status: dict[str, Any]) -> list[str]:
    """``smemu status`` as text: the emulator, a table of jobs, a table of endpoint instances."""
    info = status["Emulator"]
    lines = [
        f"sagemaker-emulator {info['Version']} on {info['EndpointUrl']} (pid {info['Pid']})",
        f"  home       {info['Home']}",
        f"  S3         {info['S3']}",
        f"  dashboard  {info['Dashboard']}",
        "",
    ]
    jobs = status["Jobs"]
    if jobs:
        rows = [["KIND", "NAME", "STATUS", "SECONDARY", "INSTANCES", "CREATED", "DURATION"]]
        reasons = []
        for job in jobs:
            rows.append([job["Kind"], job["Name"], job["Status"], job.get("SecondaryStatus", ""),
                         job.get("Instances", ""), _clock(job.get("CreationTime")),
                         _duration(job.get("StartTime") or job.get("CreationTime"), job.get("EndTime"))])
            if job.get("FailureReason"):
                reasons.append(f"  {job['Name']}: {job['FailureReason']}")
        lines += ["JOBS", *columns(rows)]
        if reasons:
            lines += ["", "FAILURE REASONS", *reasons]
    else:
        lines.append("JOBS: none")
    lines.append("")
    endpoints = status["Endpoints"]
    if not endpoints:
        lines.append("ENDPOINTS: none")
        return lines
    rows = [["ENDPOINT", "STATUS", "VARIANT", "INSTANCE", "HEALTH", "CONTAINERS", "INVOCATIONS"]]
    reasons = []
    for endpoint in endpoints:
        calls = endpoint.get("Invocations") or {}
        fleet = (endpoint.get("Fleet") or {}).get("Active") or {}
        first = True
        for variant in fleet.get("Variants") or [{}]:
            stats = calls.get(variant.get("VariantName", ""), {})
            count = str(stats.get("Invocations", 0)) if variant else ""
            for instance in variant.get("Instances") or [{}]:
                containers = ", ".join(
                    f"{c['Hostname']} {c['Address'] or '-'} (:{c['Port']})" for c in instance.get("Containers", []))
                kind = "serverless" if variant.get("Serverless") else variant.get("InstanceType", "")
                rows.append([endpoint["Name"] if first else "", endpoint["Status"] if first else "",
                             f"{variant.get('VariantName', '')} ({kind})" if variant else "",
                             instance.get("InstanceId", "-" if variant else ""), instance.get("Health", ""),
                             containers, count])
                first, count = False, ""
        if endpoint.get("FailureReason"):
            reasons.append(f"  {endpoint['Name']}: {endpoint['FailureReason']}")
    lines += ["ENDPOINTS", *columns(rows)]
    if reasons:
        lines += ["", "FAILURE REASONS", *reasons]
    return lines


# -- smemu logs -----------------------------------------------------------------------------------


def find_resource(base: str, name: str, kind: str | None) -> str:
    """The kind key of the resource called ``name`` (the given kind, else the first kind that has it)."""
    kinds = [k for k in KINDS if kind is None or k.cli_name == kind]
    for candidate in kinds:
        try:
            get_json(base, f"/_smemu/api/resources/{candidate.key}/{_quote(name)}")
        except NotFound:
            continue
        return candidate.key
    what = kinds[0].label if kind else "job or endpoint"
    raise CliError(f"there is no {what} named {name} on {base}")


def cmd_logs(args: argparse.Namespace) -> int:
    """Print a resource's log events; with --follow keep printing until it is terminal."""
    base = emulator_url(args)
    try:
        key = find_resource(base, args.name, args.kind)
        return _print_logs(base, key, args.name, args.follow)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"smemu: {exc}", file=sys.stderr)
        return 1


def _print_logs(base: str, key: str, name: str, follow: bool) -> int:
    path = f"/_smemu/api/resources/{key}/{_quote(name)}/logs"
    cursor = ""
    terminal_seen = False
    while True:
        try:
            page = get_json(base, path + (f"?cursor={_quote(cursor)}" if cursor else ""))
        except NotFound:  # deleted while we followed it
            print(f"{_label(key)} {name}: deleted", file=sys.stderr)
            return 0
        for event in page["Events"]:
            print(f"{event['Stream']} {event['Message']}", flush=True)
        cursor = page["Cursor"]
        if page["Events"]:
            continue  # a full page: read on at once
        if not follow or terminal_seen:
            print(final_line(page), file=sys.stderr, flush=True)
            return 1 if follow and page["Status"] == "Failed" else 0
        # Terminal was read before this page's events: one more (empty) read after it and we are done.
        terminal_seen = bool(page["Terminal"])
        if not terminal_seen:
            time.sleep(FOLLOW_SECONDS)


def _label(key: str) -> str:
    kind = find_kind(key)
    return kind.label if kind else key


def final_line(page: dict[str, Any]) -> str:
    """``training job NAME: Failed: <reason>`` (or the status it is in now)."""
    label = _label(page["Kind"])
    status = page["Status"]
    if page.get("SecondaryStatus") and page["SecondaryStatus"] != status:
        status += f" ({page['SecondaryStatus']})"
    reason = page.get("FailureReason")
    return f"{label} {page['Name']}: {status}" + (f": {reason}" if reason else "")


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="the emulator's URL (default: AWS_ENDPOINT_URL, else SMEMU_PORT)")
    parser.add_argument("--port", type=int, help="the emulator's port on localhost")


def register(sub: Any) -> None:
    """Add ``status`` and ``logs`` to the ``smemu`` parser."""
    status = sub.add_parser("status", help="show every job and endpoint, their statuses, instances and ports")
    status.add_argument("--json", action="store_true", help="print the raw view as JSON")
    _add_location(status)
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser("logs", help="print a job's or endpoint's logs (CloudWatch Logs)")
    logs.add_argument("name")
    logs.add_argument("--kind", choices=KIND_CHOICES, help="the resource's kind (default: found by name)")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing until the job ends (or the endpoint fails or is deleted)")
    _add_location(logs)
    logs.set_defaults(func=cmd_logs)
