"""Multi-model endpoints, the pure part: names, paths, budgets and the per-instance model cache.

SageMaker plays the platform's side of a multi-model container (research/inference-contract.md
§3): it downloads ``<ModelDataUrl prefix><TargetModel>``, extracts it to
``/opt/ml/models/<name>/model`` where ``<name>`` is an opaque hash of the TargetModel, asks
the container to load it (``POST /models``), invokes it (``POST /models/<name>/invoke``) and
unloads the least recently used models when memory, disk or the cache budget runs out.

:class:`ModelCache` is the bookkeeping of one instance, with no I/O and no locks of its own:
which models are registered in the container, which have files on disk, which are busy
loading or unloading, which are in use by an invocation, and which to evict when a budget is
exceeded. The loader (:mod:`.model_loader`) holds a lock around every call and does the HTTP
and S3 work outside it. Eviction never picks a model that an invocation is using or that is
loading, so a budget may be exceeded for as long as every model over it is busy.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODELS_PATH = "/opt/ml/models"
"""Where the platform extracts models inside a multi-model container."""
TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
"""Sent with every load, invoke and unload call (the TargetModel as the client gave it)."""
CACHE_MODELS_ENV = "SMEMU_MME_CACHE_MODELS"
"""Emulator-specific model Environment variable: at most this many models per instance
(overrides the SMEMU_MME_CACHE_MODELS setting for one model)."""
CACHE_BYTES_ENV = "SMEMU_MME_CACHE_BYTES"
"""Emulator-specific model Environment variable: at most this many extracted bytes per instance."""
NAME_LENGTH = 32


def model_name(target: str) -> str:
    """The opaque name the platform gives a TargetModel (SageMaker sends a hash, not the key)."""
    return hashlib.sha256(target.encode("utf-8")).hexdigest()[:NAME_LENGTH]


def container_url(name: str) -> str:
    """The ``url`` of ``POST /models``: the folder the model was extracted to, in the container."""
    return f"{MODELS_PATH}/{name}/model"


def instance_models_dir(model_dir: Path, instance_id: str) -> Path:
    """The folder on this machine mounted at /opt/ml/models in one instance's container.

    ``model_dir`` is the container's staged /opt/ml/model folder
    (``<deployment>/<variant>/<index>``); every instance gets its own models folder beside it,
    as every SageMaker instance has its own disk.
    """
    return model_dir.parent / f"{model_dir.name}-models" / instance_id


def target_problem(target: str) -> str | None:
    """Why a TargetModel cannot name an object under the model prefix, or None when it can."""
    if "\x00" in target:
        return "contains a NUL character"
    parts = target.replace("\\", "/").split("/")
    if ".." in parts:
        return "escapes the model prefix ('..' path component)"
    if target.startswith("/"):
        return "is an absolute path; give a key relative to the model prefix"
    if target.endswith("/") or "." in parts:
        return "is not the key of an object under the model prefix"
    return None


def object_key(prefix_key: str, target: str) -> str:
    """The S3 key of a TargetModel: the ModelDataUrl prefix, then the relative key."""
    return prefix_key + target


def prefix_uri(url: str) -> str:
    """A ModelDataUrl as the prefix models are found under (a trailing ``/`` added if missing)."""
    return url if url.endswith("/") else url + "/"


def _positive(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{what} must be at least 1, got {value!r}")
    return number


@dataclass(frozen=True)
class Budget:
    """Limits of one instance's model cache; None means no limit of that kind."""

    max_models: int | None = None
    """Models on the instance at once (loaded or kept on disk): the cache budget."""
    max_bytes: int | None = None
    """Extracted bytes on the instance's disk."""
    memory_bytes: int | None = None
    """Bytes of loaded models (extracted size stands in for memory): the instance's memory."""

    def over_disk(self, count: int, size: int) -> bool:
        """Whether ``count`` models of ``size`` bytes on disk exceed the cache budget."""
        return (self.max_models is not None and count > self.max_models) or (
            self.max_bytes is not None and size > self.max_bytes
        )


