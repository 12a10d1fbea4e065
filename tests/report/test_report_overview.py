"""Run labels that stay unique when folders share a name, every run shown with its settings, and the
models × metrics overview table (md, CSV, LaTeX, JSON) with one precision for a mean and its spread."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

from conftest import exit_code
from molebench.cli import main
from molebench.report import formats, overview
from molebench.report.compare import Settings, compare
from molebench.report.runs import load_runs
from molebench.store import RunStore
from report_runs import make_run

RNG = np.random.default_rng(15)


def _with_settings(folder, **facts):
    """Add what `molebench run` records (settings, device, commit, hub id) to a synthetic run's manifest."""
    store = RunStore(folder)
    manifest = store.read_manifest().to_json()
    manifest.update(settings={"steps": 25, "guidance": 7.5, "width": 512, "height": 512,
                              "scheduler": "DPMSolverMultistepScheduler", "dtype": "float16", "extra": {}},
                    device={"type": "cuda", "name": ["NVIDIA H100", "NVIDIA A100"]},  # two commands, two GPUs
                    git_commit="0123456789abcdef0123+dirty")
    manifest["model"]["hub_id"] = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    manifest.update(facts)
    store.write_manifest(manifest)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("overview")
    base = RNG.normal(0.25, 0.02, size=(12, 2))
    aux = {"aux/score": RNG.normal(size=(12, 2))}
    return {
        "coco": _with_settings(make_run(root / "coco" / "sd15", base, model="sd15", benchmark="coco",
                                        prompt_set="coco", seeds=(0, 1), extra=aux)),
        "mole": make_run(root / "coco" / "mole", base + RNG.normal(0.01, 0.005, (12, 2)), model="mole-sd15",
                         benchmark="coco", prompt_set="coco", seeds=(0, 1),
                         extra={"aux/score": RNG.normal(size=(12, 2))}),
        "ddb": make_run(root / "ddb" / "sd15", base[:8] + 0.05, model="sd15", benchmark="ddb", prompt_set="ddb",
                        seeds=(0, 1), extra={"aux/score": RNG.normal(size=(8, 2))}),
        "again": make_run(root / "again" / "sd15", base, model="sd15", benchmark="coco", prompt_set="coco",
                          seeds=(0, 1), extra={"aux/score": RNG.normal(size=(12, 2))}),
    }


def test_labels_are_unique_per_benchmark_and_shared_by_one_system(runs):
    loaded = load_runs([runs["coco"], runs["ddb"], runs["mole"]])
    assert [r.label for r in loaded] == ["sd15", "sd15", "mole-sd15"]  # one system on two benchmarks: one row
    loaded = load_runs([runs["coco"], runs["again"], runs["mole"]])  # same model twice on one benchmark
    assert [r.label for r in loaded] == ["sd15 (coco/sd15)", "sd15 (again/sd15)", "mole-sd15"]
    table = compare(loaded).tables[0]
    assert [row.label for row in table.rows] == ["sd15 (coco/sd15)", "sd15 (again/sd15)", "mole-sd15"]


@pytest.mark.parametrize("labels,message", [
    (["same={coco}", "same={mole}"], "both labelled 'same' on benchmark coco"),
    (["x={missing}"], "not one of the runs given"),
    (["no-equals-sign"], "expected NAME=RUN"),
])
def test_bad_labels_are_refused(runs, capsys, tmp_path, labels, message):
    paths = {k: str(v) for k, v in runs.items()} | {"missing": str(tmp_path / "nowhere")}
    args = [x for label in labels for x in ("--label", label.format(**paths))]
    assert exit_code(["compare", paths["coco"], paths["mole"], *args]) == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err


def test_the_same_folder_twice_is_refused(runs, capsys):
    assert exit_code(["compare", str(runs["coco"]), str(runs["coco"])]) == 1
    assert "given twice" in capsys.readouterr().err


def test_compare_shows_each_run_with_its_settings(runs, capsys):
    args = [str(runs["coco"]), str(runs["mole"]), "--label", f"SD 1.5={runs['coco']}", "--resamples", "100"]
    main(["compare", *args, "-f", "json"])
    info = json.loads(capsys.readouterr().out)["runs"][0]
    assert info["label"] == "SD 1.5" and info["settings"] == {
        "weights": "stable-diffusion-v1-5/stable-diffusion-v1-5", "steps": "25", "guidance": "7.5",
        "size": "512x512", "scheduler": "DPMSolverMultistepScheduler", "dtype": "float16", "seeds": "0-1",
        "n_prompts": "12", "n_images": "24", "git_commit": "0123456789ab+dirty",
        "device": "cuda (NVIDIA H100, NVIDIA A100)", "prompt_suffix": "", "negative_prompt": "",
        "prompt_weighting": "", "options": ""}

    comparison = compare(load_runs([runs["coco"], runs["mole"]], labels={runs["coco"].resolve(): "SD 1.5"}),
                         settings=Settings(n_resamples=100))
    rows = list(csv.DictReader(io.StringIO(formats.render(comparison, "csv"))))
    assert rows[0]["label"] == "SD 1.5" and rows[0]["scheduler"] == "DPMSolverMultistepScheduler"
    assert rows[0]["n_images"] == "24" and rows[0]["device"] == "cuda (NVIDIA H100, NVIDIA A100)"
    assert rows[1]["steps"] == "2"

    md = formats.render(comparison, "md")
    assert "| run | model | benchmark | run id | weights | steps | guidance | size |" in md
    assert "| SD 1.5 | sd15 | coco | sd15 | stable-diffusion-v1-5/stable-diffusion-v1-5 | 25 | 7.5 | 512x512 |" in md

    assert "\\caption{Runs}" in formats.render(comparison, "latex")
    main(["compare", *args])
    terminal = capsys.readouterr().out
    assert "DPMSolverMultistepScheduler" in terminal and "NVIDIA H100" in terminal


