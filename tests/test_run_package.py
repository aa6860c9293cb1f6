"""lipobench.run: its modules import one way, and a Status reads as the plain string it was."""

from __future__ import annotations

import io
import json

import pandas as pd
from test_import_graph import _imports, _modules

from lipobench.run.tasks import Outcome, Status

#: lipobench.run's modules, each importing only modules before it (``None``: any of them).
LAYERS = {
    "tasks": set(), "context": set(), "keys": set(),
    "plan": {"tasks", "keys"},
    "scoring": {"tasks", "context"},
    "work": {"tasks", "context", "plan", "scoring"},
    "progress": {"tasks"},
    "executors": {"tasks", "progress"},  # an executor knows jobs, not what they do
    "dataset": {"keys"},
    "record": {"plan"},
    "orchestrate": None,
}


def test_run_modules_import_one_way():
    modules = _modules()
    inside = {name for name in modules if name.startswith("lipobench.run.")}
    assert inside == {f"lipobench.run.{name}" for name in LAYERS}
    for name, allowed in LAYERS.items():
        imported = {m.removeprefix("lipobench.run.") for m in
                    _imports(modules[f"lipobench.run.{name}"], f"lipobench.run.{name}", modules)
                    if m == "lipobench.run" or m.startswith("lipobench.run.")}
        assert "lipobench.run" not in imported and "orchestrate" not in imported, name
        if allowed is not None:
            assert imported <= allowed, (name, imported - allowed)


def test_status_reads_and_writes_as_its_value(tmp_path):
    assert [s.value for s in Status] == ["ok", "failed", "unavailable"]
    assert Status.OK == "ok" and str(Status.FAILED) == "failed"
    assert f"{Status.UNAVAILABLE}" == "unavailable"
    assert json.dumps({"status": Status.OK}) == '{"status": "ok"}'
    table = pd.DataFrame({"status": [Status.OK, Status.UNAVAILABLE, "failed"]})
    text = io.StringIO()
    table.to_csv(text, index=False)
    assert text.getvalue() == "status\nok\nunavailable\nfailed\n"
    table.to_parquet(tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet")["status"].tolist() == \
        ["ok", "unavailable", "failed"]
    assert table["status"].eq("ok").tolist() == [True, False, False]
    # a job may report a plain string; the outcome holds the enum
    assert Outcome("t", "failed").status is Status.FAILED
