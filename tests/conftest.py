"""Fixtures and helpers shared by the test modules (pytest finds this file by name)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def heavy_modules_after_import(module: str, candidates) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has in sys.modules after ``import module``.

    A fresh interpreter, because this one has pytest and maybe torch loaded already.
    """
    code = (f"import json, sys\nimport {module}\n"
            f"print(json.dumps(sorted(m for m in {tuple(candidates)!r} if m in sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def imported_by():
    """``imported_by(module, candidates)``: see :func:`heavy_modules_after_import`."""
    return heavy_modules_after_import


@pytest.fixture
def stage_values():
    """``stage_values(adapter, stage, params)``: the values of ``params`` at one stage."""
    return lambda adapter, stage, params: adapter.split_parameters(params)[stage]