def _numbers(text):
    return re.findall(r"-?\d+\.(\d+)", text)


def test_overview_table_in_every_format(runs, capsys):
    args = [str(runs["coco"]), str(runs["mole"]), str(runs["ddb"]), "--overview", "--resamples", "100"]
    main(["compare", *args, "-f", "json"])
    data = json.loads(capsys.readouterr().out)
    view = overview.overview(compare(load_runs(args[:3]), settings=Settings(n_resamples=100)))
    assert [c["key"] for c in data["columns"]] == ["coco aux/score", "coco hps-tiny/hps", "ddb aux/score",
                                                   "ddb hps-tiny/hps"]
    sd15, mole = data["rows"]
    assert (sd15["label"], mole["label"]) == ("sd15", "mole-sd15") and sorted(mole["cells"]) == sorted(
        ["coco aux/score", "coco hps-tiny/hps"])  # mole ran on coco only
    cell = sd15["cells"]["coco hps-tiny/hps"]
    assert cell["pm"] == pytest.approx(max(cell["mean"] - cell["ci_low"], cell["ci_high"] - cell["mean"]))
    assert cell["text"] == f"{cell['mean']:.2f} ± {cell['pm']:.2f}"  # HPS ×100: two decimals for both

    md = overview.render(view, "md")
    header = next(line for line in md.splitlines() if line.startswith("| run"))
    assert header == ("| run | model | coco aux/score | coco hps-tiny/hps ×100 | ddb aux/score "
                      "| ddb hps-tiny/hps ×100 |")
    mole_row = next(line for line in md.splitlines() if line.startswith("| mole-sd15"))
    assert mole_row.endswith("| — | — |")
    for cell_text in re.findall(r"-?\d+\.\d+ ± \d+\.\d+", md):  # mean and spread: the same precision
        assert len(set(len(d) for d in _numbers(cell_text))) == 1, cell_text

    rows = list(csv.DictReader(io.StringIO(overview.render(view, "csv"))))
    assert [r["label"] for r in rows] == ["sd15", "mole-sd15"] and rows[1]["ddb hps-tiny/hps mean"] == ""
    assert float(rows[0]["coco hps-tiny/hps pm"]) == pytest.approx(cell["pm"])

    tex = overview.render(view, "latex")
    assert "\\multicolumn{2}{c}{coco} & \\multicolumn{2}{c}{ddb}" in tex and "$\\pm$" in tex and "\\cmidrule" in tex


def test_overview_shows_the_standard_error_where_runs_have_repeats(runs):
    comparison = compare(load_runs([runs["coco"], runs["mole"]]), settings=Settings(n_resamples=100))
    row = comparison.tables[1].rows[0]
    row.repeats_mean, row.repeats_se, row.n_repeats = 24.1234, 0.0912, 3  # what a --protocol paper run sets
    view = overview.overview(comparison)
    assert view.text("sd15", view.columns[1]) == "24.12 ± 0.09"
    assert view.text("mole-sd15", view.columns[1]).endswith(f"± {view.cell('mole-sd15', view.columns[1]).spread:.2f}")
    assert "repeat means ± their standard error" in view.note()


def test_one_precision_per_table_for_mean_ci_and_difference(tmp_path, capsys):
    """Means just under 10 with a CI reaching past 10 print every number of the table with three decimals."""
    values = np.linspace(0.0990, 0.1008, 40)
    a = make_run(tmp_path / "a", values, model="a")
    b = make_run(tmp_path / "b", values + 0.00001, model="b")
    main(["compare", str(a), str(b), "-f", "md", "--resamples", "100"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| a", "| b"))][-2:]
    assert any("10.0" in row for row in rows)
    for row in rows:
        cells = row.split("|")[2:7]  # mean, CI, n, Δ, Δ CI
        decimals = {len(d) for cell in cells for d in _numbers(cell)}
        assert decimals == {3}, row
