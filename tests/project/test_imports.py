"""Layering rules, checked statically on the source (no imports run):

- no import cycle among molebench modules. Every `import` / `from ... import` statement counts, at module level and
  inside functions alike: a deferred import hides a cycle from Python's loader but not from the reader. An edge goes
  to the module named (`from molebench.benchmarks import coco` -> molebench.benchmarks.coco when that is a module,
  else to the package); the implicit import of parent packages is not an edge, nor are the registry's
  "module:Class" strings (imported by name on demand, see molebench.registry);
- nothing under molebench/ imports from tests/ or reaches into the tests folder;
- layers: `molebench.models` (text-to-image systems) and `molebench.scoring` (metrics) are siblings and neither
  imports the other; what both need (dtypes, weights lookup and status, hashing, fetch commands, materialised tiny
  assets, the offline CLIP tokenizer) lives below them in `molebench.assets`, which imports only the base modules
  (`errors`, `atomic`, `paths`). A scorer that needed a model's helper would otherwise load the model layer (and
  change with it).
- layers, bottom to top (LEVELS): the ground modules (errors, atomic, paths, faults, ui, parts, registry, stats),
  assets, then benchmarks / models / scoring (siblings), store, runner, study, report, and the entry points (cli,
  api, perf). A module imports only from lower levels and its own package: the runner never reads the report layer
  (nor the report the runner), scoring never touches the run store, and the ground imports nothing above it.
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


# package -> packages (and modules) it must never import, directly or in a function
FORBIDDEN = {
    "molebench.scoring": ("molebench.models",),
    "molebench.models": ("molebench.scoring",),
    "molebench.report": ("molebench.runner",),  # reports read run folders through molebench.store only
    "molebench.study": ("molebench.runner",),
}
# package -> the only molebench modules it may import besides its own
ONLY = {"molebench.assets": ("molebench.errors", "molebench.atomic", "molebench.paths")}


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _layer_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    found = []
    for module, targets in graph.items():
        for package, banned in FORBIDDEN.items():
            if _inside(module, package):
                found += [(module, t) for t in targets if any(_inside(t, b) for b in banned)]
        for package, allowed in ONLY.items():
            if _inside(module, package):
                found += [(module, t) for t in targets
                          if not _inside(t, package) and t != "molebench" and not any(_inside(t, a) for a in allowed)]
    return sorted(found)


def test_models_and_scoring_share_infrastructure_only_through_assets():
    graph = _graph()
    assert "molebench.assets.weights" in graph["molebench.scoring.hps"]  # the rule sees the real edges
    assert _layer_violations(graph) == []


def test_the_layer_check_finds_a_violation():
    graph = {"molebench.scoring.x": {"molebench.models.base"}, "molebench.assets.y": {"molebench.registry"},
             "molebench.assets.z": {"molebench.errors", "molebench.assets.y"}}
    assert _layer_violations(graph) == [("molebench.assets.y", "molebench.registry"),
                                        ("molebench.scoring.x", "molebench.models.base")]


GROUND = ("molebench", "molebench.errors", "molebench.atomic", "molebench.paths", "molebench.faults", "molebench.ui",
          "molebench.parts", "molebench.registry", "molebench.stats", "molebench.weight_sizes")
LEVELS = {**{name: 0 for name in GROUND}, "molebench.assets": 1, "molebench.benchmarks": 2, "molebench.models": 2,
          "molebench.scoring": 2, "molebench.store": 3, "molebench.runner": 4, "molebench.study": 5,
          "molebench.report": 6, "molebench.api": 7, "molebench.cli": 8, "molebench.replicas": 8, "molebench.perf": 9,
          "molebench.__main__": 10}


def _unit(module: str) -> str:
    """The layer unit of a module: a ground module itself, else its top-level package under molebench."""
    if module in GROUND:
        return module
    return ".".join(module.split(".")[:2])


def _upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Edges that go up or sideways between layer units (a unit missing from LEVELS is an error of its own)."""
    found = []
    for module, targets in graph.items():
        source = _unit(module)
        for target in targets:
            unit = _unit(target)
            if unit == source or (source in GROUND and unit in GROUND):
                continue
            if LEVELS[unit] >= LEVELS[source]:
                found.append((module, target))
    return sorted(found)


def test_every_package_has_a_layer():
    assert sorted({_unit(m) for m in _graph()} - set(LEVELS)) == []


def test_no_module_imports_from_its_own_layer_or_above():
    graph = _graph()
    assert "molebench.store.summary" in graph["molebench.runner.lifecycle"]  # the rule sees the real edges
    assert _upward_imports(graph) == []


def test_the_layer_rule_finds_upward_and_sideways_imports():
    graph = {"molebench.runner.protocol": {"molebench.report.stats", "molebench.store.summary"},
             "molebench.report.compare": {"molebench.runner.protocol", "molebench.stats"},
             "molebench.scoring.sets": {"molebench.store.run_store", "molebench.errors"},
             "molebench.errors": {"molebench.assets.fetch"}, "molebench.registry": {"molebench.errors"},
             "molebench.models.base": {"molebench.scoring.base"}, "molebench.store.x": {"molebench.store.y"}}
    assert _upward_imports(graph) == [("molebench.errors", "molebench.assets.fetch"),
                                      ("molebench.models.base", "molebench.scoring.base"),
                                      ("molebench.runner.protocol", "molebench.report.stats"),
                                      ("molebench.scoring.sets", "molebench.store.run_store")]
    # the report sits above the runner but reads runs only through the store
    assert ("molebench.report.compare", "molebench.runner.protocol") in _layer_violations(graph)


def test_the_package_never_reaches_into_tests():
    test_modules = {p.stem for p in (REPO_ROOT / "tests").rglob("*.py")}
    modules = _modules()
    for module, path in modules.items():
        imported = {name.split(".")[0] for name in _imported_names(module, path, set(modules))}
        assert not imported & (test_modules | {"tests"}), (module, imported & test_modules)
        assert '"tests"' not in path.read_text(encoding="utf-8"), module


def test_the_tests_have_one_conftest():
    """Test modules import helpers with `from conftest import ...`; a second conftest.py in a layer folder would
    shadow tests/conftest.py for every module collected after it (fixtures shared by a layer go there too)."""
    assert sorted((REPO_ROOT / "tests").rglob("conftest.py")) == [REPO_ROOT / "tests" / "conftest.py"]
