"""One input object through the model: split, filter, batch, invoke, join, assemble.

The result is the ``<key>.out`` object's bytes, in input order. Mini-batches of one object go
to the instance concurrently (up to MaxConcurrentTransforms); a response that is not 2xx
fails the whole object (so its ``.out`` is never written) with a reason naming the object and
the records, as SageMaker's data log does. Timeouts, refused connections and 5xx answers are
retried up to ModelClientConfig.InvocationsMaxRetries times (default 3); a 4xx is the model
rejecting the record and is not.
"""

from __future__ import annotations

import gzip
import zlib
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from emulator.hosting.container_http import ConnectionPool, ContainerResponse, ContainerUnreachable
from emulator.transform import filters
from emulator.transform.records import Record, RecordError, batches, payload, response_records, split

_MAX_RESPONSE = 1 << 30


class ObjectFailed(Exception):
    """The object could not be transformed; the message is the job's FailureReason."""


@dataclass(frozen=True)
class Plan:
    """What every object of the job is put through."""

    split_type: str
    strategy: str
    max_payload_mb: int
    content_type: str | None
    accept: str | None
    assemble_line: bool
    compressed: bool
    input_filter: str | None
    output_filter: str | None
    join: bool
    timeout: float
    retries: int

    @classmethod
    def of(cls, record: dict[str, Any], strategy: str, max_payload_mb: int) -> Plan:
        """The plan of a transform job's record and its resolved batch settings."""
        source, output = record["TransformInput"], record["TransformOutput"]
        processing = record.get("DataProcessing") or {}
        client = record.get("ModelClientConfig") or {}
        return cls(split_type=source.get("SplitType", "None"), strategy=strategy, max_payload_mb=max_payload_mb,
                   content_type=source.get("ContentType"), accept=output.get("Accept"),
                   assemble_line=output.get("AssembleWith") == "Line", compressed=source.get("CompressionType") == "Gzip",
                   input_filter=processing.get("InputFilter"), output_filter=processing.get("OutputFilter"),
                   join=processing.get("JoinSource") == "Input",
                   timeout=float(client.get("InvocationsTimeoutInSeconds", 600)),
                   retries=int(client.get("InvocationsMaxRetries", 3)))

    @property
    def per_record(self) -> bool:
        """Whether outputs must be matched to input records (a join or an output filter)."""
        return self.join or not filters.is_default(self.output_filter)


def transform_object(body: bytes, where: str, plan: Plan, pool: ConnectionPool, executor: Executor,
                     stopping: Any) -> bytes | None:
    """The ``.out`` bytes of one object; None when the job was stopped meanwhile."""
    if plan.compressed:
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise ObjectFailed(f"ClientError: {where} is not a valid gzip object: {exc}") from exc
    try:
        originals = split(body, plan.split_type)
        sent = [_filtered(r, plan, number) for number, r in enumerate(originals, 1)]
        grouped = batches(sent, plan.strategy, plan.max_payload_mb)
    except (RecordError, filters.FilterError, UnicodeDecodeError) as exc:
        raise ObjectFailed(f"ClientError: Cannot transform {where}: {exc}") from exc
    starts = [sum(len(g) for g in grouped[:i]) for i in range(len(grouped))]
    futures = [executor.submit(_invoke, pool, payload(g, plan.strategy), plan, stopping) for g in grouped]
    outputs: list[bytes] = []
    for batch, start, future in zip(grouped, starts, futures):
        span = f"record {start + 1}" if len(batch) == 1 else f"records {start + 1}-{start + len(batch)}"
        try:
            response = future.result()
        except _Unanswered as exc:
            raise ObjectFailed(f"ClientError: The model container did not answer for {where} ({span}): {exc}") \
                from exc
        if response is None:
            return None
        if not 200 <= response.status < 300:
            text = response.body[:300].decode("utf-8", errors="replace")
            raise ObjectFailed(f"ClientError: The model container rejected {where} ({span}): "
                               f"HTTP {response.status}: {text}")
        if not plan.per_record:
            outputs.append(response.body)
            continue
        answers = response_records(response.body, len(batch))
        if answers is None:
            raise ObjectFailed(f"ClientError: The model answered {where} ({span}) with a number of records "
                               f"different from the {len(batch)} it was sent; a join or output filter needs one "
                               "output line per input record.")
        for offset, answer in enumerate(answers):
            outputs.append(_joined(originals[start + offset], answer, plan, where, start + offset + 1))
    if plan.assemble_line:
        return b"".join(o if o.endswith(b"\n") else o + b"\n" for o in outputs)
    return b"".join(outputs)


def _filtered(record: Record, plan: Plan, number: int) -> Record:
    if filters.is_default(plan.input_filter):
        return record
    try:
        value = filters.select(filters.parse(record.data, plan.content_type), plan.input_filter)
    except filters.FilterError as exc:
        raise filters.FilterError(f"record {number}: {exc}") from exc
    data = filters.render(value, plan.content_type)
    return Record(data, data + b"\n" if plan.split_type == "Line" else data)


def _joined(original: Record, answer: bytes, plan: Plan, where: str, number: int) -> bytes:
    output_type = plan.accept or plan.content_type
    try:
        value = filters.parse(answer, output_type)
        if plan.join:
            value = filters.join(filters.parse(original.data, plan.content_type), value)
        return filters.render(filters.select(value, plan.output_filter), output_type)
    except (filters.FilterError, UnicodeDecodeError) as exc:
        raise ObjectFailed(f"ClientError: Cannot assemble the output of {where} (record {number}): {exc}") from exc


def _invoke(pool: ConnectionPool, body: bytes, plan: Plan, stopping: Any) -> ContainerResponse | None:
    headers = {}
    if plan.content_type:
        headers["Content-Type"] = plan.content_type
    if plan.accept:
        headers["Accept"] = plan.accept
    last = ""
    for _attempt in range(plan.retries + 1):
        if stopping():
            return None
        try:
            response = pool.request("POST", "/invocations", body, headers, timeout=plan.timeout,
                                    max_body=_MAX_RESPONSE)
        except TimeoutError:
            last = f"no answer within InvocationsTimeoutInSeconds ({plan.timeout:g} s)"
            continue
        except ContainerUnreachable as exc:
            last = f"the container was unreachable ({exc})"
            continue
        if response.status < 500:
            return response
        last = f"HTTP {response.status}: {response.body[:300].decode('utf-8', errors='replace')}"
    raise _Unanswered(f"{last} (tried {plan.retries + 1} times)")


class _Unanswered(Exception):
    """Every attempt of an invocation timed out, failed to connect or got a 5xx."""
