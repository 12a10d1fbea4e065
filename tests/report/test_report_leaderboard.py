"""`molebench leaderboard export`: the documented schema, appending keeps old rows, re-export replaces in place."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from molebench.cli import main
from molebench.report.leaderboard import COLUMNS, FIRST_COLUMNS
from report_runs import make_run

RNG = np.random.default_rng(11)


def _rows(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_schema_append_and_replace(tmp_path, capsys):
    a = make_run(tmp_path / "a", RNG.normal(0.25, 0.02, 20), model="sd15", extra={"aux/score": RNG.normal(size=20)})
    b = make_run(tmp_path / "b", RNG.normal(0.27, 0.02, 20), model="mole-sd15", date="2026-02-03T00:00:00+00:00")
    board = tmp_path / "board" / "leaderboard.csv"

    main(["leaderboard", "export", str(a), "--out", str(board)])
    header, rows = _rows(board)
    assert header == COLUMNS == ["model", "benchmark", "scorer", "metric", "version", "mean", "ci_low", "ci_high",
                                 "n", "scale", "run_id", "date", "molebench_version", "config_hash",
                                 "prompt_set_sha256", "higher_is_better", "level", "std", "n_reference", "label",
                                 "weights", "steps", "guidance", "size", "scheduler", "dtype", "seeds", "n_prompts",
                                 "n_images", "git_commit", "device", "prompt_suffix", "negative_prompt",
                                 "prompt_weighting", "options", "protocol", "repeats", "units", "se", "pooled_mean",
                                 "pooled_ci_low", "pooled_ci_high"]
    assert sorted((r["model"], r["scorer"], r["metric"]) for r in rows) == [("sd15", "aux", "score"),
                                                                            ("sd15", "hps-tiny", "hps")]
    hps = next(r for r in rows if r["scorer"] == "hps-tiny")
    assert hps["scale"] == "100" and hps["n"] == "20" and hps["run_id"] == "a" and len(hps["config_hash"]) == 64
    assert float(hps["ci_low"]) < float(hps["mean"]) < float(hps["ci_high"])
    first = board.read_text()

    main(["leaderboard", "export", str(b), "--out", str(board)])  # a new run: old rows kept, byte for byte
    _, rows = _rows(board)
    assert len(rows) == 3 and board.read_text().startswith(first)
    assert rows[2]["model"] == "mole-sd15" and rows[2]["date"] == "2026-02-03T00:00:00+00:00"
    second = board.read_text()

    main(["leaderboard", "export", str(a), str(b), "--out", str(board)])  # re-export: replaced, not duplicated
    assert board.read_text() == second  # same seeded statistics, same rows, same order
    assert "0 rows added, 3 replaced" in capsys.readouterr().err
    assert not list(board.parent.glob(".tmp-*"))


def test_scans_results_folder_for_complete_runs(tmp_path, capsys):
    results = tmp_path / "results"
    make_run(results / "done", RNG.normal(0.25, 0.02, 10), model="sd15")
    make_run(results / "busy", RNG.normal(0.25, 0.02, 10), model="sdxl", status="running")
    board = tmp_path / "lb.csv"
    main(["leaderboard", "export", "--results", str(results), "--out", str(board)])
    assert [r["model"] for r in _rows(board)[1]] == ["sd15"]


def test_refuses_a_file_with_another_schema(tmp_path):
    run = make_run(tmp_path / "a", RNG.normal(0.25, 0.02, 10))
    board = tmp_path / "lb.csv"
    board.write_text("model,score\nx,1\n")
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "export", str(run), "--out", str(board)])
    assert exc.value.code == 1
    assert board.read_text() == "model,score\nx,1\n"


def test_same_folder_name_on_two_benchmarks_is_two_runs_and_old_files_gain_columns(tmp_path, capsys):
    """`runs/coco/sd15` and `runs/ddb/sd15` share a run_id: both stay on the board, each with its settings; a file
    written with the first release's columns is extended rather than refused."""
    coco = make_run(tmp_path / "coco" / "sd15", RNG.normal(0.25, 0.02, (6, 2)), model="sd15", benchmark="coco",
                    prompt_set="coco", seeds=(0, 1))
    ddb = make_run(tmp_path / "ddb" / "sd15", RNG.normal(0.25, 0.02, 4), model="sd15", benchmark="ddb",
                   prompt_set="ddb")
    board = tmp_path / "lb.csv"
    old = FIRST_COLUMNS  # a board of the first release
    board.write_text(",".join(old) + "\n" + ",".join(["old-model", "bench"] + ["x"] * (len(old) - 2)) + "\n")
    main(["leaderboard", "export", str(coco), str(ddb), "--out", str(board), "--label", f"SD 1.5={coco}",
          "--resamples", "999"])
    header, rows = _rows(board)
    assert header == COLUMNS and rows[0]["model"] == "old-model" and rows[0]["label"] == ""
    new = {r["benchmark"]: r for r in rows[1:]}
    assert sorted(new) == ["coco", "ddb"] and {r["run_id"] for r in new.values()} == {"sd15"}
    assert (new["coco"]["label"], new["coco"]["seeds"], new["coco"]["n_prompts"], new["coco"]["n_images"],
            new["coco"]["steps"]) == ("SD 1.5", "0-1", "6", "12", "2")
    assert (new["ddb"]["label"], new["ddb"]["seeds"], new["ddb"]["n_images"]) == ("sd15", "0", "4")
    assert "2 rows added" in capsys.readouterr().err
