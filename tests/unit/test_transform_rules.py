"""Batch transform's pure rules: splitting, packing within MaxPayloadInMB, and SageMaker's JSONPath."""

from __future__ import annotations

import struct

import pytest

from emulator.jobs.pipe import recordio_record
from emulator.transform import filters
from emulator.transform.records import MIB, RecordError, batches, payload, split


def test_line_records_pack_within_the_payload_limit_in_order() -> None:
    line = b"x" * (MIB // 4 - 1)  # four framed lines make exactly 1 MiB
    records = split(b"\n".join([line] * 9) + b"\n\n", "Line")
    assert len(records) == 9 and records[0].framed == line + b"\n"
    grouped = batches(records, "MultiRecord", 1)
    assert [len(g) for g in grouped] == [4, 4, 1]
    assert payload(grouped[0], "MultiRecord") == (line + b"\n") * 4
    assert [len(g) for g in batches(records, "SingleRecord", 1)] == [1] * 9
    with pytest.raises(RecordError, match="more than MaxPayloadInMB"):
        batches(split(b"y" * (MIB + 1), "None"), "MultiRecord", 1)
    assert len(batches(split(b"y" * (MIB + 1), "None"), "MultiRecord", 0)) == 1  # 0: no limit


def test_binary_records_lose_their_framing_only_one_at_a_time() -> None:
    body = recordio_record(b"abc") + recordio_record(b"defgh")
    records = split(body, "RecordIO")
    assert [r.data for r in records] == [b"abc", b"defgh"]
    assert payload(records, "MultiRecord") == body and payload(records[:1], "SingleRecord") == b"abc"
    tf = b"".join(struct.pack("<Q", len(d)) + b"\0" * 4 + d + b"\0" * 4 for d in (b"one", b"three"))
    assert [r.data for r in split(tf, "TFRecord")] == [b"one", b"three"]


@pytest.mark.parametrize(("value", "expression", "expected"), [
    (["id", "1", "2"], "$[1:]", ["1", "2"]),
    (["a", "b", "c", "d", "e", "f", "g"], "$[0,5:]", ["a", "f", "g"]),
    (["a", "b", "c", "d"], "$[1:2]", ["b", "c"]),  # SageMaker's slices include their end
    (["a", "b", "c"], "$[-1]", "c"),
    ({"id": 1, "features": [1, 2]}, "$.features", [1, 2]),
    ({"id": 1, "x": 2, "SageMakerOutput": 3}, "$['id','SageMakerOutput']", {"id": 1, "SageMakerOutput": 3}),
    ({"a": 1}, "$", {"a": 1}),
])
def test_jsonpath_subset(value: object, expression: str, expected: object) -> None:
    assert filters.select(value, expression) == expected


def test_join_and_render() -> None:
    assert filters.join(["id", "1"], ["3"]) == ["id", "1", "3"]
    assert filters.join({"a": 1}, {"p": 0.5}) == {"a": 1, "SageMakerOutput": {"p": 0.5}}
    assert filters.join([1, 2], 3) == [1, 2, 3]
    assert filters.join("text", 3) == {"SageMakerInput": "text", "SageMakerOutput": 3}
    assert filters.render(filters.parse(b'id,"a,b",3', "text/csv"), "text/csv") == b'id,"a,b",3'
    with pytest.raises(filters.FilterError, match="selects index 5"):
        filters.select(["a"], "$[5]")
