"""What a run ran on: package versions and the machine, for ``run.json``.

A published number is only as reproducible as the record of where it came from; the results
under ``docs/results/`` quote this record. Nothing here imports a tool: versions come from
the installed packages' metadata, so describing a run costs milliseconds.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["PACKAGES", "environment"]

#: The packages whose versions decide a run's numbers.
PACKAGES = ("lipobench", "numpy", "scipy", "scikit-image", "pandas", "torch", "cellpose",
            "topaz-em", "numba")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    """The CPU's marketing name where the OS says it (Linux), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def environment(tool_versions: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The packages and machine of this process, with each adapter's tool version.

    >>> env = environment({"log": "scikit-image 0.26.0"})
    >>> sorted(env) == ["cpu", "cpu_count", "memory_gib", "packages", "platform", "python",
    ...                 "tools"]
    True
    >>> env["tools"], "lipobench" in env["packages"]
    ({'log': 'scikit-image 0.26.0'}, True)
    """
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        # The cores this process may use, which is what its speed depends on.
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "packages": {name: _version(name) for name in PACKAGES},
        "tools": dict(sorted((tool_versions or {}).items())),
    }
