"""Mapping bind-mount paths between the emulator's container and the Docker host."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.runtime.paths import (
    PathNotShared,
    container_id_from_mountinfo,
    host_home_from_mounts,
    host_path,
    host_path_mapper,
)


def test_identity_without_host_home() -> None:
    assert host_path("/var/lib/smemu/work/training/j1/input", "/var/lib/smemu", None) == \
        "/var/lib/smemu/work/training/j1/input"
    # Paths outside home are fine too: the emulator runs on the host.
    assert host_path(Path("/tmp/x/../y"), "/var/lib/smemu", None) == "/tmp/y"


def test_identity_when_mounted_at_the_same_path() -> None:
    assert host_path("/srv/smemu/work/a", "/srv/smemu/", "/srv/smemu") == "/srv/smemu/work/a"
    assert host_path("/elsewhere", "/srv/smemu", "/srv/smemu") == "/elsewhere"


def test_rewrites_paths_under_home() -> None:
    mapped = host_path_mapper(Path("/var/lib/smemu"), Path("/home/me/project/.smemu"))
    assert mapped("/var/lib/smemu/work/training/j1/data/train") == "/home/me/project/.smemu/work/training/j1/data/train"
    assert mapped(Path("/var/lib/smemu")) == "/home/me/project/.smemu"
    assert mapped("/var/lib/smemu/work/../state/x") == "/home/me/project/.smemu/state/x"


def test_refuses_paths_outside_home() -> None:
    with pytest.raises(PathNotShared, match="only folders under SMEMU_HOME"):
        host_path("/tmp/model", "/var/lib/smemu", "/srv/state")
    with pytest.raises(PathNotShared):  # a sibling that merely shares the prefix
        host_path("/var/lib/smemu-other/x", "/var/lib/smemu", "/srv/state")
    with pytest.raises(PathNotShared):  # .. escapes home
        host_path("/var/lib/smemu/../etc", "/var/lib/smemu", "/srv/state")


def test_relative_paths_are_errors() -> None:
    with pytest.raises(ValueError, match="absolute"):
        host_path("work/a", "/var/lib/smemu", "/srv/state")


def test_host_home_from_mounts_picks_the_deepest_bind_mount() -> None:
    mounts = [
        {"Type": "bind", "Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock"},
        {"Type": "bind", "Source": "/data", "Destination": "/var"},
        {"Type": "bind", "Source": "/home/me/state", "Destination": "/var/lib/smemu"},
        {"Type": "volume", "Source": "/var/lib/docker/volumes/x/_data", "Destination": "/var/lib/smemu/work"},
    ]
    assert host_home_from_mounts("/var/lib/smemu", mounts) == "/home/me/state"
    assert host_home_from_mounts("/var/lib/smemu/deeper", mounts[:3]) == "/home/me/state/deeper"
    assert host_home_from_mounts("/var/lib/smemu", mounts[1:2]) == "/data/lib/smemu"
    assert host_home_from_mounts("/opt/smemu", mounts) is None


def test_container_id_from_mountinfo() -> None:
    cid = "5204dc6eeda660cdb31eaea36c02bb11be64f24c03eeef462e6756f1ad8a9e8d"
    mountinfo = (
        "74 60 0:44 / / rw,relatime - overlay overlay rw\n"
        f"92 74 254:0 /var/lib/docker/containers/{cid}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
    )
    assert container_id_from_mountinfo(mountinfo) == cid
    assert container_id_from_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n") is None
