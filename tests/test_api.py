"""lipobench.api, the one import surface for plugin authors: complete, cheap, and stable."""

from __future__ import annotations

from pathlib import Path

import pytest

import lipobench.api as api

HEAVY = ("torch", "torchvision", "cellpose", "topaz", "pytest")


def test_importing_the_api_pulls_in_no_heavy_library_nor_pytest(imported_by):
    assert imported_by("lipobench.api", HEAVY) == []


def test_every_name_in_all_resolves():
    assert len(set(api.__all__)) == len(api.__all__)
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(api.__all__) <= set(dir(api))


def test_the_api_names_the_objects_plugins_use():
    from lipobench.adapters.base import Adapter
    from lipobench.hookspecs import hookimpl
    from lipobench.regions import RegionSet
    from lipobench.testing import check_adapter

    assert api.Adapter is Adapter and api.hookimpl is hookimpl and api.RegionSet is RegionSet
    assert api.check_adapter is check_adapter  # served lazily, the same function


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        api.no_such_name  # noqa: B018


def test_the_example_plugin_imports_from_the_api_only():
    source = Path(__file__).parent / "example_plugin" / "lipobench_example_plugin" / "__init__.py"
    imports = [line.split()[1] for line in source.read_text().splitlines()
               if line.startswith(("from lipobench", "import lipobench"))]
    assert imports == ["lipobench.api"]
