"""Plugin discovery: a pluggy PluginManager for the ``lipobench`` entry-point group.

Built just like pytest's: the hook specifications come from :mod:`lipobench.hookspecs`, the
built-in adapters are one plugin among others (:mod:`lipobench.adapters.builtin`, registered
under the name ``builtin``), and installed packages add theirs through the entry-point group
``lipobench``. Set ``LIPOBENCH_DISABLE_PLUGINS=1`` to load only the built-ins (tox and pytest
offer the same switch for a broken third-party plugin).

Nothing is built at import time; call :func:`get_plugin_manager` or :func:`load_registry`.

>>> registry = load_registry(disable_plugins=True)
>>> "log" in registry.names()
True
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os

import pluggy

from lipobench import hookspecs
from lipobench.errors import UserError
from lipobench.registry import AdapterRegistry

__all__ = ["ENTRY_POINT_GROUP", "DISABLE_ENV", "get_plugin_manager", "load_registry",
           "plugins_disabled"]

ENTRY_POINT_GROUP = "lipobench"
DISABLE_ENV = "LIPOBENCH_DISABLE_PLUGINS"
BUILTIN_PLUGIN = "builtin"


def plugins_disabled() -> bool:
    """True when ``LIPOBENCH_DISABLE_PLUGINS`` is set to anything but empty, 0, false or no."""
    value = os.environ.get(DISABLE_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no")


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    # pluggy's load_setuptools_entrypoints does the same walk, but a plugin that fails to import
    # would surface as a bare traceback; here the message names the distribution and the way out.
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            dist_name = dist.metadata["Name"] or "?"
            try:
                plugin = ep.load()
            except Exception as exc:
                raise UserError(
                    f"the lipobench plugin {ep.name!r} from package {dist_name!r} failed to load "
                    f"({type(exc).__name__}: {exc}); reinstall or uninstall {dist_name}, or set "
                    f"{DISABLE_ENV}=1 to skip third-party plugins"
                ) from exc
            pm.register(plugin, name=ep.name)


def get_plugin_manager(*, disable_plugins: bool | None = None) -> pluggy.PluginManager:
    """A new PluginManager holding the built-in plugin and, unless disabled, installed ones.

    Parameters
    ----------
    disable_plugins : bool or None
        True loads only the built-in adapters; None (the default) reads
        ``LIPOBENCH_DISABLE_PLUGINS``.

    Examples
    --------
    >>> pm = get_plugin_manager(disable_plugins=True)
    >>> pm.has_plugin("builtin")
    True
    """
    if disable_plugins is None:
        disable_plugins = plugins_disabled()
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    # Registered first and under its entry-point name, so the entry point that pyproject also
    # declares for it is recognised as already loaded and never registers it twice.
    pm.register(importlib.import_module("lipobench.adapters.builtin"), name=BUILTIN_PLUGIN)
    if not disable_plugins:
        _load_entry_points(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise UserError(
            f"a lipobench plugin implements an unknown hook ({exc}); hooks are named in "
            f"lipobench.hookspecs; update the plugin or set {DISABLE_ENV}=1"
        ) from exc
    return pm


def load_registry(*, disable_plugins: bool | None = None,
                  plugin_manager: pluggy.PluginManager | None = None) -> AdapterRegistry:
    """An :class:`~lipobench.registry.AdapterRegistry` filled by every loaded plugin.

    ``plugin_manager`` (one from :func:`get_plugin_manager`, whose other hooks the caller
    also calls) saves building a second one.
    """
    registry = AdapterRegistry()
    if plugin_manager is None:
        plugin_manager = get_plugin_manager(disable_plugins=disable_plugins)
    plugin_manager.hook.lipobench_register_adapters(registry=registry)
    return registry
