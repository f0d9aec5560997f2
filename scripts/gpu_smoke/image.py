"""Make a CUDA-capable training image from this machine's own files (no registry needed).

    python image.py --python PY --tag TAG [--workdir DIR]

``PY`` is the Python that holds PyTorch (any Python on the GPU machine that imports torch).
It runs the smoke trainer in probe mode (trainer.py --probe), which does the PyTorch work the
job will do and lists every module and shared library that loaded. The image is exactly
those files -- the interpreter and its standard library, the site-packages entries that were
imported, the shared libraries that were mapped (with their soname links and the folders
that are links on a merged-/usr system) -- plus the trainer as /usr/local/bin/train. The
NVIDIA driver's own libraries are left out on purpose: the NVIDIA runtime adds them to the
container (CDI), as it does on SageMaker, where images carry CUDA but never the driver.

The tar goes to the engine named by DOCKER_HOST through the import API (``docker import``).
Standard library plus docker-py.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRIVER_LIBRARY_PREFIXES = ("libcuda.so", "libcudadebugger.so", "libnvidia-", "libnvcuvid.so", "libnvoptix.so")
DRIVER_ROOTS = ("/usr/local/nvidia", "/usr/lib/wsl")
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "dist-packages"}
"""Parts of the standard library the trainer never needs (``config-*`` folders too)."""


class FileSet:
    """Paths to put in the image, at their canonical places; links kept as links."""

    def __init__(self) -> None:
        self.paths: set[str] = set()

    @staticmethod
    def canonical(path: str) -> str:
        """``path`` with every parent folder resolved (the entry itself may be a link)."""
        return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))

    def add(self, path: str, recursive: bool = False, skip: set[str] | None = None) -> None:
        """Add ``path`` (and what its links point to); folders' contents with ``recursive`` only."""
        path = os.path.normpath(path)
        if not os.path.lexists(path):
            return
        self._add_links_on_the_way(path)
        path = self.canonical(path)
        if path in self.paths:
            return
        self.paths.add(path)
        if os.path.islink(path):
            self.add(os.path.join(os.path.dirname(path), os.readlink(path)), recursive=recursive, skip=skip)
        elif recursive and os.path.isdir(path):
            for entry in os.scandir(path):
                if not (skip and (entry.name in skip or entry.name.startswith("config-"))):
                    self.add(entry.path, recursive=True)

    def _add_links_on_the_way(self, path: str) -> None:
        """A parent folder that is a link (``/lib -> usr/lib``) goes in as the link plus its target."""
        parts = Path(path).parts
        for index in range(2, len(parts)):
            parent = os.path.join(*parts[:index])
            if os.path.islink(parent):
                link = self.canonical(parent)
                if link not in self.paths:
                    self.paths.add(link)
                    self.add(os.path.join(os.path.dirname(link), os.readlink(link)))


