"""The one way the emulator waits for something to become true: poll with a deadline.

Everything that waits on another process or machine (a port that starts answering, a
container that passes /ping, a pod that is scheduled, a process that exits) calls
:func:`poll_until` instead of writing its own ``while time.monotonic() < deadline`` loop, so
each wait has a deadline, an interval (optionally backing off) and a way to give up early.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PollTimeout(TimeoutError):
    """What :func:`poll_until` raises when a named wait (``what``) ran out of time."""


def poll_until(predicate: Callable[[], T], timeout: float | None, interval: float = 0.05, *,
               what: str | None = None, backoff: float = 1.0, max_interval: float | None = None,
               give_up: Callable[[], bool] | None = None, wait_first: bool = False) -> T | None:
    """Call ``predicate`` until it returns something truthy, and return that.

    ``timeout``: seconds from now (None: no deadline, only ``give_up``); the predicate is asked
    at least once, and once more at the deadline. ``interval``: the first pause, multiplied by
    ``backoff`` after each try up to ``max_interval``. ``give_up``: asked after each failed try;
    True ends the wait as a timeout does. ``wait_first``: pause before the first try (the caller
    has just looked). At the end: :class:`PollTimeout` naming ``what`` when
    given, else None. Exceptions of the predicate propagate (a wait that cannot succeed).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = interval
    if wait_first:
        time.sleep(interval if timeout is None else max(0.0, min(interval, timeout)))
        pause = interval * backoff if max_interval is None else min(interval * backoff, max_interval)
    while True:
        value = predicate()
        if value:
            return value
        if give_up is not None and give_up():
            break
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(pause, left))
        else:
            time.sleep(pause)
        pause = pause * backoff if max_interval is None else min(pause * backoff, max_interval)
    if what is not None:
        limit = f" within {timeout:g} s" if timeout is not None else ""
        raise PollTimeout(f"{what} did not happen{limit}")
    return None
