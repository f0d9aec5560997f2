"""A checkpoint of moto's backends, so a restart loads the state instead of replaying its whole history.

:func:`capture` pickles every moto backend the journal rebuilds (every service in use but S3,
whose objects live in the object store) into one byte string; :func:`install` puts such a
checkpoint back into this process's moto. Both run under the journal's lock (recorder.py), so
the checkpoint is exactly the state after the last journaled change.

What makes a pickle of moto's objects safe to load again, said plainly:

* it is loaded only by the moto release that wrote it (:func:`moto_release` is recorded beside
  it); another release rebuilds the state by replaying the journal's history instead
  (recorder.py), since a pickle holds one release's internals;
* moto's registries (``BackendDict``, ``AccountSpecificBackend``: the module-level dicts moto's
  code looks backends up in) are pickled as references, never copied, so a backend that holds
  one still finds the live registry after a load;
* locks are recreated unlocked; messages and notifications in flight (SQS queues' messages,
  SNS topics' sent notifications, platform endpoints' messages) are dropped on load, exactly
  as a replay of the journal drops them (recorder.py's ``MESSAGES`` are not journaled).
"""

from __future__ import annotations

import copyreg
import importlib
import io
import pickle
import sys
import threading
import zlib
from collections.abc import Iterator
from typing import Any

EXCLUDED_SERVICES = frozenset({"s3"})
"""moto services never checkpointed: their requests are not journaled (S3 objects live in the object store)."""

Backends = dict[tuple[str, str], dict[str, dict[str, Any]]]
"""``{(module, attribute of its BackendDict): {account id: {region: backend}}}``."""


class SnapshotError(RuntimeError):
    """A checkpoint cannot be taken or loaded; the message says why."""


def moto_release() -> str:
    """The installed moto release: a checkpoint is loaded only by the release that wrote it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("moto")
    except PackageNotFoundError:  # pragma: no cover - moto vendored without metadata
        return "unknown"


def _registries() -> Iterator[tuple[tuple[str, str], Any]]:
    """Every moto ``BackendDict`` in use in this process, with the module attribute that holds it."""
    from moto.core.base_backend import BackendDict

    seen: set[int] = set()
    for registry in list(BackendDict._instances):  # type: ignore[misc]
        if id(registry) in seen or registry.service_name in EXCLUDED_SERVICES:
            continue
        seen.add(id(registry))
        yield _address(registry), registry


def _address(registry: Any) -> tuple[str, str]:
    module_name = registry.backend.__module__
    module = sys.modules.get(module_name)
    for name, value in vars(module or object()).items():
        if value is registry:
            return module_name, name
    raise SnapshotError(f"moto's {registry.service_name} backends are not a module attribute of {module_name}")


def _lookup(address: tuple[str, str]) -> Any:
    module_name, attribute = address
    return getattr(importlib.import_module(module_name), attribute)


class _Pickler(pickle.Pickler):
    """Pickles moto's registries (and their per-account dicts) as references, and locks as fresh ones."""

    def __init__(self, stream: io.BytesIO, registries: dict[tuple[str, str], Any]) -> None:
        super().__init__(stream, protocol=5)
        from moto.core.base_backend import BackendDict

        self._registry_type = BackendDict
        self._references: dict[int, tuple[str, ...]] = {}
        for address, registry in registries.items():
            self._references[id(registry)] = ("registry", *address)
            for account_id, account in dict.items(registry):
                self._references[id(account)] = ("account", *address, account_id)
        table = copyreg.dispatch_table.copy()
        table[type(threading.Lock())] = lambda _lock: (threading.Lock, ())
        table[type(threading.RLock())] = lambda _lock: (threading.RLock, ())
        self.dispatch_table = table

    def persistent_id(self, obj: Any) -> Any:
        reference = self._references.get(id(obj))
        if reference is None and isinstance(obj, self._registry_type):  # a registry with no account yet
            reference = ("registry", *_address(obj))
        return reference


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Any:
        kind, module_name, attribute, *rest = pid
        registry = _lookup((module_name, attribute))
        if kind == "registry":
            return registry
        if kind == "account":
            return registry[rest[0]]
        raise SnapshotError(f"unknown reference {pid!r} in the checkpoint")


def capture() -> bytes:
    """The current state of every checkpointed moto backend, pickled and compressed.

    The caller holds the journal's lock (no change runs meanwhile). A read that creates a
    region's backend on first use may still change a registry while it is pickled: that
    attempt is retried.
    """
    for attempt in range(3):
        stream = io.BytesIO()
        try:
            registries = dict(_registries())
            state: Backends = {address: {account: dict(dict.items(regions))
                                         for account, regions in dict.items(registry)}
                               for address, registry in registries.items()}
            _Pickler(stream, registries).dump(state)
        except RuntimeError as exc:  # "dictionary changed size during iteration"
            if attempt == 2 or "during iteration" not in str(exc):
                raise
            continue
        return zlib.compress(stream.getvalue(), 1)
    raise AssertionError("unreachable")  # pragma: no cover


def load(data: bytes) -> Backends:
    """Unpickle a checkpoint without installing it; raises :class:`SnapshotError` if it cannot be read."""
    try:
        state = _Unpickler(io.BytesIO(zlib.decompress(data))).load()
    except Exception as exc:
        raise SnapshotError(f"the AWS state checkpoint cannot be loaded: {exc!r}") from exc
    if not isinstance(state, dict):
        raise SnapshotError("the AWS state checkpoint is not a map of moto backends")
    return state


def install(state: Backends) -> None:
    """Put loaded backends into this process's moto, replacing the regions they hold."""
    for address, accounts in state.items():
        registry = _lookup(address)
        for account_id, regions in accounts.items():
            account = registry[account_id]
            for region, backend in regions.items():
                _drop_messages(backend)
                dict.__setitem__(account, region, backend)


def _drop_messages(service: Any) -> None:
    """Messages are traffic, not state: a replay never restores them, so neither does a checkpoint."""
    for queue in getattr(service, "queues", {}).values():
        for name, empty in (("_messages", list), ("_pending_messages", set), ("deleted_messages", set)):
            if hasattr(queue, name):
                setattr(queue, name, empty())
    for topic in getattr(service, "topics", {}).values():
        if hasattr(topic, "sent_notifications"):
            topic.sent_notifications = []
    for endpoint in getattr(service, "platform_endpoints", {}).values():
        if isinstance(getattr(endpoint, "messages", None), dict):
            endpoint.messages.clear()
