"""Make what moto generates for a request depend only on that request, so replaying it reproduces it.

moto draws every identifier (role ids, access key ids, upload ids, request ids...) from one
``random.Random`` it calls ``mock_random``, and takes every timestamp from
``moto.core.utils.utcnow``. :func:`install` (idempotent) changes both, in place:

* ``mock_random`` draws from a per-thread generator, and :func:`scoped` seeds the calling
  thread's generator for the length of one request: the same seed gives the same ids whatever
  other threads do meanwhile;
* moto's clock (``moto.core.utils`` and ``moto.ecr.models``' ``datetime``) reads a per-thread
  frozen time while :func:`scoped` runs, so timestamps (CreateDate, creationTime...) come back
  identical on replay. Outside :func:`scoped` both behave exactly as before.

What this does not cover, said plainly: the few values moto takes from ``os.urandom`` or
``uuid.uuid4`` directly (an STS session token's body, an IAM virtual MFA seed, CloudWatch
dashboard names it invents) differ after a replay. :data:`CLOCK_SITES` lists the patched
places; a moto release that moves them fails tests/unit/test_awsstate.py rather than silently
drifting.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import os
import random
import threading
import types
from collections.abc import Iterator
from typing import Any

_local = threading.local()
_installed = False
_install_lock = threading.Lock()

CLOCK_SITES = (("moto.core.utils", "datetime", "module"), ("moto.ecr.models", "datetime", "class"))
"""``(module, global name, kind)``: where moto's code finds the ``datetime`` module or class."""


def _frozen() -> float | None:
    return getattr(_local, "now", None)


class _ClockedDatetime:
    """``datetime.datetime`` with ``now``/``utcnow``/``today`` reading the frozen time when there is one."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_dt.datetime, name)

    def __call__(self, *args: Any, **kwargs: Any) -> _dt.datetime:
        return _dt.datetime(*args, **kwargs)

    @staticmethod
    def now(tz: _dt.tzinfo | None = None) -> _dt.datetime:
        frozen = _frozen()
        return _dt.datetime.now(tz) if frozen is None else _dt.datetime.fromtimestamp(frozen, tz)

    @staticmethod
    def utcnow() -> _dt.datetime:
        frozen = _frozen()
        if frozen is None:
            return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)
        return _dt.datetime.fromtimestamp(frozen, _dt.timezone.utc).replace(tzinfo=None)

    @staticmethod
    def today() -> _dt.datetime:
        return _ClockedDatetime.now()


class _ClockedModule(types.ModuleType):
    """The ``datetime`` module with :class:`_ClockedDatetime` in place of its ``datetime`` class."""

    def __init__(self) -> None:
        super().__init__("datetime")
        self.datetime = _ClockedDatetime()

    def __getattr__(self, name: str) -> Any:
        return getattr(_dt, name)


def _thread_rng() -> random.Random:
    rng = getattr(_local, "rng", None)
    if rng is None:
        rng = _local.rng = random.Random(os.urandom(16))
    return rng


def _per_thread_class(base: type) -> type:
    class PerThreadRandom(base):  # type: ignore[valid-type, misc]
        """moto's MotoRandom drawing from the calling thread's generator."""

        def random(self) -> float:
            return _thread_rng().random()

        def getrandbits(self, k: int) -> int:
            return _thread_rng().getrandbits(k)

        def seed(self, a: Any = None, version: int = 2) -> None:
            _local.rng = random.Random(a)

        def getstate(self) -> Any:
            return _thread_rng().getstate()

        def setstate(self, state: Any) -> None:
            _thread_rng().setstate(state)

    return PerThreadRandom


def install() -> None:
    """Switch moto's randomness and clock to the per-thread versions (once per process)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.moto_api._internal import mock_random

        mock_random.__class__ = _per_thread_class(type(mock_random))
        for module_name, attribute, kind in CLOCK_SITES:
            module = importlib.import_module(module_name)
            if not hasattr(module, attribute):
                raise RuntimeError(f"{module_name}.{attribute} is gone: moto changed where it reads the time")
            setattr(module, attribute, _ClockedModule() if kind == "module" else _ClockedDatetime())
        _installed = True


@contextlib.contextmanager
def scoped(seed: int, now: float) -> Iterator[None]:
    """Within the block, this thread's moto ids come from ``seed`` and moto's clock reads ``now``."""
    saved_rng, saved_now = getattr(_local, "rng", None), getattr(_local, "now", None)
    _local.rng = random.Random(seed)
    _local.now = now
    try:
        yield
    finally:
        _local.rng, _local.now = saved_rng, saved_now
