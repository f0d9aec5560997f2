"""Every AWS service the emulator does not execute, answered by moto on the edge port.

moto's own WSGI dispatcher already routes a request to the right service by its SigV4
credential scope, so we mount it as it is. Its state lives in memory; :class:`MotoBridge`
sends every request through :class:`emulator.awsstate.AwsState`, which journals the changes
so that a restart (or kill -9) keeps roles, repositories, log groups, topics and the
SageMaker records moto stores.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from emulator.awsstate import AwsState

log = logging.getLogger(__name__)

WsgiApp = Callable[..., Iterable[bytes]]


def create_moto_app() -> WsgiApp:
    """moto's server application: one WSGI callable for every AWS service it knows."""
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)  # type: ignore[return-value]


class MotoBridge:
    """The moto application, with its changes journaled when a state is given.

    S3 requests reach moto only with the non-durable ``memory`` store; they are never journaled.
    """

    def __init__(self, state: AwsState | None) -> None:
        self.state = state
        self.app = create_moto_app()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from emulator.objectstore import is_s3_request

        if is_s3_request(environ):
            # moto decodes the path it is given again unless it has the raw one (a key with "%20" in it)
            if "RAW_URI" not in environ and environ.get("REQUEST_URI"):
                environ["RAW_URI"] = environ["REQUEST_URI"]
            return self.app(environ, start_response)
        if self.state is None:
            return self.app(environ, start_response)
        return self.state.handle(self.app, environ, start_response)
