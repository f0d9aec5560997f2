"""What the AWS state journal costs: per change, and at restart as the history of changes grows.

    python benchmarks/aws_state.py [--changes 0,2000,20000]

Runs two ``smemu serve`` on fresh homes (store ``memory``: S3 is not what is measured), one
with journal compaction off (``SMEMU_AWS_JOURNAL_COMPACT_AFTER=0``: every start replays the
whole journal, as before compaction existed) and one with the default compaction, and makes
the same changes on both through the edge port (IAM CreateRole and CloudWatch Logs
PutLogEvents, half each, from one client). Per row, up to the given number of changes:

* the mean latency of a change on each (journaled and fdatasynced before the answer; with
  compaction, its checkpoints included) and of a read (GetRole, not journaled);
* the journal's size (and, compacted, the history's);
* restart times, each from starting the process to IAM answering again: without compaction after a
  clean stop (the whole journal replayed); with compaction after kill -9 (checkpoint loaded,
  the changes after it replayed: at most the threshold) and after a clean stop (which
  compacts: nothing replayed; the median of three). In brackets, from ``/_smemu/health``: the
  seconds of the start spent restoring the AWS state (loading, replaying), and the changes
  replayed.

After the table, the worst case with compaction: the threshold less one change after the
last checkpoint, then kill -9, then the restart (which replays all of them).

Measured, not asserted; the rows are printed as a table.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.s3_store import Serve  # noqa: E402
from emulator.awsstate.recorder import COMPACT_AFTER  # noqa: E402
from tests.conftest import SAGEMAKER_TRUST_POLICY, make_client  # noqa: E402

BATCH = 100
"""Changes made on one emulator before switching to the other, so both see the same machine load."""


class Home:
    """One emulator home, its clients, and the changes made on it so far."""

    def __init__(self, root: Path, name: str, compact_after: str | None) -> None:
        env = {"SMEMU_AWS_JOURNAL_COMPACT_AFTER": compact_after} if compact_after is not None else {}
        self.serve = Serve(root / name, "memory", env)
        self.serve.home.mkdir()
        self.change_seconds = 0.0

    def start_again(self) -> None:
        """Start, and return once IAM answers with the state the journal restored."""
        self.serve.start()
        iam = make_client("iam", self.serve.url)
        deadline = time.monotonic() + 120
        while True:  # the S3 answer above means the edge is up; IAM is what the journal restored
            try:
                iam.get_role(RoleName="ReadMe")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def clients(self) -> tuple[Any, Any]:
        return make_client("iam", self.serve.url), make_client("logs", self.serve.url)

    def make_changes(self, first: int, last: int) -> None:
        iam, logs = self.clients()
        started = time.perf_counter()
        for made in range(first, last):
            if made % 2:
                iam.create_role(RoleName=f"BenchRole{made}", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
            else:
                logs.put_log_events(logGroupName="/bench", logStreamName="s", logEvents=[
                    {"timestamp": int(time.time() * 1000), "message": f"line {made}"}])
        self.change_seconds += time.perf_counter() - started

    def read_ms(self) -> float:
        iam, _ = self.clients()
        started = time.perf_counter()
        for _ in range(200):
            iam.get_role(RoleName="ReadMe")
        return (time.perf_counter() - started) / 200 * 1000

    def mib(self, name: str) -> float:
        path = self.serve.home / "state" / name
        return path.stat().st_size / 2**20 if path.exists() else 0.0

    def restart(self, kill: bool) -> tuple[float, float, int]:
        """Seconds from starting the process until IAM answers again (the stop before is not counted), the
        seconds of that spent restoring the AWS state, and how many changes the start replayed."""
        if kill:
            self.serve.kill()
        else:
            self.serve.stop()
        started = time.perf_counter()
        self.start_again()
        seconds = time.perf_counter() - started
        state = self.serve.health()["aws_state"]
        return seconds, float(state["replay_seconds"]), int(state["replayed"])


def _restart(measured: tuple[float, float, int]) -> str:
    seconds, restoring, replayed = measured
    return f"{seconds:.2f} ({restoring:.2f}; {replayed:,})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", default="0,2000,20000")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop both emulators on the way out
    root = Path(tempfile.mkdtemp(prefix="smemu-bench-state-"))
    plain, compacted = Home(root, "off", "0"), Home(root, "on", None)
    columns = ["changes", "change ms off", "change ms on", "read ms", "journal MiB off", "journal MiB on",
               "history MiB", "restart s off (restore s; replayed)", "restart s on, kill -9 (restore s; replayed)",
               "restart s on, stop (restore s; replayed)"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("-" * (len(column) + 2) for column in columns) + "|", flush=True)
    try:
        for home in (plain, compacted):
            home.serve.start()
            iam, logs = home.clients()
            iam.create_role(RoleName="ReadMe", AssumeRolePolicyDocument=SAGEMAKER_TRUST_POLICY)
            logs.create_log_group(logGroupName="/bench")
            logs.create_log_stream(logGroupName="/bench", logStreamName="s")
        made = 0
        for target in (int(count) for count in args.changes.split(",")):
            count = target - made
            plain.change_seconds = compacted.change_seconds = 0.0
            while made < target:
                step = min(BATCH, target - made)
                plain.make_changes(made, made + step)
                compacted.make_changes(made, made + step)
                made += step
            off_ms, on_ms = ((home.change_seconds / count * 1000 if count else float("nan"))
                             for home in (plain, compacted))
            read_ms = plain.read_ms()
            journal_off, journal_on, history = (plain.mib("aws-journal.jsonl"), compacted.mib("aws-journal.jsonl"),
                                                compacted.mib("aws-journal.history.jsonl"))
            off = plain.restart(kill=False)
            killed = compacted.restart(kill=True)
            stops = sorted(compacted.restart(kill=False) for _ in range(3))
            stopped = stops[1]  # the median of three: a start is short enough for the machine's load to show
            cells = [f"{target:,}", f"{off_ms:.2f}", f"{on_ms:.2f}", f"{read_ms:.2f}", f"{journal_off:.2f}",
                     f"{journal_on:.2f}", f"{history:.2f}", _restart(off), _restart(killed), _restart(stopped)]
            print("| " + " | ".join(cells) + " |", flush=True)
        compacted.make_changes(made, made + COMPACT_AFTER - 1)  # the last restart's clean stop left none after it
        print(f"\nworst case with compaction: kill -9 with {COMPACT_AFTER - 1} changes after the checkpoint, "
              f"restart {_restart(compacted.restart(kill=True))}", flush=True)
    finally:
        plain.serve.stop()
        compacted.serve.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
