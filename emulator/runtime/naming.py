"""Names and labels that keep emulators sharing one container engine apart.

Several emulators (a developer's, a CI job's, a test session's) may drive the same Docker
engine. Each has its own ``SMEMU_HOME``, and its **home id** (a short hash of that folder's
path) goes into every container and network name it creates and into the ``smemu.home``
label of every container, network and volume. Two emulators running a job of the same name
then create ``smemu-<home A>-train-job-algo-1`` and ``smemu-<home B>-train-job-algo-1``, and
cleanup and re-adoption, which filter by that label, never see the other's.

The runtime backend applies this itself (``emulator.runtime.docker_backend``), so every
service gets it without doing anything: a service names things as it likes
(``smemu-train-<job>``) and puts its home id in the ``smemu.home`` label; a spec without the
label gets the process's home (:func:`configure_home`, set when the emulator starts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

HOME_LABEL = "smemu.home"
"""The label every object of one emulator home carries."""
PREFIX = "smemu-"


def home_id(home: Path) -> str:
    """The short id of an emulator home (sha256 of its resolved path, 12 hex digits)."""
    return hashlib.sha256(str(Path(home).expanduser().resolve()).encode()).hexdigest()[:12]


_default_home: str = home_id(Path.home() / ".smemu")


def configure_home(home: Path) -> None:
    """The home id for objects whose labels name none (the emulator's own ``SMEMU_HOME``)."""
    global _default_home
    _default_home = home_id(home)


def default_home() -> str:
    """The process's home id (see :func:`configure_home`)."""
    return _default_home


def home_of(labels: Mapping[str, str]) -> str:
    """The home id an object with these labels belongs to."""
    return labels.get(HOME_LABEL) or _default_home


def with_home(labels: Mapping[str, str]) -> dict[str, str]:
    """``labels`` with the ``smemu.home`` label filled in when missing."""
    return {**labels, HOME_LABEL: home_of(labels)}


def scoped_name(name: str, home: str) -> str:
    """``name`` carrying the home id: ``smemu-train-x`` becomes ``smemu-<home>-train-x``."""
    if f"-{home}-" in f"-{name}-":
        return name
    rest = name.removeprefix(PREFIX)
    return f"{PREFIX}{home}-{rest}"
