"""The adapter registry: which localization methods exist, and which package provides each.

Plugins fill it through the ``lipobench_register_adapters`` hook (see :mod:`lipobench.plugins`);
the rest of lipobench asks it for adapters by name.

>>> from lipobench.adapters.log import LogAdapter
>>> registry = AdapterRegistry()
>>> registry.register(LogAdapter)
>>> registry.names()
['log']
>>> registry.get("log").region_kind.value
'circle'
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lipobench.adapters.base import Adapter, Parameter
from lipobench.errors import UserError
from lipobench.regions import RegionKind

__all__ = ["AdapterEntry", "AdapterRegistry", "UnknownAdapterError"]


class UnknownAdapterError(UserError):
    """A method name that no installed plugin provides."""


@dataclass(frozen=True)
class AdapterEntry:
    """One registered adapter: its name, class and the package that provides it.

    ``extra_abbreviations`` are legend abbreviations given at registration for parameters
    whose schema field declares none (see :attr:`abbreviations`).
    """

    name: str
    adapter_cls: type[Adapter]
    package: str
    package_version: str | None
    extra_abbreviations: Mapping[str, str] = field(default_factory=dict)

    @property
    def abbreviations(self) -> dict[str, str]:
        """Parameter name -> its short name in legends, for the parameters that have one.

        What each parameter declares (:attr:`~lipobench.adapters.base.Parameter.abbreviation`),
        else what the registering plugin gave.

        >>> from lipobench.adapters.log import LogAdapter
        >>> AdapterEntry("log", LogAdapter, "lipobench", None).abbreviations["min_sigma"]
        'σmin'
        """
        found = {k: v for k, v in self.extra_abbreviations.items()
                 if k in self.adapter_cls.parameters}
        found.update({k: p.abbreviation for k, p in self.adapter_cls.parameters.items()
                      if p.abbreviation})
        return found


def _validate(adapter_cls: Any) -> None:
    module = getattr(adapter_cls, "__module__", "?")
    where = f"{module}.{getattr(adapter_cls, '__qualname__', '?')}"
    if not (isinstance(adapter_cls, type) and issubclass(adapter_cls, Adapter)):
        raise UserError(
            f"{where}: register an Adapter subclass (the class itself, not an instance); "
            "subclass lipobench.adapters.base.Adapter"
        )
    name = getattr(adapter_cls, "name", None)
    if not (isinstance(name, str) and name.replace("_", "").replace("-", "").isalnum()):
        raise UserError(
            f"{where}: set the class attribute name to a non-empty word such as 'mytool' "
            f"(got {name!r})"
        )
    if not isinstance(getattr(adapter_cls, "region_kind", None), RegionKind):
        raise UserError(f"{where}: set the class attribute region_kind to a RegionKind member")
    parameters = getattr(adapter_cls, "parameters", None)
    if not isinstance(parameters, Mapping) or not all(
        isinstance(key, str) and isinstance(value, Parameter) and len(value.grid) > 0
        for key, value in parameters.items()
    ):
        raise UserError(
            f"{where}: set the class attribute parameters to a mapping of names to "
            "Parameter(stage, grid) with a non-empty grid"
        )
    if inspect.isabstract(adapter_cls):
        missing = ", ".join(sorted(adapter_cls.__abstractmethods__))
        raise UserError(f"{where}: implement the abstract methods {missing}")


class AdapterRegistry:
    """Adapter classes by name, each with the distribution that provides it."""

    def __init__(self) -> None:
        self._entries: dict[str, AdapterEntry] = {}
        self._module_to_dists: Mapping[str, list[str]] | None = None

    def _package_of(self, adapter_cls: type) -> str:
        module = adapter_cls.__module__
        if self._module_to_dists is None:
            # Scanning every installed distribution costs tens of milliseconds: do it once.
            self._module_to_dists = importlib.metadata.packages_distributions()
        dists = self._module_to_dists.get(module.split(".")[0], [])
        return dists[0] if dists else module

    def register(self, adapter_cls: type[Adapter], *, package: str | None = None,
                 abbreviations: Mapping[str, str] | None = None) -> None:
        """Add ``adapter_cls`` under its ``name``; ``package`` defaults to its distribution.

        ``abbreviations`` (parameter name -> short name in legends) serve parameters whose
        schema field declares no ``abbreviation`` (a class the plugin cannot edit). A second
        adapter with the same name is refused with a message naming both packages.
        """
        _validate(adapter_cls)
        extra = dict(abbreviations or {})
        where = f"{adapter_cls.__module__}.{adapter_cls.__qualname__}"
        for key, short in extra.items():
            if key not in adapter_cls.parameters:
                known = ", ".join(sorted(adapter_cls.parameters))
                raise UserError(f"{where}: an abbreviation for {key!r}, which is not one of its "
                                f"parameters ({known}); abbreviate its own parameters only")
            if not (isinstance(short, str) and short):
                raise UserError(f"{where}: the abbreviation of {key!r} must be a non-empty "
                                f"string (got {short!r})")
        package = package or self._package_of(adapter_cls)
        existing = self._entries.get(adapter_cls.name)
        if existing is not None:
            if existing.adapter_cls is adapter_cls:
                return
            raise UserError(
                f"two plugins register an adapter named {adapter_cls.name!r}: package "
                f"{existing.package!r} ({existing.adapter_cls.__module__}) and package {package!r} "
                f"({adapter_cls.__module__}); uninstall one of them or rename its adapter"
            )
        try:
            version = importlib.metadata.version(package)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            version = None
        self._entries[adapter_cls.name] = AdapterEntry(adapter_cls.name, adapter_cls, package,
                                                       version, extra)

    def names(self) -> list[str]:
        """Registered adapter names, sorted."""
        return sorted(self._entries)

    def entries(self) -> list[AdapterEntry]:
        """Every registered adapter, sorted by name."""
        return [self._entries[name] for name in self.names()]

    def entry(self, name: str) -> AdapterEntry:
        """The entry for ``name``; an unknown name raises a UserError listing the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none (is lipobench installed?)"
            raise UnknownAdapterError(
                f"unknown method {name!r}; installed adapters: {known} "
                "(run `lipobench adapters` to list them)"
            ) from None

    def get(self, name: str, **options: Any) -> Adapter:
        """A new instance of adapter ``name``, built with ``options`` (a ``[tools.NAME]`` table).

        Options the adapter's constructor does not accept are refused with their key.
        """
        adapter_cls = self.entry(name).adapter_cls
        if options:
            accepted = inspect.signature(adapter_cls).parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
            unknown = sorted(set(options) - set(accepted))
            if unknown and not takes_any:
                allowed = ", ".join(k for k in accepted if k not in ("self", "args")) or "none"
                raise UserError(
                    f"unknown option {unknown[0]!r} for adapter {name!r} ([tools.{name}]); "
                    f"allowed options: {allowed}"
                )
        return adapter_cls(**options)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
