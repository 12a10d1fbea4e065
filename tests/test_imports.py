"""Layering rules, checked statically on the source (no imports run):

- no import cycle among molebench modules. Every `import` / `from ... import` statement counts, at module level and
  inside functions alike: a deferred import hides a cycle from Python's loader but not from the reader. An edge goes
  to the module named (`from molebench.benchmarks import coco` -> molebench.benchmarks.coco when that is a module,
  else to the package); the implicit import of parent packages is not an edge, nor are the registry's
  "module:Class" strings (imported by name on demand, see molebench.registry);
- nothing under molebench/ imports from tests/ or reaches into the tests folder.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "molebench"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported_names(module: str, path: Path, modules: set[str]) -> set[str]:
    """What `module` imports, anywhere in the file: `import X.Y` gives X.Y; `from X import Y` gives X.Y when that
    is a module, else X. Names outside the package are kept as written (their top-level name is what matters)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: {name for name in _imported_names(module, path, set(modules)) if name in modules} - {module}
            for module, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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


def test_no_import_cycle_among_molebench_modules():
    graph = _graph()
    assert "molebench.benchmarks.coco" in graph["molebench.benchmarks.builder"]  # the analysis sees deferred imports
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_never_reaches_into_tests():
    test_modules = {p.stem for p in (REPO_ROOT / "tests").glob("*.py")}
    modules = _modules()
    for module, path in modules.items():
        imported = {name.split(".")[0] for name in _imported_names(module, path, set(modules))}
        assert not imported & (test_modules | {"tests"}), (module, imported & test_modules)
        assert '"tests"' not in path.read_text(encoding="utf-8"), module
