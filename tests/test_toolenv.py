"""Managed tool environments: finding a Python, an idempotent install, a killed install.

The install tests build real virtual environments from a real Python 3.7 (small ones: one
pinned package, or none); they skip only where no Python 3.7 exists. crYOLO's own
environment is built by `make test` and exercised in tests/adapters/test_cryolo_real.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipobench.errors import UserError
from lipobench.testing import run_cli
from lipobench.toolenv import (MARKER, TOOLS_DIR_ENV, ToolEnvironment, find_python,
                               install_environment, installed_bin_dir)

PY37, PY37_WHY = find_python("3.7")
needs_py37 = pytest.mark.skipif(PY37 is None, reason=f"needs Python 3.7: {PY37_WHY}")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """User config and tools folders of this test only."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv(TOOLS_DIR_ENV, str(tmp_path / "tools"))
    return tmp_path


def _spec(tmp_path: Path, requirements: str, checks=()) -> ToolEnvironment:
    pins = tmp_path / "pins.txt"
    pins.write_text(requirements)
    return ToolEnvironment(tool="toy", version="1.0", python="3.7", requirements=pins,
                           checks=checks)


def test_explicit_python_of_another_version_is_a_user_error():
    with pytest.raises(UserError, match=r"--python .*: is Python 3\.11; give a Python 3\.7"):
        find_python("3.7", sys.executable)
    with pytest.raises(UserError, match="not a Python interpreter"):
        find_python("3.7", "/nonexistent/python")


def test_no_python_found_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    python, why = find_python("3.7")
    assert python is None
    assert "no Python 3.7 found" in why and "pyenv install 3.7" in why and "--python" in why


@needs_py37
def test_install_runs_checks_records_and_is_idempotent(home):
    env = _spec(home, "six==1.17.0\n", checks=(("python", "-c", "import six"),))
    lines: list[str] = []
    bin_dir = install_environment(env, echo=lines.append)
    prefix = home / "tools" / "toy-1.0"
    assert bin_dir == prefix / "bin" and (prefix / MARKER).is_file()
    assert any("[1/1] six==1.17.0" in line for line in lines)
    assert installed_bin_dir("toy") == (bin_dir, installed_bin_dir("toy")[1])
    record = json.loads((home / "config" / "lipobench" / "installed-tools.json").read_text())
    assert record["toy"]["prefix"] == str(prefix)
    started = time.monotonic()
    again: list[str] = []
    assert install_environment(env, echo=again.append) == bin_dir
    assert again == [f"toy 1.0: already installed in {prefix}"]
    assert time.monotonic() - started < 5


def test_build_pins_are_part_of_the_environments_identity(tmp_path):
    plain = _spec(tmp_path, "six==1.17.0\n")
    with_wheel = ToolEnvironment(tool="toy", version="1.0", python="3.7",
                                 requirements=plain.requirements, build_pins=("wheel==0.42.0",))
    assert plain.requirements_digest() != with_wheel.requirements_digest()
    assert with_wheel.pinned_count() == 1


@needs_py37
def test_build_pins_are_installed_before_the_requirements(home):
    # crYOLO's launchers depend on this: without wheel, pip 22 installs source-only pins with
    # setup.py install, whose pkg_resources launchers refuse to start without wxPython.
    pins = home / "pins.txt"
    pins.write_text("six==1.17.0\n")
    env = ToolEnvironment(tool="toy", version="1.0", python="3.7", requirements=pins,
                          checks=(("python", "-c", "import wheel, six"),),
                          build_pins=("wheel==0.42.0",))
    lines: list[str] = []
    install_environment(env, echo=lines.append)
    build = next(k for k, line in enumerate(lines) if "build tools: wheel==0.42.0" in line)
    pinned = next(k for k, line in enumerate(lines) if "[1/1] six==1.17.0" in line)
    assert build < pinned


@needs_py37
def test_failed_check_leaves_nothing_that_looks_installed(home):
    from lipobench.errors import ToolFailedError

    env = _spec(home, "# no packages\n", checks=(("python", "-c", "import six"),))
    with pytest.raises(ToolFailedError, match=r"scripts do not run; see log .*toy-1\.0\.install"):
        install_environment(env, echo=lambda line: None)
    assert not (home / "tools" / "toy-1.0").exists()
    assert installed_bin_dir("toy")[0] is None


@needs_py37
def test_killed_install_is_not_installed_and_the_next_one_rebuilds(home):
    env = _spec(home, "# no packages\n")
    prefix = home / "tools" / "toy-1.0"
    script = (f"from pathlib import Path\nfrom lipobench.toolenv import ToolEnvironment, "
              f"install_environment\ninstall_environment(ToolEnvironment('toy', '1.0', '3.7', "
              f"Path({str(env.requirements)!r})))\n")
    process = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (prefix / "pyvenv.cfg").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (prefix / "pyvenv.cfg").exists() and not (prefix / MARKER).exists()
    folder, why = installed_bin_dir("toy")
    assert folder is None and "not installed" in why
    lines: list[str] = []
    install_environment(env, echo=lines.append)
    assert lines[0] == f"removing an unfinished or outdated environment in {prefix}"
    assert (prefix / MARKER).is_file()


# ---------------------------------------------------------------- command line
def test_tools_install_unknown_name_is_one_line(capsys):
    code, out, err = run_cli(["tools", "install", "cryollo"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == ("lipobench: error: tools install 'cryollo': no adapter of that name "
                           "needs an environment of its own; the tools lipobench installs: cryolo")


def test_tools_install_with_a_python_of_the_wrong_version(home, capsys):
    code, _, err = run_cli(["tools", "install", "cryolo", "--python", sys.executable], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is Python 3.11; give a Python 3.7" in err and "Traceback" not in err
    assert not (home / "tools").exists()


def test_tools_install_if_python_available_skips_without_one(home, monkeypatch, capsys):
    monkeypatch.setenv("PYENV_ROOT", str(home / "no-pyenv"))
    monkeypatch.setenv("PATH", str(home))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    code, out, err = run_cli(["tools", "install", "cryolo", "--if-python-available"], capsys)
    assert code == 0 and out.startswith("cryolo: skipped: no Python 3.7 found"), err
    code, _, err = run_cli(["tools", "install", "cryolo"], capsys)
    assert code == 2 and "cryolo needs Python 3.7: no Python 3.7 found" in err
    assert not (home / "tools").exists()


def test_tools_list_names_what_is_installable(home, capsys):
    code, out, _ = run_cli(["tools", "list"], capsys)
    assert code == 0
    assert out.strip() == ("cryolo 1.9.9 (Python 3.7): not installed by "
                           "`lipobench tools install cryolo`")


@needs_py37
def test_install_never_deletes_a_folder_it_did_not_build(home, capsys):
    precious = home / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    code, _, err = run_cli(["tools", "install", "cryolo", "--prefix", precious], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "exists and is not an environment lipobench built" in err
    assert (precious / "thesis.tex").read_text() == "years of work"
