"""``smemu check IMAGE --as KIND``: run an image through the emulator against SageMaker's container contract."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2


def register(sub: Any) -> None:
    """Add the ``check`` command to the ``smemu`` parser."""
    from emulator.contract import KINDS

    check = sub.add_parser(
        "check", help="check an image against SageMaker's container contract",
        description="Run IMAGE through the emulator as SageMaker runs it and judge every rule of SageMaker's "
                    "container contract for its kind. Prints a table (rule, result, evidence, documentation); "
                    "exits 1 when a rule fails.")
    check.add_argument("image", help="a local image, or an ECR URI the emulator resolves")
    check.add_argument("--as", dest="kind", required=True, choices=KINDS, help="the kind of container")
    inputs = check.add_argument_group("inputs")
    inputs.add_argument("--channel", action="append", metavar="NAME=PATH_OR_S3_URI",
                        help="training channel or processing input (at /opt/ml/processing/input/NAME): a local file "
                             "or folder (uploaded) or an s3:// prefix; repeatable")
    inputs.add_argument("--hyperparameter", action="append", metavar="KEY=VALUE", help="repeatable")
    inputs.add_argument("--error-hyperparameter", action="append", metavar="KEY=VALUE",
                        help="added for the error run: makes the algorithm fail (default: corrupt every channel)")
    inputs.add_argument("--error-channel", action="append", metavar="NAME=PATH_OR_S3_URI",
                        help="replaces a channel for the error run with data the algorithm must reject")
    inputs.add_argument("--stop-hyperparameter", action="append", metavar="KEY=VALUE",
                        help="added for the stop run: keeps the algorithm running until it is stopped")
    inputs.add_argument("--argument", action="append", metavar="ARG",
                        help="processing: a ContainerArgument (write --argument=--flag for one that starts with -)")
    inputs.add_argument("--error-argument", action="append", metavar="ARG",
                        help="processing: ContainerArguments of the error run, which must make the job fail")
    inputs.add_argument("--stop-argument", action="append", metavar="ARG",
                        help="processing: ContainerArguments of the stop run, which keep the job running")
    inputs.add_argument("--output", action="append", metavar="NAME[=LOCAL_PATH]",
                        help="processing: an output (default one named output at /opt/ml/processing/output/output)")
    inputs.add_argument("--env", action="append", metavar="KEY=VALUE", help="container environment; repeatable")
    inputs.add_argument("--model", metavar="PATH_OR_S3_URI",
                        help="model artifacts: a model.tar.gz, a folder (packed), or an s3:// URI")
    inputs.add_argument("--content-type", action="append", metavar="TYPE",
                        help="a content type /invocations must accept (default application/json); repeatable")
    inputs.add_argument("--payload", action="append", metavar="FILE",
                        help="a valid request body: one for all content types, or one per --content-type")
    inputs.add_argument("--instance-type", default="ml.m5.large")
    run = check.add_argument_group("running")
    run.add_argument("--junit-xml", metavar="PATH", help="also write the results as JUnit XML")
    run.add_argument("--endpoint-url", metavar="URL",
                     help="use this running emulator instead of starting one (default: a fresh one in this process)")
    run.add_argument("--emulator-home", metavar="PATH",
                     help="that emulator's SMEMU_HOME, to watch which staged files a container reads")
    run.add_argument("--startup-timeout", type=float, metavar="SECONDS",
                     help="the /ping deadline of a new endpoint (default: the emulator's, 240 s as on SageMaker)")
    run.add_argument("--stop-timeout", type=float, metavar="SECONDS",
                     help="SIGTERM-to-SIGKILL grace (default SageMaker's: 120 s for training, 30 s for endpoints)")
    run.add_argument("--stop-after", type=float, default=3.0, metavar="SECONDS",
                     help="how long the stop run's container runs before StopTrainingJob (default 3)")
    run.add_argument("--concurrency", type=int, default=8, metavar="N", help="clients of the load test (default 8)")
    run.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                     help="the longest a job or an endpoint may take (default 1800)")
    check.set_defaults(func=cmd_check)


def options_from(args: argparse.Namespace) -> Any:
    """The :class:`~emulator.contract.CheckOptions` the arguments describe."""
    from emulator.contract.inputs import CheckOptions, parse_pairs

    return CheckOptions(
        channels=parse_pairs(args.channel, "--channel"),
        hyperparameters=parse_pairs(args.hyperparameter, "--hyperparameter"),
        error_hyperparameters=parse_pairs(args.error_hyperparameter, "--error-hyperparameter"),
        error_channels=parse_pairs(args.error_channel, "--error-channel"),
        stop_hyperparameters=parse_pairs(args.stop_hyperparameter, "--stop-hyperparameter"),
        environment=parse_pairs(args.env, "--env"),
        arguments=tuple(args.argument or ()),
        error_arguments=tuple(args.error_argument or ()),
        stop_arguments=tuple(args.stop_argument or ()),
        outputs={name: path for name, _, path in (o.partition("=") for o in args.output or [])},
        model=args.model,
        content_types=tuple(args.content_type or ()),
        payloads=tuple(args.payload or ()),
        instance_type=args.instance_type,
        stop_after=args.stop_after,
        concurrency=max(1, args.concurrency),
        job_timeout=args.timeout,
    )


def cmd_check(args: argparse.Namespace) -> int:
    """Run the check and print the table; 0 when no rule failed, 1 when one did, 2 on bad input or no engine."""
    from botocore.exceptions import ClientError

    from emulator.contract import (
        CheckInputError,
        EmulatorTarget,
        junit_xml,
        local_emulator,
        render_table,
        run_check,
    )
    from emulator.runtime.docker_client import docker_client, docker_errors

    try:
        options = options_from(args)
        options.requests()
    except CheckInputError as exc:
        print(f"smemu check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        docker_client().ping()
    except docker_errors.DockerException as exc:
        print(f"smemu check: no Docker engine answers ({exc}); start one (scripts/install-docker)", file=sys.stderr)
        return EXIT_USAGE
    print(f"checking {args.image} as a {args.kind} container through the emulator...", file=sys.stderr, flush=True)
    try:
        if args.endpoint_url:
            target = EmulatorTarget(args.endpoint_url.rstrip("/"),
                                    Path(args.emulator_home).expanduser() if args.emulator_home else None)
            report = run_check(target, args.image, args.kind, options)
        else:
            grace = args.stop_timeout
            with local_emulator(startup_timeout=args.startup_timeout, training_stop_grace=grace,
                                endpoint_stop_grace=grace) as target:
                report = run_check(target, args.image, args.kind, options)
    except CheckInputError as exc:
        print(f"smemu check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as exc:  # the emulator refused what the options describe (an invalid name or value)
        print(f"smemu check: the emulator refused the check's request: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(render_table(report), end="")
    if args.junit_xml:
        Path(args.junit_xml).write_text(junit_xml(report))
    return report.exit_code
