#!/usr/bin/env python3
"""Pack static programs into a one-layer image archive that `ctr images import` loads.

scripts/kube uses it for the two images its cluster needs before any registry is reachable:
the pod sandbox (the static ``pause`` built from Kubernetes' source) and the emulator's
helper image (Debian's static busybox, with a link per applet), which stages folders into
pods and copies them back out (docs/kubernetes.md).

The archive is Docker's ``docker save`` layout (manifest.json, the image config, one
layer.tar); containerd imports it as it imports any saved image. Files are owned by root.

Usage: kube_image.py OUT.tar NAME:TAG [--entrypoint PATH] [--cmd WORD] [--busybox-links] SRC=DEST ...
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import tarfile


def _layer(files: list[tuple[str, str]], busybox_links: bool) -> bytes:
    """An uncompressed layer tar of ``(source, destination)`` files, plus applet links."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as layer:
        folders: set[str] = set()

        def add_folder(path: str) -> None:
            parent = os.path.dirname(path)
            if parent and parent not in folders:
                add_folder(parent)
            if path and path not in folders:
                folders.add(path)
                info = tarfile.TarInfo(path)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                layer.addfile(info)

        for folder in ("tmp",):
            add_folder(folder)
        for source, destination in files:
            name = destination.lstrip("/")
            add_folder(os.path.dirname(name))
            info = layer.gettarinfo(source, arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o755
            with open(source, "rb") as handle:
                layer.addfile(info, handle)
            if busybox_links:
                applets = subprocess.run([source, "--list"], capture_output=True, text=True, check=True).stdout
                for applet in sorted(set(applets.split())):
                    link_name = f"{os.path.dirname(name)}/{applet}"
                    if link_name == name:
                        continue
                    info = tarfile.TarInfo(link_name)
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.path.basename(name), 0o777
                    layer.addfile(info)
    return buffer.getvalue()


def pack(out: str, tag: str, files: list[tuple[str, str]], entrypoint: list[str] | None, cmd: list[str] | None,
         busybox_links: bool) -> None:
    """Write the image archive ``out`` holding ``files`` under the name ``tag``."""
    layer = _layer(files, busybox_links)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"],
                   "Labels": {"smemu.kind": "kube-image"}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created_by": "scripts/kube_image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"{config_digest}.json", "RepoTags": [tag], "Layers": [f"{layer_digest}/layer.tar"]}]
    with tarfile.open(out, mode="w") as archive:
        for name, data in ((f"{layer_digest}/layer.tar", layer), (f"{config_digest}.json", config_bytes),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("tag")
    parser.add_argument("files", nargs="+", help="SRC=DEST")
    parser.add_argument("--entrypoint", default=None, help="the image's ENTRYPOINT (one word)")
    parser.add_argument("--cmd", default=None, help="the image's CMD (one word)")
    parser.add_argument("--busybox-links", action="store_true")
    args = parser.parse_args()
    files = [tuple(item.split("=", 1)) for item in args.files]
    entrypoint = [args.entrypoint] if args.entrypoint else None
    pack(args.out, args.tag, files, entrypoint, [args.cmd] if args.cmd else None,  # type: ignore[arg-type]
         args.busybox_links)


if __name__ == "__main__":
    main()
