"""The hooks a lipobench plugin may implement (pluggy, project name ``lipobench``).

A plugin is any module or object with functions marked by :data:`hookimpl`. Installed packages
announce theirs under the entry-point group ``lipobench``; lipobench's own adapters arrive the
same way, through :mod:`lipobench.adapters.builtin`.

>>> from lipobench.hookspecs import hookimpl
>>> class MyPlugin:
...     @hookimpl
...     def lipobench_register_adapters(self, registry):
...         pass
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lipobench.registry import AdapterRegistry

__all__ = ["PROJECT_NAME", "hookspec", "hookimpl", "lipobench_register_adapters",
           "lipobench_figures"]

PROJECT_NAME = "lipobench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def lipobench_register_adapters(registry: AdapterRegistry) -> None:
    """Register adapter classes with ``registry.register(AdapterClass)``.

    Parameters
    ----------
    registry : lipobench.registry.AdapterRegistry
        The registry being filled. Register classes, not instances; importing the module that
        defines them must stay cheap (import the wrapped tool inside the adapter's methods).
    """


@hookspec
def lipobench_figures(folder: Any) -> Mapping[str, Figure] | None:
    """Figures of a results folder beyond the built-in ones, by file stem.

    ``lipobench plot`` and ``lipobench run`` save each as ``<stem>.png`` and/or ``.svg`` next
    to the built-in figures. Return None (or nothing) when the folder holds nothing to draw.
    LipoPose's Fig. 8 is drawn this way (:mod:`lipobench.adapters.lipopose_report`).

    Parameters
    ----------
    folder : lipobench.report.folder.ResultsFolder
        (Typed ``Any`` here: the report imports the plugins, not the other way round.)
        The results folder: its table, ``summary``, ``parameters`` (long form), ``labels``
        (one legend label per configuration), ``colors`` (one colour per method: use them,
        so a method looks the same in every figure) and ``registry``.
    """
