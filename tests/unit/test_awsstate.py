"""The AWS state journal: its file format, what counts as a change, and deterministic replay."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from pathlib import Path

import pytest

from emulator.awsstate import determinism
from emulator.awsstate.journal import VERSION, Journal, JournalError, read_journal
from emulator.awsstate.recorder import is_change


def test_journal_round_trip_and_private_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "aws-journal.jsonl"
    journal = Journal(path)
    assert journal.append({"t": 1.5, "seed": 7, "kind": "call", "name": "x", "args": {}}, sync=True) == 1
    assert journal.append({"t": 2.5, "seed": 8, "kind": "call", "name": "y", "args": {"a": 1}}, sync=False) == 2
    journal.close()
    header, entries = read_journal(path)
    assert header is not None and header["format"] == "smemu-aws-journal" and header["version"] == VERSION
    assert [(e["n"], e["name"]) for e in entries] == [(1, "x"), (2, "y")]
    assert path.stat().st_mode & 0o777 == 0o600
    Journal(path, next_sequence=3).close()  # reopening appends, never rewrites the header
    assert len(path.read_text().splitlines()) == 3


def test_a_torn_last_line_is_dropped_and_a_damaged_middle_line_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.append({"t": 1, "seed": 1, "kind": "call", "name": "a", "args": {}}, sync=True)
    journal.close()
    with path.open("ab") as handle:
        handle.write(b'{"t": 2, "seed": 2, "kind": "ca')  # kill -9 mid-write: never acknowledged
    _, entries = read_journal(path)
    assert [e["name"] for e in entries] == ["a"]
    assert path.read_bytes().endswith(b"\n")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{not json", lines[1]]) + "\n")
    with pytest.raises(JournalError, match="line 2 is damaged"):
        read_journal(path)


def test_a_newer_or_foreign_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"format": "smemu-aws-journal", "version": VERSION + 1}) + "\n")
    with pytest.raises(JournalError, match="newer sagemaker-emulator"):
        read_journal(path)
    path.write_text(json.dumps({"format": "something-else"}) + "\n")
    with pytest.raises(JournalError, match="not a smemu-aws-journal"):
        read_journal(path)


@pytest.mark.parametrize(("environ", "body", "change"), [
    ({"HTTP_X_AMZ_TARGET": "Logs_20140328.DescribeLogGroups"}, b"", False),
    ({"HTTP_X_AMZ_TARGET": "Logs_20140328.PutLogEvents"}, b"", True),
    ({"CONTENT_TYPE": "application/x-www-form-urlencoded", "REQUEST_METHOD": "POST"}, b"Action=GetRole&RoleName=r",
     False),
    ({"CONTENT_TYPE": "application/x-www-form-urlencoded", "REQUEST_METHOD": "POST"}, b"Action=CreateRole", True),
    ({"REQUEST_METHOD": "GET", "QUERY_STRING": "Action=AssumeRole"}, b"", True),
    ({"REQUEST_METHOD": "POST", "PATH_INFO": "/service/GraniteServiceVersion20100801/operation/PutMetricData"},
     b"", True),
    ({"REQUEST_METHOD": "GET", "PATH_INFO": "/2015-03-31/functions"}, b"", False),
    ({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, b"", False),  # a message, not state
    ({"CONTENT_TYPE": "application/x-www-form-urlencoded", "REQUEST_METHOD": "POST"}, b"Action=Publish", False),
    ({"CONTENT_TYPE": "application/x-www-form-urlencoded", "REQUEST_METHOD": "POST"}, b"Action=Subscribe", True),
    ({"REQUEST_METHOD": "DELETE", "PATH_INFO": "/2015-03-31/functions/f"}, b"", True),
])
def test_what_counts_as_a_change(environ: dict[str, str], body: bytes, change: bool) -> None:
    assert is_change(environ, body) is change


def test_moto_clock_sites_exist_in_this_moto_release() -> None:
    for module_name, attribute, _kind in determinism.CLOCK_SITES:
        assert hasattr(importlib.import_module(module_name), attribute), (module_name, attribute)


def test_a_seeded_change_reproduces_moto_ids_and_timestamps() -> None:
    """What replay relies on: the same seed and time give the same role id and CreateDate."""
    from moto.iam.models import iam_backends

    determinism.install()
    backend = iam_backends["123456789012"]["aws"]
    created = []
    for attempt in range(2):
        with determinism.scoped(seed=424242, now=1_700_000_000.25):
            role = backend.create_role(role_name=f"DeterministicRole{attempt}", assume_role_policy_document="{}",
                                       path="/", permissions_boundary=None, description="", tags=[],
                                       max_session_duration=None)
        created.append((role.id, role.create_date))
        backend.delete_role(role.name)
    assert created[0] == created[1]
    assert created[0][1].replace(tzinfo=dt.timezone.utc).timestamp() == pytest.approx(1_700_000_000.25)
    with determinism.scoped(seed=1, now=1_700_000_000.25):
        other = backend.create_role(role_name="DeterministicOther", assume_role_policy_document="{}", path="/",
                                    permissions_boundary=None, description="", tags=[], max_session_duration=None)
    backend.delete_role(other.name)
    assert other.id != created[0][0]
