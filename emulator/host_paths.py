"""Which folders of this machine a request may hand to a container (``file://`` URIs).

A ``file://`` channel (and any other input naming a host folder) is bind-mounted into a
container whose image the caller chose, and the emulator itself reads the files it copies.
Without a rule, ``file:///var/run`` gives a job the Docker socket and ``file:///root`` reads
root's files back through S3. So:

* a folder is allowed only under a root the user listed in ``SMEMU_HOST_FOLDERS`` (none by
  default: every ``file://`` URI is refused until the user opts in);
* a folder is never one of the system's sensitive folders, never inside one, and never one
  that *contains* one (mounting ``/var`` would expose ``/var/run/docker.sock``);
* the check runs on the real path: ``..`` and symbolic links are resolved first, so
  ``/data/../etc`` or a link to ``/root`` inside an allowed root is judged by where it leads.

Every refusal is a ``ValidationException`` at create time that names the setting. Services
call :func:`check_host_folder` for each host folder a request names (training channels,
processing inputs, transform inputs); nothing else here is needed by them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from emulator.errors import ValidationException

SETTING = "SMEMU_HOST_FOLDERS"
"""The variable that lists the allowed roots (named in every refusal)."""

SENSITIVE_FOLDERS = ("/", "/proc", "/sys", "/dev", "/run", "/var/run", "/etc", "/root", "/boot",
                     "/var/lib/docker")
"""System folders no container may get from the emulator, nor any folder inside or around them."""

_SENSITIVE_IN_HOME = (".ssh", ".aws", ".docker", ".gnupg", ".kube")
"""Credential folders of the user running the emulator, protected the same way."""


def file_uri_path(uri: str) -> Path:
    """The absolute path a ``file://`` URI names (``file:///abs/path``; ``file://rel`` is cwd-relative)."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.netloc + parsed.path)).expanduser()


def sensitive_folders(home: Path | None = None) -> list[Path]:
    """The folders :func:`check_host_folder` protects, resolved, plus the emulator's own home."""
    found: list[Path] = []
    candidates = [Path(p) for p in SENSITIVE_FOLDERS]
    user_home = Path.home()
    candidates += [user_home / name for name in _SENSITIVE_IN_HOME]
    if home is not None:
        candidates.append(home)
    for path in candidates:
        for variant in (Path(os.path.abspath(path)), path.resolve()):
            if variant not in found:
                found.append(variant)
    return found


def _overlaps(folder: Path, sensitive: Path) -> bool:
    """Whether ``folder`` is ``sensitive``, lies inside it, or contains it ("/" only as itself)."""
    if folder == sensitive:
        return True
    if sensitive != Path("/") and folder.is_relative_to(sensitive):
        return True
    return sensitive.is_relative_to(folder)


def check_allowed_root(root: Path) -> Path:
    """A root for ``SMEMU_HOST_FOLDERS``, resolved; a relative or sensitive one stops the start."""
    if not root.is_absolute():
        raise ValueError(f"{SETTING}: {root} is not an absolute path")
    resolved = root.resolve()
    for sensitive in sensitive_folders():
        if _overlaps(resolved, sensitive):
            raise ValueError(f"{SETTING}: {root} cannot be allowed: it is, contains or lies inside {sensitive}, "
                             "which no container may get")
    return resolved


def check_host_folder(uri_or_path: str | Path, allowed_roots: Iterable[Path], home: Path | None,
                      field: str) -> Path:
    """The resolved folder a request may mount, or a ValidationException that names the setting.

    ``uri_or_path`` is a ``file://`` URI or a path; ``field`` names where the request gave it
    (``InputDataConfig.train.S3Uri``); ``home`` is the emulator's ``SMEMU_HOME``, which is
    protected as well (its state holds the credentials signing key).
    """
    raw = file_uri_path(uri_or_path) if isinstance(uri_or_path, str) and uri_or_path.startswith("file://") \
        else Path(uri_or_path)
    shown = str(uri_or_path)
    if not raw.is_absolute():
        raise ValidationException(f"{field}: {shown} must name an absolute folder on this machine.")
    resolved = raw.resolve()
    for sensitive in sensitive_folders(home):
        if _overlaps(resolved, sensitive):
            raise ValidationException(
                f"{field}: {shown} resolves to {resolved}, which is, contains or lies inside {sensitive}; "
                f"the emulator never mounts it into a container (whatever {SETTING} allows).")
    roots = list(allowed_roots)
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        allowed = ":".join(str(r) for r in roots) or "nothing (unset)"
        raise ValidationException(
            f"{field}: {shown} resolves to {resolved}, outside the folders {SETTING} allows ({allowed}). "
            f"Set {SETTING} to a folder that contains it to use local data.")
    return resolved


def check_file_uris(settings: Any, uris: Iterable[tuple[str, str]]) -> None:
    """:func:`check_host_folder` for each ``(field, uri)`` of a request that is a ``file://`` URI.

    ``settings`` is the emulator's Settings (``host_folders``, ``home``). Services call this at
    create time with every input URI the request names.
    """
    for field, uri in uris:
        if str(uri).startswith("file://"):
            check_host_folder(str(uri), settings.host_folders, settings.home, field)


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (resolved, links followed) lies in ``folder``: for files copied out of a folder."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False
