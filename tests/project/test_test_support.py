"""The test oracles (molebench_testing) stay out of the wheel and out of molebench's imports; the bench, which uses
them, says so when they are absent instead of failing with a traceback."""

from __future__ import annotations

import ast
import sys
import zipfile

from conftest import REPO_ROOT
from test_wheel_install import build_wheel


def test_wheel_holds_molebench_and_not_the_test_oracles(tmp_path):
    wheel = build_wheel(tmp_path, ("molebench", "molebench_testing"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "molebench/scoring/hps.py" in names and "molebench/perf/oracles.py" in names
    assert {name.split("/")[0] for name in names} == {"molebench", "molebench-0.1.0.dist-info"}, names


def test_only_the_bench_reaches_the_test_support_package():
    mentions = []
    for path in sorted((REPO_ROOT / "molebench").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("molebench_testing") for a in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("molebench_testing"), path
        if "molebench_testing" in text:
            mentions.append(path.relative_to(REPO_ROOT).as_posix())
    # by name (importlib), in one place, with the error below; the scorers section names it in its docstring
    assert mentions == ["molebench/perf/oracles.py", "molebench/perf/scorers.py"]


def test_bench_section_without_test_support_fails_with_a_clear_message(monkeypatch, capsys):
    from molebench.perf.__main__ import main

    monkeypatch.setitem(sys.modules, "molebench_testing", None)  # as in a wheel install: the package is absent
    monkeypatch.setitem(sys.modules, "molebench_testing.reference", None)
    assert main(["scorers"]) == 1
    error = " ".join(capsys.readouterr().err.split())
    assert "error: bench section 'scorers' compares with the reference scorers of molebench_testing" in error
    assert "it is not in the wheel" in error and "from the repository root" in error
