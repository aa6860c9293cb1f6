"""ruff and mypy keep the plugin surface and the metrics clean (config in pyproject.toml).

Checked: :mod:`lipobench.api`, :mod:`lipobench.hookspecs`, :mod:`lipobench.plugins`,
:mod:`lipobench.registry`, ``adapters/base.py`` and every module of ``metrics/`` (ruff also
reads ``lipobench/report/``, ``adapters/builtin.py`` and ``adapters/lipopose_report.py``). The
rest of the tree joins file by file, by adding it to the lists below once it passes.

mypy cannot follow setuptools' ``package-dir`` mapping (``adapters/`` and ``metrics/`` are
installed as ``lipobench.adapters`` and ``lipobench.metrics`` through an import hook it does not
run), so it reads the package through a tree of symbolic links laid out as installed, and is
given the modules by their installed names.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Files ruff checks (folders: every file in them), relative to the repository root.
RUFF_PATHS = ["lipobench/api.py", "lipobench/hookspecs.py", "lipobench/plugins.py",
              "lipobench/registry.py", "adapters/base.py", "metrics", "lipobench/report",
              "adapters/builtin.py", "adapters/lipopose_report.py"]
#: What mypy checks, by installed name: the same files.
MYPY_MODULES = ["lipobench.api", "lipobench.hookspecs", "lipobench.plugins",
                "lipobench.registry", "lipobench.adapters.base"]
MYPY_PACKAGES = ["lipobench.metrics"]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MYPYPATH", None)
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _installed_layout(where: Path) -> Path:
    """``where/lipobench`` as installed: links to lipobench/'s entries, adapters/ and metrics/.

    The folders come from ``[tool.setuptools] package-dir``, as setuptools reads them.
    """
    with open(ROOT / "pyproject.toml", "rb") as file:
        package_dir = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    mapped = {where.joinpath(*name.split(".")): ROOT / folder
              for name, folder in package_dir.items() if name != "lipobench"}
    top = where / "lipobench"
    top.mkdir(parents=True)
    for entry in (ROOT / package_dir["lipobench"]).iterdir():
        if entry.name != "__pycache__" and top / entry.name not in mapped:
            (top / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for link, folder in mapped.items():
        link.symlink_to(folder, target_is_directory=True)
    return where


def test_ruff_passes_on_the_plugin_surface_and_metrics():
    result = _run(["ruff", "check", "--no-fix", *RUFF_PATHS], ROOT)
    assert result.returncode == 0, (
        f"ruff check {' '.join(RUFF_PATHS)} (exit {result.returncode}); "
        f"`ruff check --fix` repairs some:\n{result.stdout}{result.stderr}"
    )


def test_mypy_passes_on_the_plugin_surface_and_metrics(tmp_path):
    if sys.platform == "win32":
        pytest.skip("the installed layout is made of symbolic links")
    base = _installed_layout(tmp_path / "src")
    argv = ["mypy", "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(ROOT / ".mypy_cache")]
    for module in MYPY_MODULES:
        argv += ["-m", module]
    for package in MYPY_PACKAGES:
        argv += ["-p", package]
    result = _run(argv, base)
    # Name the files as they lie in the repository, not as linked.
    output = re.sub(r"^lipobench/(adapters|metrics)/", r"\1/", result.stdout + result.stderr,
                    flags=re.MULTILINE)
    assert result.returncode == 0, f"mypy (exit {result.returncode}):\n{output}"
