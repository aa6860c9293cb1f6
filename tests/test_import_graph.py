"""lipobench's modules import each other one way: no cycle, deferred imports included.

A cycle hidden in a function-level import still ties two rooms together (each needs the other
to work), so every ``import`` statement counts, wherever it stands.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import lipobench


def _modules() -> dict[str, Path]:
    """Every module of the installed lipobench (adapters and metrics included) and its file."""
    modules = {"lipobench": Path(lipobench.__file__)}
    # adapters/ and metrics/ are top-level folders of the repository installed under the
    # lipobench namespace, so walking lipobench's own folder does not reach them.
    roots = [lipobench]
    for name in ("lipobench.adapters", "lipobench.metrics"):
        roots.append(importlib.import_module(name))
        modules[name] = Path(roots[-1].__file__)
    for root in roots:
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}."):
            spec = importlib.util.find_spec(info.name)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                modules[info.name] = Path(spec.origin)
    return modules


def _imports(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """The lipobench modules ``module`` imports; ``from pkg import sub`` names ``pkg.sub``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules and name != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_deferred_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_lipobench():
    modules = _modules()
    assert {"lipobench.run.orchestrate", "lipobench.run.executors", "lipobench.adapters.cellpose",
            "lipobench.metrics.matching", "lipobench.cli.run"} <= set(modules)
    graph = {name: _imports(path, name, modules) for name, path in modules.items()}
    assert "lipobench.run.executors" in graph["lipobench.run.orchestrate"]  # sees imports,
    assert "lipobench.shipped" in graph["lipobench.adapters.cellpose"]  # deferred ones too
    assert _cycles(graph) == []


def test_every_package_is_listed_for_installation():
    # pyproject lists packages by name: one left out is missing from a wheel, not from a
    # checkout, so nothing else would notice.
    import tomllib

    root = Path(__file__).resolve().parents[1]
    with open(root / "pyproject.toml", "rb") as handle:
        listed = set(tomllib.load(handle)["tool"]["setuptools"]["packages"])
    packages = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert packages <= listed, sorted(packages - listed)


#: A module longer than this says in its docstring why it stays one module.
LONG_MODULE_LINES = 450


def test_a_long_module_says_why_it_is_one_module():
    long_without_reason = []
    for name, path in sorted(_modules().items()):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LONG_MODULE_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "Why one module of this length:" not in doc:
            long_without_reason.append(f"{name} ({text.count(chr(10))} lines)")
    assert not long_without_reason, long_without_reason
