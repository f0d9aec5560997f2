"""Paths of bind mounts as the Docker engine's host sees them.

The emulator stages every folder it hands to a container (channels, input config, model
artifacts) under ``SMEMU_HOME``, and the Docker backend bind-mounts those folders. A bind
mount names a path on the *engine's host*. When the emulator runs on that host, the paths are
the same. When the emulator itself runs in a container that drives the host's engine through
the mounted socket (docker-compose.yml), its ``SMEMU_HOME`` is a folder of the host mounted
into it, and a path under it must be translated to the host's path before it goes to the
engine.

Two ways to run the emulator in a container, both supported:

* **Same path** (what docker-compose.yml does; no setting needed): mount the host folder at
  the same path inside the container (``-v /srv/smemu:/srv/smemu -e SMEMU_HOME=/srv/smemu``).
  Every path is then valid on both sides and :func:`host_path` is the identity.
* **Different paths**: mount the host folder anywhere (``-v $PWD/state:/var/lib/smemu``) and
  tell the emulator where its home is on the host: ``SMEMU_HOST_HOME=$PWD/state``. Paths under
  ``SMEMU_HOME`` are then rewritten to the same relative path under ``SMEMU_HOST_HOME``.

Only folders under ``SMEMU_HOME`` are shared with the host this way; a bind mount of any
other folder of the emulator's container cannot be expressed on the host and is refused with
:class:`PathNotShared` (stage such data under ``SMEMU_HOME``, or copy it in through the
engine's archive API as private folders do).

Everything here is pure (no Docker, no filesystem access) so it is unit-tested directly;
:func:`host_home_from_mounts` and :func:`container_id_from_mountinfo` let a backend work out
``SMEMU_HOST_HOME`` by itself from its own container's mounts, if it wants to.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any


class PathNotShared(ValueError):
    """A folder to bind-mount lies outside ``SMEMU_HOME``, so the host cannot see it."""


def _normal(path: str | PurePosixPath | Any) -> PurePosixPath:
    text = str(path)
    if not text.startswith("/"):
        raise ValueError(f"bind-mount paths must be absolute, got {text!r}")
    return PurePosixPath(posixpath.normpath(text))


def host_path(path: str | PurePosixPath | Any, home: str | PurePosixPath | Any,
              host_home: str | PurePosixPath | Any | None) -> str:
    """The path on the engine's host of ``path``, a path in the emulator's own filesystem.

    ``home`` is ``SMEMU_HOME`` as the emulator sees it; ``host_home`` is the same folder as the
    host sees it (``SMEMU_HOST_HOME``), or None when the two coincide (the emulator runs on the
    host, or its home is mounted at the same path). With ``host_home`` None or equal to
    ``home`` the path is returned unchanged (normalised), so callers can always call this.

    Raises :class:`PathNotShared` when ``host_home`` differs from ``home`` and ``path`` is not
    under ``home``.
    """
    normal = _normal(path)
    if host_home is None:
        return str(normal)
    inner, outer = _normal(home), _normal(host_home)
    if inner == outer:
        return str(normal)
    try:
        relative = normal.relative_to(inner)
    except ValueError:
        raise PathNotShared(
            f"cannot bind-mount {normal}: only folders under SMEMU_HOME ({inner}) are shared with "
            f"the Docker host (as {outer}, SMEMU_HOST_HOME)"
        ) from None
    return str(outer / relative) if relative.parts else str(outer)


def host_path_mapper(home: str | PurePosixPath | Any,
                     host_home: str | PurePosixPath | Any | None) -> Callable[[Any], str]:
    """:func:`host_path` with ``home`` and ``host_home`` bound, e.g. from Settings."""
    return lambda path: host_path(path, home, host_home)


def host_home_from_mounts(home: str | PurePosixPath | Any,
                          mounts: Iterable[Mapping[str, Any]]) -> str | None:
    """``SMEMU_HOST_HOME`` worked out from the emulator container's own mounts.

    ``mounts`` is the ``Mounts`` list of ``docker inspect`` of the emulator's container
    (``{"Type": "bind", "Source": host path, "Destination": container path}``). Returns the
    host path of ``home`` when a bind mount covers it (the deepest such mount wins), else None
    (``home`` is not shared with the host: bind mounts from it cannot work).
    """
    inner = _normal(home)
    best: tuple[int, str] | None = None
    for mount in mounts:
        if mount.get("Type", "bind") != "bind" or not mount.get("Source") or not mount.get("Destination"):
            continue
        destination = _normal(mount["Destination"])
        try:
            relative = inner.relative_to(destination)
        except ValueError:
            continue
        depth = len(destination.parts)
        if best is None or depth > best[0]:
            source = _normal(mount["Source"])
            best = (depth, str(source / relative) if relative.parts else str(source))
    return best[1] if best else None


_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/(?:hostname|hosts|resolv\.conf)\b")


def container_id_from_mountinfo(mountinfo: str) -> str | None:
    """The id of the Docker container this process runs in, from ``/proc/self/mountinfo``.

    Docker bind-mounts ``/var/lib/docker/containers/<id>/hostname`` (and ``hosts``,
    ``resolv.conf``) into every container; that works with cgroup v1 and v2 and whatever the
    container's hostname is. None outside a Docker container.
    """
    for line in mountinfo.splitlines():
        match = _CONTAINER_ID.search(line)
        if match:
            return match.group(1)
    return None
