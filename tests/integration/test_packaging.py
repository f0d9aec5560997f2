"""The package as users install it: a wheel built from this tree, installed into a scratch
virtual environment, carries what the CLI and the dashboard need (the base-image script, the
dashboard's files) and runs them from there, with no checkout on its path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from emulator.config import Settings

REPO = Path(__file__).resolve().parents[2]


def run(*command: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this tree, built offline with the test environment's setuptools (from a copy of
    what the build reads, so the checkout gets no build/ or egg-info folder)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "emulator", source / "emulator", ignore=shutil.ignore_patterns("__pycache__"))
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                "-w", str(out), str(source), cwd=out)
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("sagemaker_emulator-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A scratch venv holding the wheel (its dependencies come from the test environment)."""
    root = tmp_path_factory.mktemp("scratch")
    target = root / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    done = run(str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel), cwd=root)
    assert done.returncode == 0, done.stderr
    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=root).stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "AWS_ENDPOINT_URL", "PYTHON"))}
    yield target, env


def test_the_wheel_carries_the_cli_scripts_and_the_dashboard(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("emulator/resources/build-base-image", "emulator/observe/static/index.html",
                 "emulator/observe/static/app.js", "emulator/observe/static/app.css", "emulator/cli_observe.py"):
        assert path in names, f"{path} is not in {wheel.name}"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    requires = {r.name: r for r in (Requirement(line.split(":", 1)[1]) for line in text.splitlines()
                                    if line.startswith("Requires-Dist:") and "extra ==" not in line)}
    assert str(requires["botocore"].specifier) == "==1.43.11"  # pinned: the gateway follows its models
    assert requires["moto"].specifier == SpecifierSet(">=5.2.1,<5.3") and requires["moto"].extras == {"server"}


@pytest.mark.docker
def test_smemu_base_image_runs_its_script_from_the_installed_package(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    target, env = installed
    where = run(str(target / "bin" / "python"), "-c", "import emulator; print(emulator.__file__)", cwd=tmp_path,
                env=env)
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr  # not the checkout
    base = os.environ.get("SMEMU_BASE_IMAGE", "smemu-base/python:3.11")
    built = run(str(target / "bin" / "smemu"), "base-image", "--image", base, cwd=tmp_path,
                env={**env, "SMEMU_HOME": str(tmp_path / "home")})
    assert built.returncode == 0, built.stderr
    assert f"{base} already exists" in built.stderr


def test_the_installed_cli_shows_the_running_emulator(
    installed: tuple[Path, dict[str, str]], tmp_path: Path, emulator: Any, emulator_settings: Settings
) -> None:
    target, env = installed
    status = run(str(target / "bin" / "smemu"), "status", cwd=tmp_path,
                 env={**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{emulator_settings.port}"})
    assert status.returncode == 0, status.stderr
    assert f"home       {emulator_settings.home}" in status.stdout
    page = run(str(target / "bin" / "python"), "-c",
               "from emulator.observe.dashboard import STATIC, static_file; print(sum(len(static_file(n)) "
               "for n in STATIC))", cwd=tmp_path, env=env)
    assert page.returncode == 0 and int(page.stdout) > 10_000, page.stderr
