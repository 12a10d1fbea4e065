"""LaTeX that compiles (issue 27, group E): the `compare --format latex` and `--overview` output is checked with a
strict reader of the subset molebench writes — only characters pdflatex sets without extra packages, balanced
braces, environments and math, every tabular row with its columns — instead of a TeX installation in the tests."""

from __future__ import annotations

import re

import numpy as np
import pytest

from molebench.cli import main
from molebench.store import RunStore
from report_runs import make_run

RNG = np.random.default_rng(9)


def strict_check(source: str) -> None:
    """Raise AssertionError at the first construct pdflatex (article + booktabs + graphicx) would reject."""
    body = [re.sub(r"(?<!\\)%.*", "", line) for line in source.splitlines()]  # comments dropped
    stack, columns = [], []
    for number, line in enumerate(body, start=1):
        bad = [ch for ch in line if ord(ch) > 255 or ch in "↑↓±×Δα—"]
        assert not bad, f"line {number}: characters pdflatex cannot set: {bad!r} in {line!r}"
        plain = re.sub(r"\\[{}$&%#_]", "", line)  # escaped specials are text
        assert plain.count("$") % 2 == 0, f"line {number}: unbalanced math in {line!r}"
        for kind, name in re.findall(r"\\(begin|end)\{(\w+\*?)\}", plain):
            if kind == "begin":
                stack.append(name)
                spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", plain)
                if name == "tabular":
                    columns.append(len(spec.group(1)))
            else:
                assert stack and stack.pop() == name, f"line {number}: \\end{{{name}}} closes nothing"
                if name == "tabular":
                    columns.pop()
        if columns and plain.rstrip().endswith("\\\\") and "multicolumn" not in plain:
            cells = plain.count("&") + 1
            assert cells == columns[-1], f"line {number}: {cells} cells in a {columns[-1]}-column tabular"
    assert not stack, f"unclosed environments: {stack}"
    depth = 0
    for ch in re.sub(r"\\[{}]", "", "\n".join(body)):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "'}' without '{'"
    assert depth == 0, "unbalanced braces"


@pytest.fixture()
def runs(tmp_path):
    low = make_run(tmp_path / "a", RNG.normal(-0.5, 0.05, size=(8, 2)), model="sd15", seeds=(0, 1))
    high = make_run(tmp_path / "b", RNG.normal(-0.4, 0.05, size=(8, 2)), model="mole_sd15", seeds=(0, 1))
    store = RunStore(high)
    manifest = store.read_manifest().to_json()
    manifest["settings"] = {"steps": 2, "extra": {"prompt_suffix": " best quality, 8K & more_{x}",
                                                  "negative_prompt": "poor – quality ↑"}}
    store.write_manifest(manifest)
    return low, high


def test_compare_latex_passes_the_strict_reader(runs, capsys):
    main(["compare", *map(str, runs), "-f", "latex", "--resamples", "200"])
    source = capsys.readouterr().out
    strict_check(source)
    assert "$\\uparrow$" in source and "$-$" in source  # the arrow and minus signs as math
    assert "best quality, 8K \\& more\\_\\{x\\}" in source


def test_overview_latex_passes_the_strict_reader(runs, capsys):
    main(["compare", *map(str, runs), "--overview", "-f", "latex", "--resamples", "200"])
    source = capsys.readouterr().out
    strict_check(source)
    assert "$\\pm$" in source and "$-$" in source


def test_the_strict_reader_rejects_what_pdflatex_rejects():
    for broken in ("\\begin{tabular}{ll}\na & b & c \\\\\n\\end{tabular}", "x ↑ y", "\\begin{table}\n",
                   "$x", "{a"):
        with pytest.raises(AssertionError):
            strict_check(broken)
