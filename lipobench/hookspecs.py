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

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from lipobench.registry import AdapterRegistry

__all__ = ["PROJECT_NAME", "hookspec", "hookimpl", "lipobench_register_adapters"]

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
