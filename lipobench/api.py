"""The stable import surface for plugin authors: everything a third-party adapter needs.

A lipobench plugin imports from here only::

    from lipobench.api import Adapter, Availability, RegionKind, RegionSet, Stage, hookimpl

The names in :data:`__all__` keep their meaning across lipobench releases; the modules they
come from (:mod:`lipobench.adapters.base`, :mod:`lipobench.regions`, ...) may be reorganised
without notice, so a plugin that reaches into them directly may break. Adding a name here is a
promise, so the surface is kept small:

* the contract: :class:`Adapter`, :class:`Stage`, :class:`Parameter`, :data:`ModelRef`,
  :class:`Availability`, :func:`validate_parameters`, :func:`schema_parameters`,
  :func:`keep_scores_at_least` (SELECT's one score comparison),
  :func:`keep_diameters_within` (the mask methods' size filter);
* the hook: the :data:`hookimpl` marker and the :class:`AdapterRegistry` it receives;
* the data: :class:`Micrograph`, :class:`RegionSet`, :class:`RegionKind`;
* the errors: :class:`UserError` (the user can fix it), :class:`InvalidRegionsError`,
  :class:`ToolUnavailableError`, :class:`ToolFailedError`, and :func:`raise_if_interrupted`
  to call between images;
* driving a tool: :func:`run_tool`, :func:`user_tool_config`, :func:`atomic_path`,
  :func:`atomic_dir`, :class:`ToolEnvironment`, :func:`installed_bin_dir`;
* testing: :func:`check_adapter`, :class:`AdapterConformance` and
  :func:`make_test_micrographs` (the conformance suite). These need pytest and are imported
  on first use, so a plugin that imports this module at run time never pulls pytest in.

Importing this module is cheap: it imports neither torch nor any wrapped tool.

>>> from lipobench.api import Adapter, RegionKind, Stage
>>> RegionKind.CIRCLE.value, Stage.SELECT.value
('circle', 'select')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lipobench.adapters.base import (
    Adapter,
    Availability,
    ModelRef,
    Parameter,
    Stage,
    keep_diameters_within,
    keep_scores_at_least,
    schema_parameters,
    validate_parameters,
)
from lipobench.errors import (
    InvalidRegionsError,
    ToolFailedError,
    ToolUnavailableError,
    UserError,
    raise_if_interrupted,
)
from lipobench.fsutil import atomic_dir, atomic_path
from lipobench.hookspecs import hookimpl
from lipobench.micrograph import Micrograph
from lipobench.regions import RegionKind, RegionSet
from lipobench.registry import AdapterRegistry
from lipobench.toolenv import ToolEnvironment, installed_bin_dir
from lipobench.toolrun import run_tool, user_tool_config

if TYPE_CHECKING:
    from lipobench.testing import AdapterConformance, check_adapter, make_test_micrographs

__all__ = [
    # the adapter contract
    "Adapter",
    "Availability",
    "ModelRef",
    "Parameter",
    "Stage",
    "keep_diameters_within",
    "keep_scores_at_least",
    "schema_parameters",
    "validate_parameters",
    # the hook
    "AdapterRegistry",
    "hookimpl",
    # the data
    "Micrograph",
    "RegionKind",
    "RegionSet",
    # errors
    "InvalidRegionsError",
    "ToolFailedError",
    "ToolUnavailableError",
    "UserError",
    "raise_if_interrupted",
    # driving a tool
    "ToolEnvironment",
    "atomic_dir",
    "atomic_path",
    "installed_bin_dir",
    "run_tool",
    "user_tool_config",
    # testing (imported on first use: they need pytest)
    "AdapterConformance",
    "check_adapter",
    "make_test_micrographs",
]

#: Names served from :mod:`lipobench.testing` on first access (PEP 562).
_LAZY = {
    "AdapterConformance": "lipobench.testing",
    "check_adapter": "lipobench.testing",
    "make_test_micrographs": "lipobench.testing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