def is_driver_library(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith(DRIVER_LIBRARY_PREFIXES) or path.startswith(DRIVER_ROOTS)


def soname_links(path: str, cache: dict[str, list[os.DirEntry[str]]]) -> list[str]:
    """Links in the same folder that point at ``path`` (``libz.so.1 -> libz.so.1.2.13``)."""
    folder = os.path.dirname(path)
    if folder not in cache:
        try:
            cache[folder] = [e for e in os.scandir(folder) if e.is_symlink()]
        except OSError:
            cache[folder] = []
    real = os.path.realpath(path)
    found = []
    for entry in cache[folder]:
        try:
            if os.path.realpath(entry.path) == real:
                found.append(entry.path)
        except OSError:
            continue
    return found


def site_entry(module_file: str, site_dirs: list[str]) -> str | None:
    """The top-level entry of a site-packages folder that holds ``module_file`` (None: stdlib)."""
    for site in site_dirs:
        if module_file.startswith(site + os.sep):
            relative = Path(module_file).relative_to(site).parts
            top = os.path.join(site, relative[0])
            if len(relative) > 2 and os.path.isdir(top) and not os.path.exists(os.path.join(top, "__init__.py")):
                return os.path.join(top, relative[1])  # a namespace package (nvidia/...): only the used part
            return top
    return None


def build_file_set(probe: dict, trainer_path: str) -> FileSet:
    files = FileSet()
    files.add(probe["executable"])
    files.add(os.path.realpath(probe["executable"]))
    prefix, base = probe["prefix"], probe["base_prefix"]
    files.add(os.path.join(prefix, "pyvenv.cfg"))
    version = probe["version"]
    stdlib = next((p for p in probe["path"] if p.rstrip("/").endswith(version) and p.startswith(base)),
                  os.path.join(base, "lib", version))
    files.add(stdlib, recursive=True, skip=STDLIB_SKIP)
    site_dirs = sorted({p for p in probe["path"] if p.endswith(("site-packages", "dist-packages"))}, key=len,
                       reverse=True)
    for module in probe["modules"]:
        entry = site_entry(module, site_dirs)
        if entry is not None:
            files.add(entry, recursive=True)
        elif not FileSet.canonical(module).startswith(os.path.realpath(stdlib)):
            files.add(module)
    for site in site_dirs:  # package metadata (importlib.metadata) and .pth files: small
        if os.path.isdir(site):
            for entry in os.scandir(site):
                if entry.name.endswith((".dist-info", ".pth", ".egg-info")):
                    files.add(entry.path, recursive=True)
    cache: dict[str, list[os.DirEntry[str]]] = {}
    for library in probe["libraries"]:
        if is_driver_library(library) or library.startswith(("/dev/", "/proc/", "/sys/")) or library == trainer_path:
            continue
        files.add(library)
        for link in soname_links(library, cache):
            files.add(link)
    for loader in ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"):
        files.add(loader)
    for config in ("/etc/ld.so.conf",):
        files.add(config)
    if os.path.isdir("/etc/ld.so.conf.d"):
        files.add("/etc/ld.so.conf.d", recursive=True)
    return files


def write_tar(files: FileSet, trainer_source: str, executable: str, out: Path) -> int:
    """The image's root file system as a tar; returns its size in bytes."""
    made_dirs: set[str] = set()
    with tarfile.open(out, "w") as tar:

        def directory(path: str, mode: int = 0o755) -> None:
            if path in ("/", "") or path in made_dirs:
                return
            directory(os.path.dirname(path))
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
            tar.addfile(info)
            made_dirs.add(path)

        for path in sorted(files.paths):
            directory(os.path.dirname(path))
            if os.path.isdir(path) and not os.path.islink(path):
                directory(path, stat.S_IMODE(os.stat(path).st_mode))
                continue
            tar.add(path, arcname=path.lstrip("/"), recursive=False)
        for folder, mode in (("/tmp", 0o1777), ("/root", 0o700), ("/opt/ml", 0o755), ("/usr/local/bin", 0o755),
                             ("/etc", 0o755), ("/dev", 0o755), ("/proc", 0o555), ("/sys", 0o555)):
            directory(folder, mode)
        for name, text, mode in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
            ("usr/local/bin/train", f"#!{executable}\n" + trainer_source, 0o755),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, __import__("io").BytesIO(data))
    return out.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the Python that holds PyTorch")
    parser.add_argument("--tag", required=True, help="image name:tag to import as")
    parser.add_argument("--workdir", default="/tmp/smemu-gpu/image")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    trainer = HERE / "trainer.py"
    probe_file = work / "probe.json"
    started = time.monotonic()
    subprocess.run([args.python, str(trainer), "--probe", str(probe_file)], check=True)
    probe = json.loads(probe_file.read_text())
    files = build_file_set(probe, str(trainer))
    tar_path = work / "rootfs.tar"
    size = write_tar(files, trainer.read_text(), probe["executable"], tar_path)
    print(f"image.py: {len(files.paths)} paths, rootfs tar {size / 1024**2:.0f} MiB "
          f"({time.monotonic() - started:.0f} s); torch on the host: {json.dumps(probe['torch'])}", flush=True)

    import docker

    client = docker.from_env(timeout=1800)
    repository, _, tag = args.tag.partition(":")
    changes = [
        "ENV PATH=" + os.path.dirname(probe["executable"]) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV PYTHONUNBUFFERED=1",
        "ENV PYTHONDONTWRITEBYTECODE=1",
        "WORKDIR /",
    ]
    imported = time.monotonic()
    client.api.import_image_from_file(str(tar_path), repository=repository, tag=tag or "latest", changes=changes)
    image = client.images.get(args.tag)
    print(f"image.py: imported {args.tag} ({image.attrs['Size'] / 1024**2:.0f} MiB) in "
          f"{time.monotonic() - imported:.0f} s", flush=True)
    tar_path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
