"""Every `from molebench.x import name` names something module x defines, checked statically.

Why: most imports of torch-backed parts are deferred into the function that needs them (so `import molebench`
stays light), and a deferred import of a name that moved fails only when that function runs. The replica builder
and the full-size bench once imported `AestheticHead` from the module it had left; only `make check-fullsize`
(not part of `make test`) found it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "molebench"


def _module_path(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def defined_names(path: Path) -> set[str]:
    """Names bound at a module's top level (definitions, assignments, imports) and in its `if`/`try` blocks, except
    under `if TYPE_CHECKING:`."""
    names: set[str] = set()
    body = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            body.extend(node.orelse)  # names imported for annotations only do not exist at run time
        elif isinstance(node, (ast.If, ast.Try)):
            body.extend(node.body + node.orelse + getattr(node, "finalbody", [])
                        + [stmt for handler in getattr(node, "handlers", []) for stmt in handler.body])
    return names


def _shown(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else path.name


def missing_imports(paths: list[Path]) -> list[str]:
    """`file: from module import name` for each imported name that is neither defined in the module nor a submodule."""
    missing = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("molebench"):
                continue
            source = _module_path(node.module)
            if source is None:
                missing.append(f"{_shown(path)}: no module {node.module}")
                continue
            defined = defined_names(source)
            for alias in node.names:
                if alias.name != "*" and alias.name not in defined and _module_path(f"{node.module}.{alias.name}") is None:
                    missing.append(f"{_shown(path)}: from {node.module} import {alias.name}")
    return missing


def test_every_name_imported_from_molebench_exists():
    assert missing_imports(sorted(PACKAGE.rglob("*.py"))) == []


def test_the_check_finds_a_moved_name(tmp_path):
    stale = tmp_path / "stale.py"
    stale.write_text("def build():\n    from molebench.scoring.aesthetic import AestheticHead\n", encoding="utf-8")
    assert missing_imports([stale]) == ["stale.py: from molebench.scoring.aesthetic import AestheticHead"]
    stale.write_text("from molebench.scoring.aesthetic_head import AestheticHead\n"
                     "from molebench.scoring import aesthetic\nfrom molebench.no_such import x\n", encoding="utf-8")
    assert missing_imports([stale]) == ["stale.py: no module molebench.no_such"]
