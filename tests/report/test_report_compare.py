"""`molebench compare`: tables in every format, refusal of incomparable runs, the paper numbers beside."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import exit_code
from molebench.cli import main
from molebench.report.paper import load_paper_results
from report_runs import make_run

RNG = np.random.default_rng(2024)
BASE = RNG.normal(0.25, 0.02, size=(30, 2))
BETTER = BASE + 0.01 + RNG.normal(0, 0.003, size=(30, 2))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    return {
        "base": make_run(root / "base", BASE, model="sd15", seeds=(0, 1)),
        "better": make_run(root / "better", BETTER, model="mole-sd15", seeds=(0, 1),
                           extra={"aux/score": RNG.normal(size=(30, 2))}),
        "same": make_run(root / "same", BASE, model="copy", seeds=(0, 1)),
        "other_set": make_run(root / "other_set", BASE, model="x", seeds=(0, 1), prompt_set="set-2"),
        "other_scorer": make_run(root / "other_scorer", BASE, model="y", seeds=(0, 1), version="hps-tiny-v2"),
        "fewer": make_run(root / "fewer", BASE[:, :1], model="z", seeds=(0,)),
        "running": make_run(root / "running", BASE, model="w", seeds=(0, 1), status="running"),
        "other_bench": make_run(root / "other_bench", BASE[:10], model="sd15", benchmark="bench-y", seeds=(0, 1),
                                prompt_set="set-3"),
    }


def test_json_has_the_statistics_and_verdicts(runs, capsys):
    main(["compare", str(runs["base"]), str(runs["better"]), str(runs["same"]), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    (table,) = data["tables"]  # only the metric every run has; aux/score exists in one run
    assert (table["benchmark"], table["scorer"], table["metric"], table["scale"]) == ("bench-x", "hps-tiny", "hps", 100)
    ref, better, same = table["rows"]
    assert ref["is_reference"] and ref["verdict"] == "reference" and ref["diff"] is None
    assert ref["mean"] == pytest.approx(BASE.mean() * 100) and ref["n"] == 60 and ref["n_prompts"] == 30
    assert ref["ci_low"] < ref["mean"] < ref["ci_high"]
    assert better["verdict"] == "better" and better["diff_low"] > 0 and better["p_value"] < 1e-4
    assert better["diff"] == pytest.approx((BETTER - BASE).mean() * 100)
    assert better["win_rate"] == 1.0 and better["n_pairs"] == 30
    assert same["verdict"] == "n.s." and same["p_value"] == 1.0 and same["diff"] == 0.0
    assert data["mismatches"] == [] and data["settings"]["seed"] == 0


def test_markdown_csv_latex_and_terminal(runs, capsys, tmp_path):
    args = [str(runs["base"]), str(runs["better"])]
    main(["compare", *args, "--format", "md"])
    md = capsys.readouterr().out
    assert "### bench-x — hps-tiny/hps ×100" in md and "| mole-sd15 |" in md and "better" in md

    main(["compare", *args, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["label"] for r in rows] == ["sd15", "mole-sd15"] and rows[1]["verdict"] == "better"
    assert float(rows[1]["p_value"]) < 1e-4

    out = tmp_path / "table.tex"
    main(["compare", *args, "--out", str(out)])  # format from the suffix
    tex = out.read_text()
    assert "\\begin{tabular}" in tex and "\\toprule" in tex and "95\\% CI" in tex and "mole-sd15" in tex

    main(["compare", *args])
    terminal = capsys.readouterr().out
    assert "mole-sd15" in terminal and "better" in terminal and "Wilcoxon" in terminal


def test_reference_option_changes_the_baseline(runs, capsys):
    main(["compare", str(runs["base"]), str(runs["better"]), "--reference", str(runs["better"]), "-f", "json"])
    rows = json.loads(capsys.readouterr().out)["tables"][0]["rows"]
    assert rows[0]["label"] == "mole-sd15" and rows[0]["is_reference"]
    assert rows[1]["verdict"] == "worse" and rows[1]["diff"] < 0


@pytest.mark.parametrize("other,named", [
    ("other_set", "prompt sets differ"),
    ("other_scorer", "scorer hps-tiny differs: sd15"),
    ("fewer", "image counts differ"),
    ("running", "is not complete"),
])
def test_incomparable_runs_are_refused_naming_the_difference(runs, capsys, other, named):
    assert exit_code(["compare", str(runs["base"]), str(runs[other])]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_allow_mismatch_compares_and_records_it(runs, capsys):
    main(["compare", str(runs["base"]), str(runs["other_scorer"]), "--allow-mismatch", "-f", "json"])
    data = json.loads(capsys.readouterr().out)
    assert data["allow_mismatch"] is True
    assert any("hps-tiny-v2" in m for m in data["mismatches"])
    main(["compare", str(runs["base"]), str(runs["fewer"]), "--allow-mismatch", "-f", "md"])
    md = capsys.readouterr().out
    assert "COMPARED DESPITE MISMATCH" in md and "image counts differ" in md


def test_one_table_per_benchmark_without_mixing(runs, capsys):
    main(["compare", str(runs["base"]), str(runs["other_bench"]), "-f", "json"])
    tables = json.loads(capsys.readouterr().out)["tables"]
    assert [t["benchmark"] for t in tables] == ["bench-x", "bench-y"]
    assert all(len(t["rows"]) == 1 for t in tables)


def test_paper_numbers_beside_measured(runs, capsys, tmp_path):
    paper = tmp_path / "paper.json"  # a local numbers file (test data, not the paper's values)
    paper.write_text(json.dumps({
        "schema": "molebench paper results 1", "source": {"title": "T", "arxiv": "0000.00000"},
        "results": [{"model": "mole-sd15", "benchmark": "bench-x", "scorer": "hps-tiny", "metric": "hps",
                     "value": 12.34, "table": "Table 9"}]}))
    main(["compare", str(runs["base"]), str(runs["better"]), "--paper-file", str(paper), "-f", "json"])
    data = json.loads(capsys.readouterr().out)
    rows = data["tables"][0]["rows"]
    assert rows[1]["paper"] == 12.34 and rows[1]["paper_table"] == "Table 9" and rows[0]["paper"] is None
    assert "0000.00000" in data["paper"]["citation"]
    main(["compare", str(runs["base"]), str(runs["better"]), "--paper"])
    out = capsys.readouterr().out
    assert "2410.23332" in out and "n/a" in out


def test_shipped_paper_file_is_cited_and_honest():
    paper = load_paper_results()
    assert paper.source["arxiv"] == "2410.23332" and "MoLE" in paper.source["title"]
    for entry in paper.results:  # every number names its table
        assert entry["table"] and isinstance(entry["value"], (int, float))
    assert paper.results or paper.missing, "no numbers must come with the reason they are missing"
    for missing in paper.missing:
        assert missing["reason"] and missing["table"]


def test_bad_input_is_clear(runs, capsys, tmp_path):
    assert exit_code(["compare", str(tmp_path / "nope")]) == 1
    assert "run folder not found" in capsys.readouterr().err
    assert exit_code(["compare", str(runs["base"]), "--format", "xml"]) == 2  # a usage error
    assert "--format" in capsys.readouterr().err
    assert exit_code(["compare", str(runs["base"]), str(runs["better"]), "--metric", "nope"]) == 2
    assert "available: hps-tiny/hps" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert exit_code(["compare", str(runs["base"]), "--paper-file", str(bad)]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def test_display_scale_comes_from_the_manifest_without_torch(runs, tmp_path, capsys):
    """Reports read scale and direction from the scorer fingerprints; a manifest without them is refused, not shown
    unscaled."""
    code = ("import sys; from molebench.cli import main; "
            f"main(['compare', {str(runs['base'])!r}, {str(runs['same'])!r}, '-f', 'json', '--resamples', '200']); "
            "assert 'torch' not in sys.modules, 'a report imported torch'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tables"][0]["scale"] == 100
    stripped = make_run(tmp_path / "old", BASE, model="old", seeds=(0, 1))
    manifest = json.loads((stripped / "manifest.json").read_text())
    del manifest["scorers"]["hps-tiny"]["display_scale"]
    (stripped / "manifest.json").write_text(json.dumps(manifest))
    assert exit_code(["compare", str(runs["base"]), str(stripped), "--resamples", "200"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "records no display_scale for hps-tiny/hps" in err and "molebench score" in err
