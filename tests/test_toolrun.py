"""run_tool: output kept in a log, missing tools and crashes reported with the fix or the log."""

import sys

import pytest

from lipobench.errors import ToolFailedError, ToolUnavailableError, UserError
from lipobench.toolrun import run_tool, user_tool_config


def test_output_and_errors_go_to_the_log_and_append(tmp_path):
    log = tmp_path / "logs" / "tool.log"
    run_tool([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"],
             log_path=log)
    run_tool([sys.executable, "-c", "print('second')"], log_path=log)
    text = log.read_text()
    assert "out" in text and "err" in text and "second" in text
    assert text.count("$ ") == 2


def test_nonzero_exit_names_the_log(tmp_path):
    log = tmp_path / "tool.log"
    with pytest.raises(ToolFailedError) as excinfo:
        run_tool([sys.executable, "-c", "raise SystemExit(3)"], log_path=log)
    assert "exited with code 3" in str(excinfo.value) and str(log) in str(excinfo.value)
    assert excinfo.value.log_path == log


def test_timeout_names_the_log(tmp_path):
    with pytest.raises(ToolFailedError, match=r"did not finish within 0.5 s; see log"):
        run_tool([sys.executable, "-c", "import time; time.sleep(30)"],
                 log_path=tmp_path / "t.log", timeout=0.5)


def test_missing_executable_is_unavailable_with_a_fix(tmp_path):
    with pytest.raises(ToolUnavailableError, match="not found on PATH; install it"):
        run_tool(["no-such-tool-lipobench"], log_path=tmp_path / "x.log")
    with pytest.raises(ToolUnavailableError, match="does not exist or is not executable"):
        run_tool([tmp_path / "missing.py"], log_path=tmp_path / "x.log")
    assert not (tmp_path / "x.log").exists()


def test_environment_is_passed_and_pythonpath_stripped(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    log = tmp_path / "env.log"
    code = "import os; print('PP=' + os.environ.get('PYTHONPATH', '-'), os.environ['EXTRA'])"
    run_tool([sys.executable, "-c", code], log_path=log, env={"EXTRA": "yes"},
             strip_pythonpath=True)
    run_tool([sys.executable, "-c", code], log_path=log, env={"EXTRA": "again"})
    text = log.read_text()
    assert "PP=- yes" in text and "PP=/elsewhere again" in text


def test_user_tool_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_tool_config("cryolo") == {}
    config = tmp_path / "lipobench" / "config.toml"
    config.parent.mkdir()
    config.write_text('[tools.cryolo]\nbin_dir = "/opt/cryolo/bin"\n')
    assert user_tool_config("cryolo") == {"bin_dir": "/opt/cryolo/bin"}
    assert user_tool_config("topaz") == {}
    config.write_text('tools = 3\n')
    with pytest.raises(UserError, match="config.toml"):
        user_tool_config("cryolo")
