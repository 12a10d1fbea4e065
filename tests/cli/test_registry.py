"""The registries: lazy name -> "module:Class" entries, checked classes, suggestions, entry-point plugins."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from molebench.errors import InputError
from molebench.registry import BENCHMARKS, DETECTORS, MODELS, SCORERS, PluginError, Registry


def _python(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (extra_path, REPO_ROOT) if p)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=120)


def test_names_import_nothing_and_get_imports_only_what_is_asked():
    result = _python("""
        import sys
        from molebench.registry import BENCHMARKS, MODELS, SCORERS
        assert "tiny-sd15" in MODELS.names() and "hps-v2.1" in SCORERS.names(), "names"
        assert not [m for m in sys.modules if m.startswith(("molebench.models.", "molebench.scoring."))], "imported"
        BENCHMARKS.get("tiny-human")
        assert "molebench.benchmarks.tiny" in sys.modules and "molebench.benchmarks.human" not in sys.modules
        assert "torch" not in sys.modules
        print("ok")
    """)
    assert result.stdout.strip() == "ok", result.stderr


def test_unknown_names_get_suggestions():
    with pytest.raises(InputError, match=r"unknown scorer 'hps-v21'; did you mean hps-v2\.1"):
        SCORERS.get("hps-v21")
    with pytest.raises(InputError, match="unknown model 'SD15'; did you mean sd15"):
        MODELS.check("SD15")
    assert MODELS.suggest("tiny-mole") == ["tiny-mole-sd15"] or "tiny-mole-sd15" in MODELS.suggest("tiny-mole")


def test_a_failing_plugin_leaves_the_registry_whole(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('plugin is broken on purpose')\n")
    (tmp_path / "not_a_benchmark.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("benchmark", "molebench.benchmarks.base:Benchmark",
                        {"tiny-human": "molebench.benchmarks.tiny:TinyHuman", "broken": "broken_plugin:Bench",
                         "thing": "not_a_benchmark:Thing", "absent": "not_a_benchmark:Missing"})
    for _ in range(2):  # the second lookup fails the same way: nothing was half-registered
        with pytest.raises(PluginError, match="benchmark 'broken'.*importing module broken_plugin failed: "
                                              "RuntimeError: plugin is broken on purpose"):
            registry.get("broken")
    with pytest.raises(PluginError, match=r"not_a_benchmark:Thing\) is not a subclass of .*Benchmark"):
        registry.get("thing")
    with pytest.raises(PluginError, match="module not_a_benchmark has no 'Missing'"):
        registry.get("absent")
    assert registry.get("tiny-human")().load().name == "tiny-human"
    assert registry.names() == ["absent", "broken", "thing", "tiny-human"]


def test_every_registered_class_of_the_package_is_in_the_table():
    """A class with `@register_*` in molebench must be listed in molebench.registry (else it could not be found
    without importing its module); every listed entry imports and is the class that declares the name."""
    tables = {"register_model": MODELS, "register_scorer": SCORERS, "register_benchmark": BENCHMARKS,
              "register_detector": DETECTORS}
    declared = {}
    for path in sorted((REPO_ROOT / "molebench").rglob("*.py")):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            for decorator in getattr(node, "decorator_list", []):
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") in tables:
                    name = decorator.args[0].value
                    declared[(decorator.func.id, name)] = f"{module}:{node.name}"
    for (kind, name), target in declared.items():
        assert tables[kind]._builtins.get(name) == target, (kind, name, target)
    listed = {(kind, name) for kind, registry in tables.items() for name in registry._builtins}
    assert listed == set(declared)
    for registry in tables.values():
        for name, cls in registry.items():
            assert cls.registry_name == name


def test_entry_point_plugin_is_found_listed_and_loaded(tmp_path):
    """A tiny installed package: its module and a dist-info whose entry_points.txt registers a benchmark."""
    (tmp_path / "molebench_plugin_demo.py").write_text(textwrap.dedent("""
        from molebench.benchmarks.base import Benchmark, PromptItem, PromptSet

        class WavingHands(Benchmark):
            description = "two prompts from an installed plugin"

            def load(self):
                items = (PromptItem("w-0", "a person waving"), PromptItem("w-1", "two hands clapping"))
                return PromptSet(self.registry_name, items)
    """))
    dist = tmp_path / "molebench_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: molebench-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[molebench.benchmarks]\nwaving-hands = molebench_plugin_demo:WavingHands\n")
    result = _python("""
        from molebench.cli import main
        from molebench.registry import BENCHMARKS
        assert "molebench-plugin-demo" in BENCHMARKS.origin("waving-hands")
        prompts = BENCHMARKS.get("waving-hands")().load()
        assert prompts.name == "waving-hands" and len(prompts) == 2
        main(["benchmarks"])
    """, extra_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "waving-hands" in result.stdout and "two prompts from an installed plugin" in result.stdout
