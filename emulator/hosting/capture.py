"""Data capture: sampled requests and responses written to S3 in SageMaker's JSONL format.

Key layout and line format follow research/inference-contract.md §2.6::

    <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<MM-SS-mmm>-<uuid>.jsonl
    {"captureData": {"endpointInput": {...}, "endpointOutput": {...}},
     "eventMetadata": {"eventId": ..., "inferenceTime": ..., "inferenceId": ...}, "eventVersion": "0"}

The invocation path only samples and appends to a queue; a background thread writes one
object per endpoint variant per flush, as SageMaker batches its capture files.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from emulator.s3 import S3Location

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
DEFAULT_CSV_TYPES = ("text/csv",)
DEFAULT_JSON_TYPES = ("application/json", "application/jsonlines")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class CaptureSettings:
    """An endpoint configuration's DataCaptureConfig, parsed once per deployment."""

    destination: S3Location
    percentage: float
    capture_input: bool
    capture_output: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]

    @classmethod
    def parse(cls, config: dict[str, Any]) -> CaptureSettings:
        """From a DataCaptureConfig dict."""
        modes = {o.get("CaptureMode") for o in config.get("CaptureOptions", [])}
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=S3Location.parse(config["DestinationS3Uri"]),
            percentage=float(config.get("InitialSamplingPercentage", 100)),
            capture_input=bool(modes & {"Input", "InputAndOutput"}) or not modes,
            capture_output=bool(modes & {"Output", "InputAndOutput"}) or not modes,
            csv_types=frozenset(_media_type(t) for t in header.get("CsvContentTypes", DEFAULT_CSV_TYPES)),
            json_types=frozenset(_media_type(t) for t in header.get("JsonContentTypes", DEFAULT_JSON_TYPES)),
        )

    def encode(self, content_type: str | None, data: bytes) -> tuple[str, str]:
        """``(encoding, data)``: CSV or JSON as text when the content type says so, else BASE64."""
        media = _media_type(content_type)
        if media in self.csv_types or media in self.json_types:
            try:
                return ("CSV" if media in self.csv_types else "JSON"), data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return "BASE64", base64.b64encode(data).decode("ascii")


def capture_line(
    settings: CaptureSettings, invocation: Any, output_type: str, output: bytes, when: float
) -> dict[str, Any]:
    """One JSONL record for an invocation (``invocation`` is an invoke.Invocation)."""
    data: dict[str, Any] = {}
    if settings.capture_input:
        encoding, text = settings.encode(invocation.content_type, invocation.body)
        data["endpointInput"] = {
            "observedContentType": invocation.content_type or "",
            "mode": "INPUT",
            "data": text,
            "encoding": encoding,
        }
    if settings.capture_output:
        encoding, text = settings.encode(output_type, output)
        data["endpointOutput"] = {
            "observedContentType": output_type,
            "mode": "OUTPUT",
            "data": text,
            "encoding": encoding,
        }
    metadata = {
        "eventId": str(uuid.uuid4()),
        "inferenceTime": datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if invocation.inference_id:
        metadata["inferenceId"] = invocation.inference_id
    return {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}


def capture_key(destination: S3Location, endpoint: str, variant: str, when: float) -> S3Location:
    """Where a capture file written at ``when`` goes."""
    moment = datetime.fromtimestamp(when, timezone.utc)
    name = f"{moment:%M-%S}-{moment.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    return destination.join(endpoint, variant, f"{moment:%Y/%m/%d/%H}", name)


class EndpointCapture:
    """The capture hook a route carries: samples, then queues to the writer."""

    def __init__(self, settings: CaptureSettings, writer: CaptureWriter) -> None:
        self.settings = settings
        self.writer = writer

    def record(self, endpoint: str, variant: str, invocation: Any, output_type: str, output: bytes) -> None:
        """Called after a successful invocation; cheap when the sample misses."""
        if random.random() * 100.0 >= self.settings.percentage:
            return
        self.writer.queue.append(
            (self.settings, endpoint, variant, invocation, output_type, output, time.time())
        )
        self.writer.wake.set()


class CaptureWriter:
    """Writes queued capture records to S3 in the background."""

    def __init__(self, s3_client: Callable[[], Any], flush_seconds: float = FLUSH_SECONDS) -> None:
        self.s3_client = s3_client
        self.flush_seconds = flush_seconds
        self.queue: deque[tuple[Any, ...]] = deque()
        self.wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
        self._thread.start()

    def for_config(self, config: dict[str, Any] | None) -> EndpointCapture | None:
        """The hook for a DataCaptureConfig, or None when capture is off."""
        if not config or not config.get("EnableCapture", True):
            return None
        return EndpointCapture(CaptureSettings.parse(config), self)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.wake.wait()
            self._stopped.wait(self.flush_seconds)
            self.wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write every queued record, one object per endpoint variant."""
        files: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
        first: dict[tuple[str, str, str, str], tuple[S3Location, float]] = {}
        while True:
            try:
                settings, endpoint, variant, invocation, output_type, output, when = self.queue.popleft()
            except IndexError:
                break
            key = (settings.destination.bucket, settings.destination.key, endpoint, variant)
            first.setdefault(key, (settings.destination, when))
            files[key].append(json.dumps(capture_line(settings, invocation, output_type, output, when)))
        for key, lines in files.items():
            destination, when = first[key]
            target = capture_key(destination, key[2], key[3], when)
            try:
                self.s3_client().put_object(
                    Bucket=target.bucket, Key=target.key, Body=("\n".join(lines) + "\n").encode()
                )
            except Exception:
                log.exception("writing data capture to %s failed", target.uri)

    def stop(self) -> None:
        """Write what is queued and stop."""
        self._stopped.set()
        self.wake.set()
        self._thread.join(timeout=10)
        self.flush()
