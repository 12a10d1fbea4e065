"""Studies beside the scores (issue 27, group F): `compare --study DB` and `report --study DB` show the study's win
rates, and studies over more than two runs are ranked with a Bradley–Terry model and bootstrap intervals."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from molebench.cli import main
from molebench.study import db
from molebench.study.ranking import bradley_terry, ranking
from report_runs import make_run

RNG = np.random.default_rng(5)


def test_two_runs_strength_difference_is_the_log_odds_of_the_votes():
    """With a prior of half a win each way, the ML difference of two log-strengths is log((w + ½) / (l + ½)); a tie
    is half a win each."""
    votes = pd.DataFrame({"run_a": ["x"] * 10, "run_b": ["y"] * 10, "score_a": [1.0] * 6 + [0.0] * 2 + [0.5] * 2})
    fitted = bradley_terry(votes)
    assert fitted["x"] - fitted["y"] == pytest.approx(math.log((7 + 0.5) / (3 + 0.5)), abs=1e-8)
    assert fitted.sum() == pytest.approx(0, abs=1e-12)


def test_three_runs_fit_the_model_they_were_drawn_from():
    truth = {"a": 1.0, "b": 0.0, "c": -1.0}
    rows = []
    for first, second in (("a", "b"), ("b", "c"), ("a", "c")):
        p = 1 / (1 + math.exp(truth[second] - truth[first]))
        rows += [(first, second, float(win)) for win in RNG.random(4000) < p]
    fitted = bradley_terry(pd.DataFrame(rows, columns=["run_a", "run_b", "score_a"]))
    assert fitted.to_dict() == pytest.approx(truth, abs=0.08)


def _study(tmp_path, first, second, name, a_wins, b_wins, ties=0):
    path = tmp_path / name
    main(["study", "create", "--runs", str(first), str(second), "--out", str(path)])
    con = db.connect(path)
    pairs = con.execute("SELECT id, left_side FROM pairs ORDER BY id").fetchall()
    outcomes = ["A"] * a_wins + ["B"] * b_wins + ["tie"] * ties
    for number, winner in enumerate(outcomes):
        pair = pairs[number % len(pairs)]
        choice = "tie" if winner == "tie" else ("left" if pair["left_side"] == winner else "right")
        db.add_vote(con, pair["id"], f"rater{number // len(pairs)}", "overall", choice)
    con.close()
    return path


@pytest.fixture()
def three_runs(tmp_path):
    runs = {name: make_run(tmp_path / name, RNG.normal(0.2, 0.02, 6), model=name) for name in ("a", "b", "c")}
    studies = [_study(tmp_path, runs["a"], runs["b"], "ab.db", 10, 2), _study(tmp_path, runs["b"], runs["c"], "bc.db",
                                                                              9, 3, 1),
               _study(tmp_path, runs["a"], runs["c"], "ac.db", 11, 1)]
    return runs, studies


def test_compare_shows_study_win_rates_and_the_ranking_over_three_runs(three_runs, capsys, tmp_path):
    runs, studies = three_runs
    argv = ["compare", *map(str, runs.values()), "--resamples", "200"]
    for study in studies:
        argv += ["--study", str(study)]
    main([*argv, "-f", "json"])
    result = json.loads(capsys.readouterr().out)["study"]
    overall = [r for r in result["win_rates"] if r["question"] == "overall" and r["study"].endswith("ab.db")]
    assert {(r["label"], r["wins"], r["losses"]) for r in overall} == {("a", 10, 2), ("b", 2, 10)}
    ranked = [r for r in result["ranking"] if r["question"] == "overall"]
    assert [r["label"] for r in ranked] == ["a", "b", "c"]
    assert all(r["ci_low"] <= r["log_strength"] <= r["ci_high"] for r in ranked)
    assert ranked[0]["n_votes"] == 24 and ranked[1]["n_votes"] == 25
    main(argv)
    printed = capsys.readouterr().out
    assert "human preference study: win rates" in printed and "Bradley–Terry" in printed
    out = tmp_path / "r.html"
    main(["report", *map(str, runs.values()), "--out", str(out), "--resamples", "200",
          *sum((["--study", str(s)] for s in studies), [])])
    page = out.read_text()
    assert "class='study-rates'" in page and "class='study-ranking'" in page


def test_ranking_is_reproducible(three_runs):
    _, studies = three_runs
    first, second = ranking(studies, seed=0, resamples=200), ranking(studies, seed=0, resamples=200)
    pd.testing.assert_frame_equal(first, second)
