"""docker-py's exceptions, translated into the runtime's own (emulator/runtime/spec.py).

Most specific first, ``raise ... from``, naming what was being done, so the messages can go to
FailureReason as they are. Used by every module of this package that calls docker-py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions

from emulator.runtime.spec import ContainerNotFound, EngineUnavailable, ImageNotFound, RuntimeError_

CONNECTION_ERRORS = (requests.exceptions.ConnectionError, ConnectionError)


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn docker-py's exceptions into the runtime's, naming what was being done."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(f"{action}: {exc.explanation or exc}") from exc
    except docker.errors.NotFound as exc:
        raise ContainerNotFound(f"{action}: {exc.explanation or exc}") from exc
    except docker.errors.APIError as exc:
        raise RuntimeError_(f"{action}: {exc.explanation or exc}") from exc
    except CONNECTION_ERRORS as exc:
        raise EngineUnavailable(f"{action}: cannot reach the Docker engine ({exc})") from exc
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"{action}: {exc}") from exc
