"""What services hand the edge (emulator/platform.py EdgeHandlers), and the edge writing a
plain streamed answer (emulator/answers.py) as HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from emulator.answers import StreamedAnswer
from emulator.context import CallContext
from emulator.errors import ValidationError
from emulator.gateway.app import EdgeApplication
from emulator.platform import EdgeHandlers

CTX = CallContext(region="us-east-1", account_id="123456789012")


def test_handlers_merge_with_the_first_service_winning() -> None:
    hooks: list[str] = []
    merged = EdgeHandlers()
    merged.merge(EdgeHandlers(runtime={"InvokeEndpoint": lambda request, ctx: {"Body": b"first"}},
                              views={"endpoint-models": lambda name: "first"},
                              data_plane=[lambda plane: hooks.append(f"first {plane}")]))
    merged.merge(EdgeHandlers(runtime={"InvokeEndpoint": lambda request, ctx: {"Body": b"second"},
                                       "InvokeEndpointAsync": lambda request, ctx: {"OutputLocation": "s3://b/k"}},
                              views={"endpoint-models": lambda name: "second"},
                              data_plane=[lambda plane: hooks.append(f"second {plane}")]))
    call = merged.runtime_handler()
    assert call("InvokeEndpoint", {}, CTX) == {"Body": b"first"}
    assert call("InvokeEndpointAsync", {}, CTX) == {"OutputLocation": "s3://b/k"}
    assert merged.views["endpoint-models"]("ep") == "first"
    for attach in merged.data_plane:
        attach("plane")
    assert hooks == ["first plane", "second plane"]
    with pytest.raises(ValidationError, match="InvokeEndpointWithResponseStream is not supported"):
        call("InvokeEndpointWithResponseStream", {}, CTX)


def test_the_edge_writes_a_streamed_answer_and_closes_it() -> None:
    closed: list[bool] = []

    def chunks() -> Iterator[bytes]:
        try:
            yield b"one "
            yield b"two"
        finally:
            closed.append(True)

    seen: list[tuple[str, dict[str, Any]]] = []

    def stream(operation: str, request: dict[str, Any], ctx: CallContext) -> StreamedAnswer:
        seen.append((operation, request))
        return StreamedAnswer(200, {"Content-Type": "application/vnd.amazon.eventstream",
                                    "x-Amzn-Invoked-Production-Variant": "AllTraffic"}, chunks())

    app = EdgeApplication(control=None, moto=None, default_region="us-east-1",  # type: ignore[arg-type]
                          account_id="123456789012", streaming={"InvokeEndpointWithResponseStream": stream})
    started: list[tuple[str, list[tuple[str, str]]]] = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/endpoints/ep/invocations-response-stream",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}"),
               "smemu.region": "us-east-1"}
    body = app._runtime(environ, lambda status, headers: started.append((status, headers)))
    assert started == [("200 OK", [("Content-Type", "application/vnd.amazon.eventstream"),
                                   ("x-Amzn-Invoked-Production-Variant", "AllTraffic")])]
    assert seen[0][0] == "InvokeEndpointWithResponseStream" and seen[0][1]["EndpointName"] == "ep"
    iterator = iter(body)
    assert next(iterator) == b"one "
    body.close()  # type: ignore[attr-defined]  # the WSGI server closes it when the client is gone
    assert closed == [True]
