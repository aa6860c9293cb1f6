"""Plugin discovery and the adapter registry, with a real third-party plugin package.

The example plugin (tests/example_plugin) is made importable and discoverable without
installing it into the shared environment: each test writes a real ``.dist-info`` folder
(METADATA, entry_points.txt, top_level.txt) and puts it and the package on ``sys.path``.
"""

import sys
import textwrap
from pathlib import Path

import pytest

from lipobench.adapters.base import Adapter, Parameter, Stage
from lipobench.adapters.log import LogAdapter
from lipobench.errors import UserError
from lipobench.plugins import DISABLE_ENV, get_plugin_manager, load_registry
from lipobench.regions import RegionKind, RegionSet
from lipobench.registry import AdapterRegistry, UnknownAdapterError
from lipobench.testing import check_adapter

EXAMPLE_PLUGIN = Path(__file__).parent / "example_plugin"


def _fake_distribution(site: Path, *, name: str, module: str, entry_points: str,
                       version: str = "0.1.0") -> None:
    """A real .dist-info folder, as pip would leave it, for ``name`` providing ``module``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    (info / "top_level.txt").write_text(f"{module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site folder on sys.path; modules imported from it are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    before = set(sys.modules)
    yield folder
    for module in set(sys.modules) - before:
        if module.startswith(("lipobench_example_plugin", "dup_", "broken_")):
            del sys.modules[module]


@pytest.fixture
def example_plugin(site, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    _fake_distribution(site, name="lipobench-example-plugin", module="lipobench_example_plugin",
                       entry_points="[lipobench]\nthreshold = lipobench_example_plugin\n")
    return site


# ---------------------------------------------------------------- plugin manager
def test_builtin_plugin_is_registered_once_although_its_entry_point_is_installed():
    pm = get_plugin_manager(disable_plugins=False)
    import lipobench.adapters.builtin as builtin

    assert pm.get_plugin("builtin") is builtin
    assert [p for p in pm.get_plugins() if p is builtin] == [builtin]
    impls = pm.hook.lipobench_register_adapters.get_hookimpls()
    assert [i.plugin for i in impls].count(builtin) == 1


def test_each_call_builds_a_new_manager():
    assert get_plugin_manager() is not get_plugin_manager()


def test_builtin_adapters_are_listed_with_their_package():
    registry = load_registry(disable_plugins=True)
    entry = registry.entry("log")
    assert entry.adapter_cls is LogAdapter
    assert entry.package == "lipobench"
    assert entry.package_version is not None


def test_example_plugin_is_discovered_and_passes_conformance(example_plugin, tmp_path):
    registry = load_registry()
    assert "threshold" in registry.names() and "log" in registry.names()
    entry = registry.entry("threshold")
    assert (entry.package, entry.package_version) == ("lipobench-example-plugin", "0.1.0")
    adapter = registry.get("threshold")
    assert adapter.region_kind is RegionKind.MASK
    predictions = check_adapter(adapter, tmp_path / "run")
    assert sum(len(p) for p in predictions) > 0


def test_disable_env_hides_third_party_plugins(example_plugin, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "1")
    names = load_registry().names()
    assert "threshold" not in names and "log" in names
    monkeypatch.setenv(DISABLE_ENV, "0")
    assert "threshold" in load_registry().names()


def test_duplicate_name_names_both_packages(site):
    (site / "dup_log_plugin.py").write_text(textwrap.dedent("""
        from lipobench.adapters.log import LogAdapter
        from lipobench.hookspecs import hookimpl

        class AnotherLog(LogAdapter):
            pass

        @hookimpl
        def lipobench_register_adapters(registry):
            registry.register(AnotherLog)
    """))
    _fake_distribution(site, name="dup-log-plugin", module="dup_log_plugin",
                       entry_points="[lipobench]\ndup = dup_log_plugin\n")
    with pytest.raises(UserError) as excinfo:
        load_registry()
    message = str(excinfo.value)
    assert "'log'" in message and "'lipobench'" in message and "'dup-log-plugin'" in message


def test_plugin_that_fails_to_import_is_named(site):
    (site / "broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    _fake_distribution(site, name="broken-plugin", module="broken_plugin",
                       entry_points="[lipobench]\nbroken = broken_plugin\n")
    with pytest.raises(UserError, match=r"'broken-plugin' failed to load.*libfoo.*"
                                        r"LIPOBENCH_DISABLE_PLUGINS=1"):
        load_registry()
    assert "log" in load_registry(disable_plugins=True).names()


def test_plugin_with_a_misspelt_hook_is_refused(site):
    (site / "broken_hook.py").write_text(textwrap.dedent("""
        from lipobench.hookspecs import hookimpl

        @hookimpl
        def lipobench_register_adaptors(registry):
            pass
    """))
    _fake_distribution(site, name="broken-hook", module="broken_hook",
                       entry_points="[lipobench]\nbroken_hook = broken_hook\n")
    try:
        with pytest.raises(UserError, match="unknown hook"):
            load_registry()
    finally:
        sys.modules.pop("broken_hook", None)


# ---------------------------------------------------------------- registry
def test_unknown_name_lists_the_known_ones():
    registry = load_registry(disable_plugins=True)
    with pytest.raises(UnknownAdapterError, match=r"unknown method 'cryol'.*log"):
        registry.get("cryol")


class NotAnAdapterForTests:
    name = "nope"


class NoKindAdapterForTests(LogAdapter):
    name = "nokind"
    region_kind = "circle"


class EmptyGridAdapterForTests(LogAdapter):
    name = "emptygrid"
    parameters = {"x": Parameter(Stage.PREDICT, ())}


@pytest.mark.parametrize("bad, fragment", [
    (NotAnAdapterForTests, "Adapter subclass"),
    (LogAdapter(), "Adapter subclass"),
    (NoKindAdapterForTests, "region_kind"),
    (EmptyGridAdapterForTests, "non-empty grid"),
    (Adapter, "name"),
])
def test_register_validates_the_class(bad, fragment):
    with pytest.raises(UserError, match=fragment):
        AdapterRegistry().register(bad)


def test_same_class_twice_is_harmless_and_options_are_checked():
    registry = AdapterRegistry()
    registry.register(LogAdapter)
    registry.register(LogAdapter)
    assert registry.names() == ["log"] and len(registry) == 1
    with pytest.raises(UserError,
                       match=r"unknown option 'bin_dir' for adapter 'log'.*allowed options: none"):
        registry.get("log", bin_dir="/x")


# ---------------------------------------------------------------- conformance suite catches faults
class WrongKindAdapterForTests(LogAdapter):
    """Declares boxes but returns circles."""

    name = "wrongkind"
    region_kind = RegionKind.BOX


class MissingPredictionAdapterForTests(LogAdapter):
    name = "missing"

    def predict(self, model, micrographs, params, workdir):
        return super().predict(model, micrographs, params, workdir)[:-1]


class MutatingAdapterForTests(LogAdapter):
    name = "mutating"

    def predict(self, model, micrographs, params, workdir):
        micrographs[0].image[0, 0] += 1
        return super().predict(model, micrographs, params, workdir)


class GrowingSelectAdapterForTests(LogAdapter):
    name = "growing"

    def select(self, regions, params):
        return RegionSet.from_circles([[5, 5, 2]] * (len(regions) + 1),
                                      image_shape=regions.image_shape)


@pytest.mark.parametrize("adapter_cls, fragment", [
    (WrongKindAdapterForTests, "declares box"),
    (MissingPredictionAdapterForTests, "one per micrograph"),
    (MutatingAdapterForTests, "modified the pixels"),
    (GrowingSelectAdapterForTests, "more regions"),
])
def test_conformance_check_reports_broken_adapters(adapter_cls, fragment, tmp_path):
    with pytest.raises(pytest.fail.Exception, match=fragment):
        check_adapter(adapter_cls(), tmp_path)


def test_unavailable_adapter_is_skipped_with_its_reason(tmp_path):
    from lipobench.adapters.base import Availability

    class MissingToolAdapterForTests(LogAdapter):
        name = "missingtool"

        def availability(self):
            return Availability(False, reason="mytool not found", fix="install mytool")

    with pytest.raises(pytest.skip.Exception, match="mytool not found.*install mytool"):
        check_adapter(MissingToolAdapterForTests(), tmp_path)


# ---------------------------------------------------------------- command line
def test_adapters_command_lists_a_third_party_plugin(example_plugin, capsys):
    from lipobench.cli import main

    assert main(["adapters"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "PACKAGE", "VERSION", "STATUS"]
    row = next(line.split() for line in lines if line.startswith("threshold"))
    assert row == ["threshold", "mask", "lipobench-example-plugin", "0.1.0", "ok"]


def test_broken_plugin_is_one_line_exit_2_through_the_cli(site, capsys):
    from lipobench.cli import main

    (site / "broken_cli_plugin.py").write_text("import does_not_exist_anywhere\n")
    _fake_distribution(site, name="broken-cli-plugin", module="broken_cli_plugin",
                       entry_points="[lipobench]\nbroken_cli = broken_cli_plugin\n")
    with pytest.raises(SystemExit) as excinfo:
        main(["adapters"])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("lipobench: error: the lipobench plugin 'broken_cli' from package "
                          "'broken-cli-plugin' failed to load")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_doctor_reports_torch_and_cuda(monkeypatch, capsys):
    import torch

    from lipobench.cli import main

    assert main(["doctor", "log"]) == 0
    real = capsys.readouterr().out.splitlines()[-1]
    assert real.startswith(f"torch {torch.__version__}: ")
    assert ("CUDA available" in real) == torch.cuda.is_available()
    # No GPU here: stand in for one to check the other branch of the report.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "FakeGPUForTests")
    assert main(["doctor", "log"]) == 0
    assert "CUDA available (FakeGPUForTests)" in capsys.readouterr().out


def test_the_adapter_of_writing_an_adapter_md_is_one_class_and_its_schemas():
    import re
    from pathlib import Path

    from lipobench.adapters.base import Stage
    from lipobench.experiment import check_experiment, parse_experiment
    from lipobench.registry import AdapterRegistry

    doc = Path(__file__).resolve().parents[1] / "docs" / "writing-an-adapter.md"
    first_block = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)[0]
    namespace: dict = {}
    exec(compile(first_block, str(doc), "exec"), namespace)  # noqa: S102 - our own doc
    adapter_cls = namespace["MyToolAdapter"]
    assert {k: (p.stage, p.grid) for k, p in adapter_cls.parameters.items()} == {
        "epochs": (Stage.TRAIN, (10, 50)), "radius": (Stage.PREDICT, (20.0,)),
        "min_score": (Stage.SELECT, (0.0, 0.5))}
    registry = AdapterRegistry()
    registry.register(adapter_cls, package="doc")
    with pytest.raises(UserError, match=r"methods.mytool.epochs: 0: Input should be greater"):
        check_experiment(parse_experiment({"dataset": {"path": "d"},
                                           "methods": {"mytool": {"epochs": 0}}}), registry)