@dataclass(frozen=True)
class MultiModelPlan:
    """What a container definition with ``Mode: MultiModel`` asks of the platform."""

    prefix: str
    """The ModelDataUrl, ending with ``/``: TargetModel keys are relative to it."""
    caching: bool = True
    """``MultiModelConfig.ModelCacheSetting`` is Enabled (default); Disabled unloads after each call."""
    max_models: int | None = None
    """Per-model override of the cache budget (model Environment SMEMU_MME_CACHE_MODELS)."""
    max_bytes: int | None = None
    """Per-model override of the byte budget (model Environment SMEMU_MME_CACHE_BYTES)."""

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> MultiModelPlan | None:
        """The plan of a container definition, or None when it is not a multi-model container.

        Raises ValueError for a malformed emulator-specific budget variable.
        """
        if definition.get("Mode") != "MultiModel":
            return None
        environment = definition.get("Environment") or {}
        setting = (definition.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled")
        return cls(
            prefix=prefix_uri(str(definition.get("ModelDataUrl") or "")),
            caching=setting != "Disabled",
            max_models=_positive(environment.get(CACHE_MODELS_ENV), CACHE_MODELS_ENV),
            max_bytes=_positive(environment.get(CACHE_BYTES_ENV), CACHE_BYTES_ENV),
        )

    def budget(
        self, max_models: int | None, max_bytes: int | None, memory_bytes: int | None
    ) -> Budget:
        """The instance budget: this model's overrides, else the emulator's settings."""
        return Budget(
            max_models=self.max_models if self.max_models is not None else max_models,
            max_bytes=self.max_bytes if self.max_bytes is not None else max_bytes,
            memory_bytes=memory_bytes,
        )


LOADING = "Loading"
UNLOADING = "Unloading"


@dataclass
class CachedModel:
    """One TargetModel known to an instance."""

    target: str
    name: str
    loaded: bool = False
    """Registered in the container (POST /models answered 2xx or 409)."""
    on_disk: bool = False
    """Extracted under the instance's models folder."""
    busy: str | None = None
    """:data:`LOADING` or :data:`UNLOADING` while the platform works on it, else None."""
    in_use: int = 0
    """Invocations currently using the model (it cannot be evicted while above 0)."""
    size: int = 0
    """Extracted bytes (0 until downloaded)."""
    hits: int = 0
    loads: int = 0
    last_load_seconds: float = 0.0
    last_used: float = 0.0
    """Wall-clock time of the last invocation, for display."""
    waiter: Any = None
    """What callers wait on while the model is busy (set by the loader)."""

    @property
    def ready(self) -> bool:
        """Loaded and not being worked on: an invocation can use it at once."""
        return self.loaded and self.busy is None

    @property
    def idle(self) -> bool:
        """Nobody uses it and the platform is not working on it: it may be evicted."""
        return self.busy is None and self.in_use == 0

    @property
    def state(self) -> str:
        """Loading, Unloading, Loaded or OnDisk (what ``smemu models`` shows)."""
        if self.busy is not None:
            return self.busy
        return "Loaded" if self.loaded else "OnDisk"


@dataclass
class CacheStats:
    """Counters of one instance's model cache since the instance started."""

    hits: int = 0
    """Invocations whose model was already loaded."""
    misses: int = 0
    """Invocations that had to wait for a download and/or load."""
    loads: int = 0
    """Successful POST /models."""
    downloads: int = 0
    evictions: int = 0
    """Models unloaded by the platform (budget, memory pressure, 507, or caching disabled)."""
    removals: int = 0
    """Model folders deleted from disk."""
    failures: int = 0
    """Loads that failed (missing object, refused by the container, ...)."""
    load_seconds: float = 0.0
    """Total time of POST /models calls that succeeded."""
    max_load_seconds: float = 0.0
    download_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly counters, with the mean load time."""
        mean = self.load_seconds / self.loads if self.loads else 0.0
        return {
            "Hits": self.hits,
            "Misses": self.misses,
            "Loads": self.loads,
            "Downloads": self.downloads,
            "Evictions": self.evictions,
            "Removals": self.removals,
            "Failures": self.failures,
            "LoadSecondsTotal": round(self.load_seconds, 6),
            "LoadSecondsMean": round(mean, 6),
            "LoadSecondsMax": round(self.max_load_seconds, 6),
            "DownloadSecondsTotal": round(self.download_seconds, 6),
        }

    def add(self, other: CacheStats) -> None:
        """Accumulate another instance's counters (for per-variant totals)."""
        for name in ("hits", "misses", "loads", "downloads", "evictions", "removals", "failures"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.load_seconds += other.load_seconds
        self.download_seconds += other.download_seconds
        self.max_load_seconds = max(self.max_load_seconds, other.max_load_seconds)


@dataclass
class ModelCache:
    """LRU bookkeeping of one instance's models (not thread-safe: the caller holds a lock)."""

    budget: Budget = field(default_factory=Budget)
    stats: CacheStats = field(default_factory=CacheStats)
    _entries: OrderedDict[str, CachedModel] = field(default_factory=OrderedDict)

    def get(self, target: str) -> CachedModel | None:
        """The entry of a TargetModel, or None."""
        return self._entries.get(target)

    def add(self, target: str) -> CachedModel:
        """A new entry, most recently used, marked as loading."""
        entry = CachedModel(target, model_name(target), busy=LOADING)
        self._entries[target] = entry
        return entry

    def touch(self, entry: CachedModel, now: float) -> None:
        """Mark a model as just used (moves it to the most recently used end)."""
        if self._entries.get(entry.target) is entry:
            self._entries.move_to_end(entry.target)
        entry.last_used = now

    def discard(self, entry: CachedModel) -> None:
        """Forget a model (its files are gone or were never made)."""
        if self._entries.get(entry.target) is entry:
            del self._entries[entry.target]

    def __iter__(self) -> Iterator[CachedModel]:
        """Entries from least to most recently used."""
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def loaded_count(self) -> int:
        """Models registered in the container (LoadedModelCount)."""
        return sum(1 for e in self._entries.values() if e.loaded)

    def _staying(self) -> list[CachedModel]:
        return [e for e in self._entries.values() if e.busy != UNLOADING]

    def claim_disk_victims(self, keep: CachedModel | None = None) -> list[CachedModel]:
        """Least recently used idle models to remove (unload and delete) so the cache budget holds.

        Each returned entry is marked :data:`UNLOADING`; the caller unloads it and then calls
        :meth:`unloaded`. Models being unloaded already do not count; ``keep`` (the model
        being loaded) is never chosen.
        """
        staying = self._staying()
        count = len(staying)
        size = sum(e.size for e in staying if e.on_disk)
        victims: list[CachedModel] = []
        for entry in staying:
            if not self.budget.over_disk(count, size):
                break
            if entry is keep or not entry.idle:
                continue
            entry.busy = UNLOADING
            victims.append(entry)
            count -= 1
            size -= entry.size if entry.on_disk else 0
        return victims

    def claim_memory_victims(self, keep: CachedModel, incoming: int) -> list[CachedModel]:
        """Least recently used idle loaded models to unload (files kept) so ``incoming`` bytes fit.

        Only applies with a memory budget; marks each returned entry :data:`UNLOADING`.
        """
        limit = self.budget.memory_bytes
        if limit is None:
            return []
        loaded = [e for e in self._staying() if e.loaded]
        used = sum(e.size for e in loaded) + incoming
        victims: list[CachedModel] = []
        for entry in loaded:
            if used <= limit:
                break
            if entry is keep or not entry.idle:
                continue
            entry.busy = UNLOADING
            victims.append(entry)
            used -= entry.size
        return victims

    def claim_lru_loaded(self, keep: CachedModel) -> CachedModel | None:
        """The least recently used idle loaded model (what a 507 answer asks the platform to
        unload), marked :data:`UNLOADING`; None when every loaded model is busy or in use."""
        for entry in self._entries.values():
            if entry is not keep and entry.loaded and entry.idle:
                entry.busy = UNLOADING
                return entry
        return None

    def unloaded(self, entry: CachedModel, files_removed: bool) -> None:
        """Record the end of an unload started by one of the ``claim_*`` methods."""
        if entry.loaded:
            self.stats.evictions += 1
        entry.loaded = False
        entry.busy = None
        if files_removed:
            if entry.on_disk:
                self.stats.removals += 1
            entry.on_disk = False
            self.discard(entry)
