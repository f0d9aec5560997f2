"""What the AWS state journal costs: per change, and at restart (replay) as the history grows.

    python benchmarks/aws_state.py [--changes 0,1000,5000]

Runs ``smemu serve`` (store ``memory``: S3 is not what is measured) on a fresh home, makes the
given number of changes through the edge port (IAM CreateRole and CloudWatch Logs
PutLogEvents, half each, from one client), and prints per row: the mean latency of a change
(journaled and fdatasynced before the answer) against a read (GetRole, not journaled) measured
in the same run, the journal's size, and the restart time (SIGTERM, start, until IAM answers),
which is where the replay happens. Measured, not asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.s3_store import Serve  # noqa: E402
from tests.conftest import SAGEMAKER_TRUST_POLICY, make_client  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", default="0,1000,5000")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="smemu-bench-state-"))
    serve = Serve(root / "home", "memory")
    serve.home.mkdir()
    print(f"| {'changes':>8} | {'change ms':>9} | {'read ms':>7} | {'journal MiB':>11} | {'restart s':>9} |")
    print(f"|{'-' * 10}|{'-' * 11}|{'-' * 9}|{'-' * 13}|{'-' * 11}|")
    try:
        serve.start()
        iam, logs = make_client("iam", serve.url), make_client("logs", serve.url)
        iam.create_role(RoleName="ReadMe", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
        logs.create_log_group(logGroupName="/bench")
        logs.create_log_stream(logGroupName="/bench", logStreamName="s")
        made = 0
        for target in (int(c) for c in args.changes.split(",")):
            started, count = time.perf_counter(), target - made
            while made < target:
                if made % 2:
                    iam.create_role(RoleName=f"BenchRole{made}", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
                else:
                    logs.put_log_events(logGroupName="/bench", logStreamName="s", logEvents=[
                        {"timestamp": int(time.time() * 1000), "message": f"line {made}"}])
                made += 1
            change_ms = (time.perf_counter() - started) / count * 1000 if count else float("nan")
            started = time.perf_counter()
            for _ in range(200):
                iam.get_role(RoleName="ReadMe")
            read_ms = (time.perf_counter() - started) / 200 * 1000
            serve.stop()
            restart = serve.start()
            iam, logs = make_client("iam", serve.url), make_client("logs", serve.url)
            assert iam.get_role(RoleName="ReadMe")["Role"]["RoleName"] == "ReadMe"
            size = (serve.home / "state" / "aws-journal.jsonl").stat().st_size / 2**20
            print(f"| {target:>8} | {change_ms:>9.2f} | {read_ms:>7.2f} | {size:>11.2f} | {restart:>9.2f} |",
                  flush=True)
    finally:
        serve.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
