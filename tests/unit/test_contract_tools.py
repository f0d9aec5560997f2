"""The checker's pure helpers: reports, JUnit XML, inputs, socket tables, file-read watching."""

from __future__ import annotations

import io
import json
import tarfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from emulator.contract import rules_of
from emulator.contract.engine import parse_port_range, parse_socket_table
from emulator.contract.file_reads import ReadWatch
from emulator.contract.inputs import (
    MAX_PAYLOAD,
    CheckInputError,
    CheckOptions,
    archive_members,
    max_payload,
    pack_folder,
    parse_pairs,
)
from emulator.contract.report import Report, junit_xml, render_table
from emulator.contract.rules import Result, failed, passed, skipped


def sample_report() -> Report:
    first, second, third = rules_of("training")[:3]
    return Report("my-image:1", "training", [
        Result(first, passed("exited 0")),
        Result(second, failed("never opened hyperparameters.json " + "x" * 200)),
        Result(third, skipped("not evaluated: no channel was given")),
    ], seconds=2.5)


def test_the_table_shows_rule_result_evidence_and_documentation() -> None:
    report = sample_report()
    text = render_table(report, width=120)
    assert "training.hyperparameters" in text and "FAIL" in text and "never opened" in text
    assert "your-algorithms-training-algo-running-container" in text
    assert "https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-dockerfile.html" in text
    assert "1 passed, 1 failed, 1 skipped" in text
    assert report.exit_code == 1 and report.failed


def test_junit_xml_has_a_failure_and_a_skip_per_rule() -> None:
    suite = ET.fromstring(junit_xml(sample_report()).split("\n", 1)[1])
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["training.hyperparameters"].find("failure") is not None
    assert cases["training.channels"].find("skipped") is not None
    assert cases["training.train-argument"].find("failure") is None


def test_a_report_without_failures_exits_zero() -> None:
    report = Report("img", "training", [Result(rules_of("training")[0], passed("ok"))])
    assert report.exit_code == 0


def test_key_value_options_keep_equals_signs_in_values_and_refuse_malformed_ones() -> None:
    assert parse_pairs(["a=1", "b=x=y"], "--hyperparameter") == {"a": "1", "b": "x=y"}
    with pytest.raises(CheckInputError, match="KEY=VALUE"):
        parse_pairs(["novalue"], "--hyperparameter")


def test_requests_pair_payloads_with_content_types(tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_bytes(b'{"x": 1}')
    assert CheckOptions().requests() == [("application/json", b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}')]
    assert CheckOptions(content_types=("application/json", "text/csv"), payloads=(str(payload),)).requests() == [
        ("application/json", b'{"x": 1}'), ("text/csv", b'{"x": 1}')]
    with pytest.raises(CheckInputError, match="--payload"):
        CheckOptions(content_types=("image/png",)).requests()
    with pytest.raises(CheckInputError, match="one per --content-type"):
        CheckOptions(content_types=("a/b", "c/d", "e/f"), payloads=(str(payload), str(payload))).requests()


def test_maximum_payloads_are_valid_documents_of_exactly_six_mib() -> None:
    body = max_payload("application/json", b'{"instances": [[1, 2]]}')
    assert body is not None and len(body) == MAX_PAYLOAD
    assert json.loads(body) == {"instances": [[1, 2]]}
    csv = max_payload("text/csv; charset=utf-8", b"1,2\n3,4\n")
    assert csv is not None and len(csv) == MAX_PAYLOAD and csv.startswith(b"1,2\n3,4\n1,2\n")
    assert max_payload("image/png", b"\x89PNG") is None


def test_folders_are_packed_as_sagemaker_packs_models(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"w")
    (tmp_path / "sub" / "config.json").write_text("{}")
    assert archive_members(pack_folder(tmp_path)) == ("sub/config.json", "weights.bin")
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w:gz"):
        pass
    assert archive_members(empty.getvalue()) == ()


def test_listening_sockets_are_read_from_proc_net_tables() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"
        "   1: 0100007F:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2\n"
        "   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3\n"
        "   3: 0B00007F:A7AB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4\n"
    )
    assert parse_socket_table(table) == {8080, 9000}  # not Docker's resolver on 127.0.0.11
    assert parse_port_range("21000-21999") == (21000, 21999)
    assert parse_port_range("junk") is None and parse_port_range(None) is None


def test_reads_of_watched_files_are_seen_and_writes_are_not(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "early").mkdir(parents=True)
    watch = ReadWatch.create()
    if watch is None:
        pytest.fail("inotify is not available on this Linux machine")
    with watch:
        watch.watch_tree(config)
        (config / "hyperparameters.json").write_text("{}")
        (config / "resourceconfig.json").write_text("{}")
        (config / "early" / "a.csv").write_text("1\n")
        (config / "late").mkdir()
        wait_until(lambda: watch.watching(config / "late"), "the new folder to be watched")
        (config / "late" / "b.csv").write_text("2\n")
        assert watch.reads_under(config) == ()
        for name in ("hyperparameters.json", "early/a.csv", "late/b.csv"):
            (config / name).read_text()
        wait_until(lambda: len(watch.reads_under(config)) == 3, "three reads")
        assert watch.reads_under(config) == ("early/a.csv", "hyperparameters.json", "late/b.csv")
        assert watch.reads_under(config / "late") == ("b.csv",)


def wait_until(probe: Callable[[], object], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
