"""Metric–human agreement: simulated raters whose votes follow a known metric with known noise, the tie and
"does not apply" rules on a hand-counted example, and the whole path from a study database to md / csv / json."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from molebench.cli import main
from molebench.perf.study_agreement import NOISE, TRUTH, literal, simulate
from molebench.study import agreement as ag
from molebench.study import db
from report_runs import make_run

QUESTIONS = db.QUESTIONS


def _row(table: pd.DataFrame, question: str, name: str) -> pd.Series:
    hits = table[(table["question"] == question) & (table["name"] == name)]
    assert len(hits) == 1, hits
    return hits.iloc[0]


@pytest.mark.parametrize("q", [0.7, 0.85])
def test_estimate_recovers_the_true_agreement_within_its_interval_across_seeds(q):
    covered_truth = covered_noise = 0
    estimates = []
    for seed in range(20):
        votes, pair_signs = simulate(seed, n_pairs=300, raters=2, q=q, tie=0.15, na=0.2)
        table = ag.agreement_frame(votes, pair_signs, [TRUTH, NOISE], QUESTIONS, resamples=1000, seed=seed)
        truth, noise = _row(table, "overall", TRUTH.name), _row(table, "overall", NOISE.name)
        covered_truth += truth.ci_low <= q <= truth.ci_high
        covered_noise += noise.ci_low <= 0.5 <= noise.ci_high
        estimates.append(truth.accuracy)
        assert truth.ci_high - truth.ci_low < 0.15 and noise.ci_high - noise.ci_low < 0.15  # informative
    # A 95% interval covers in about 19 of 20 studies; 17 allows the binomial spread of that count (P(<17) ~ 1.6%).
    assert covered_truth >= 17 and covered_noise >= 17, (covered_truth, covered_noise)
    assert abs(np.mean(estimates) - q) < 0.01, "unbiased over seeds"


def test_ceiling_equals_the_simulated_raters_own_agreement():
    q = 0.8
    two, three = [], []
    for seed in range(10):
        votes, pair_signs = simulate(seed, n_pairs=400, raters=2, q=q, tie=0.1)
        two.append(_row(ag.agreement_frame(votes, pair_signs, [TRUTH], QUESTIONS, 500, seed), "overall", ag.CEILING))
        votes, pair_signs = simulate(100 + seed, n_pairs=400, raters=3, q=q)
        three.append(_row(ag.agreement_frame(votes, pair_signs, [TRUTH], QUESTIONS, 500, seed), "overall",
                          ag.CEILING))
    pairwise = q ** 2 + (1 - q) ** 2  # two raters: the chance they agree
    # three raters: the other two form a majority only when they agree, and then they are right with q²/(q²+(1-q)²)
    majority = (q ** 3 + (1 - q) ** 3) / (q ** 2 + (1 - q) ** 2)
    for rows, expected in ((two, pairwise), (three, majority)):
        assert sum(r.ci_low <= expected <= r.ci_high for r in rows) >= 8
        assert abs(np.mean([r.accuracy for r in rows]) - expected) < 0.015


def test_ties_and_not_applicable_follow_the_documented_rule():
    """Hand count: human ties and n/a are left out; a metric tie counts as wrong; a missing value leaves the pair
    out for that metric only; the ceiling compares each vote with the majority of the others."""
    votes = pd.DataFrame({"pair_id": [1, 1, 1, 2, 2, 3, 3, 4], "question": "face",
                          "winner": ["A", "A", "B", "B", "tie", db.NA, "A", "B"]})
    metric, region = ag.Metric("m", "v", True), ag.Metric("m@face", "v", True)
    pair_signs = pd.DataFrame({metric.name: [1.0, 0.0, -1.0, np.nan], region.name: [1.0, 1.0, np.nan, -1.0]},
                              index=pd.Index([1, 2, 3, 4], name="pair_id"))
    table = ag.agreement_frame(votes, pair_signs, [metric, region], {"face": "Face quality"}, resamples=200)
    assert list(table["name"]) == [ag.CEILING, region.name, metric.name], "region metric first for its question"
    m = _row(table, "face", metric.name)
    # pair 1: two A right, one B wrong; pair 2: B on a metric tie, wrong; pair 3: A vs metric B, wrong; pair 4: no value
    assert (m.n, m.correct, m.metric_ties, m.n_pairs) == (5, 2, 1, 3) and m.accuracy == pytest.approx(0.4)
    assert (m.human_ties, m.not_applicable) == (1, 1)
    r = _row(table, "face", region.name)  # pairs 1 (2 of 3), 2 (B vs A: wrong), 4 (B right); pair 3 has no value
    assert (r.n, r.correct, r.metric_ties) == (5, 3, 0) and r.accuracy == pytest.approx(0.6)
    c = _row(table, "face", ag.CEILING)  # pair 1: each A voter sees 1 A vs 1 B (no majority), the B voter sees 2 A
    assert (c.n, c.correct, c.n_pairs) == (1, 0, 1)
    overall = ag.agreement_frame(votes.assign(question="overall"), pair_signs, [metric, region], {"overall": "O"}, 200)
    assert list(overall["name"]) == [ag.CEILING, metric.name], "region metrics only answer their own question"


def test_vectorised_counts_equal_the_rule_applied_vote_by_vote():
    votes, pair_signs = simulate(4, n_pairs=60, raters=4, q=0.7, tie=0.2, na=0.3)
    pair_signs.iloc[::7, 0] = 0.0   # metric ties
    pair_signs.iloc[::5, 1] = np.nan  # pairs a metric cannot rank
    table = ag.agreement_frame(votes, pair_signs, [TRUTH, NOISE], QUESTIONS, resamples=100)
    expected = literal(votes, pair_signs, [TRUTH.name, NOISE.name])
    for row in table[table["kind"] == "metric"].itertuples():
        assert row.accuracy == pytest.approx(expected[(row.question, row.name)])
    decisive = votes[votes["winner"].isin(["A", "B"])]
    for question, group in decisive.groupby("question"):  # ceiling: each vote vs the majority of the others
        right = counted = 0
        for _, pair in group.groupby("pair_id"):
            for position, winner in enumerate(pair["winner"]):
                others = pair["winner"].drop(pair.index[position])
                a, b = int((others == "A").sum()), int((others == "B").sum())
                if a != b:
                    counted += 1
                    right += winner == ("A" if a > b else "B")
        assert _row(table, question, ag.CEILING).accuracy == pytest.approx(right / counted)


def test_no_votes_gives_nan_not_an_error():
    votes = pd.DataFrame({"pair_id": [1], "question": ["hands"], "winner": ["tie"]})
    pair_signs = pd.DataFrame({TRUTH.name: [1.0]}, index=pd.Index([1], name="pair_id"))
    table = ag.agreement_frame(votes, pair_signs, [TRUTH], QUESTIONS, resamples=100)
    assert table["n"].sum() == 0 and table["accuracy"].isna().all() and table["ci_low"].isna().all()


def test_the_bootstrap_interval_matches_a_loop_over_resamples():
    """The vectorised resampling equals resampling whole pairs one at a time with the same draws."""
    correct = np.array([[1.0, 0, 2, 1], [0, 1, 1, 1]])
    counted = np.array([[1.0, 1, 3, 1], [1, 1, 2, 1]])
    low, high = ag.bootstrap(correct, counted, resamples=300, seed=5)
    rng = np.random.default_rng(5)
    draws = np.vstack([rng.integers(0, 4, size=(250, 4)), rng.integers(0, 4, size=(50, 4))])
    for row in range(2):
        values = [correct[row, d].sum() / counted[row, d].sum() for d in draws]
        assert (low[row], high[row]) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])))


# --- from a study database ------------------------------------------------------------------------------------------
def _study(tmp_path: Path, n_prompts: int = 40) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    hps_a, hps_b = rng.normal(0.25, 0.02, n_prompts), rng.normal(0.25, 0.02, n_prompts)
    constant = {"flat/score": np.zeros(n_prompts)}  # every pair a metric tie
    make_run(tmp_path / "a", hps_a, model="sd15", extra=constant)
    make_run(tmp_path / "b", hps_b, model="mole-sd15", extra=constant)
    database = tmp_path / "study.db"
    main(["study", "create", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(database)])
    return database, hps_a, hps_b


def add_votes(database: Path, votes: list[tuple[int, str, str, str]]) -> None:
    """(pair_id, rater, question, winner) rows written in one transaction (the web app's path is tested apart)."""
    with sqlite3.connect(database) as con:
        left = dict(con.execute("SELECT id, left_side FROM pairs"))
        for name in sorted({v[1] for v in votes}):
            con.execute("INSERT OR IGNORE INTO raters (name, created) VALUES (?, 'now')", (name,))
        ids = dict(con.execute("SELECT name, id FROM raters"))
        rows = []
        for pair, rater, question, winner in votes:
            choice = {"tie": "tie", db.NA: db.NA}.get(winner) or ("left" if left[pair] == winner else "right")
            rows.append((pair, ids[rater], question, choice, winner, "now"))
        con.executemany("INSERT INTO votes (pair_id, rater_id, question, choice, winner, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)


def _simulated_votes(database: Path, hps_a: np.ndarray, hps_b: np.ndarray, q: float = 0.8) -> None:
    rng = np.random.default_rng(1)
    with sqlite3.connect(database) as con:
        index = dict(con.execute("SELECT id, prompt_index FROM pairs"))
    votes = []
    for pair, prompt in index.items():
        better = "A" if hps_a[prompt] > hps_b[prompt] else "B"
        for rater in ("ann", "bob"):
            for question in ("overall", "face", "hands"):
                votes.append((pair, rater, question, better if rng.random() < q else {"A": "B", "B": "A"}[better]))
    add_votes(database, votes)


def test_agreement_command_writes_md_csv_json_and_a_figure(tmp_path, capsys):
    database, hps_a, hps_b = _study(tmp_path)
    _simulated_votes(database, hps_a, hps_b)
    add_votes(database, [(1, "cat", "face", db.NA), (2, "cat", "overall", "tie")])
    main(["study", "agreement", str(database), "--out", str(tmp_path / "agree.csv"), "--figure",
          str(tmp_path / "agree.svg"), "--resamples", "500"])
    table = pd.read_csv(tmp_path / "agree.csv")
    expected = ag.study_agreement(database, resamples=500).table
    empty = {"scorer": "", "metric": "", "region": ""}  # CSV reads the ceiling's empty cells back as NaN
    pd.testing.assert_frame_equal(table.fillna(empty), expected, check_dtype=False)
    hps = _row(table, "overall", "hps-tiny/hps")
    assert hps.n == 80 and hps.human_ties == 1 and 0.65 < hps.accuracy < 0.95
    flat = _row(table, "overall", "flat/score")
    assert flat.accuracy == 0 and flat.metric_ties == flat.n == 80, "a tie in the metric counts as wrong"
    assert _row(table, "face", "hps-tiny/hps").not_applicable == 1
    assert (tmp_path / "agree.svg").read_text().lstrip().startswith(("<?xml", "<svg"))

    main(["study", "agreement", str(database), "--format", "json", "--out", str(tmp_path / "agree.json"),
          "--resamples", "500"])
    payload = json.loads((tmp_path / "agree.json").read_text())
    assert "ImageReward" in payload["definition"] and payload["resamples"] == 500
    assert payload["rows"][0]["name"] == ag.CEILING and len(payload["rows"]) == len(table)
    main(["study", "agreement", str(database), "--format", "md", "--resamples", "500"])
    text = capsys.readouterr().out
    assert "| hps-tiny/hps |" in text and f"{100 * hps.accuracy:.1f}%" in text


def test_results_shows_the_metric_agreement_section(tmp_path, capsys):
    database, hps_a, hps_b = _study(tmp_path, n_prompts=10)
    _simulated_votes(database, hps_a, hps_b)
    main(["study", "results", str(database)])
    out = capsys.readouterr().out
    assert "metric–human agreement" in out and "hps-tiny/hps" in out and "human ceiling" in out


def test_bad_agreement_options_exit_with_a_clear_error(tmp_path, capsys):
    database, _, _ = _study(tmp_path, n_prompts=4)
    for argv, message in ((["--resamples", "10"], "--resamples must be at least 100"),
                          (["--format", "xls"], "--format"), (["--figure", str(tmp_path / "f.gif")], "--figure"),
                          (["--score", "fid"], "set-level")):
        with pytest.raises(SystemExit) as exc:
            main(["study", "agreement", str(database), *argv])
        assert exc.value.code in (1, 2) and message in capsys.readouterr().err
    assert not (tmp_path / "f.gif").exists()


def test_report_section_in_chromium_shows_the_figure_and_the_csv_numbers(tmp_path):
    from browser import launch_chromium

    database, hps_a, hps_b = _study(tmp_path, n_prompts=12)
    _simulated_votes(database, hps_a, hps_b)
    out = tmp_path / "report.html"
    main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--study", str(database),
          "--resamples", "999", "--seed", "3"])
    main(["study", "agreement", str(database), "--out", str(tmp_path / "agree.csv"), "--resamples", "999",
          "--seed", "3"])
    expected = pd.read_csv(tmp_path / "agree.csv")
    with launch_chromium() as browser:
        page = browser.new_page()
        page.goto(out.resolve().as_uri())
        page.wait_for_load_state("load")
        dom = page.evaluate("""() => ({
            heading: document.querySelector('#study-agreement').innerText,
            rows: Array.from(document.querySelectorAll('table.agreement tr[data-name]')).map(r => ({
                question: r.dataset.question, name: r.dataset.name,
                cells: Array.from(r.cells).map(c => c.innerText.trim())})),
            figure: (() => { const f = document.querySelector("figure.plot[data-kind='agreement']");
                return f && {w: f.querySelector('svg').getBoundingClientRect().width,
                             band: f.querySelectorAll("[id$='ceiling-0']").length,
                             points: f.querySelectorAll("[id*='metric-0-']").length}; })(),
        })""")
    assert dom["heading"].startswith("Which metric agrees with people?")
    assert len(dom["rows"]) == len(expected)
    for row, want in zip(dom["rows"], expected.itertuples()):
        assert (row["question"], row["name"]) == (want.question, want.name)
        accuracy, ci, n = row["cells"][3], row["cells"][4], row["cells"][5]
        assert accuracy == f"{100 * want.accuracy:.1f}%" and n == str(want.n)
        assert ci == f"{100 * want.ci_low:.1f}–{100 * want.ci_high:.1f}%"
    assert dom["figure"]["w"] > 500 and dom["figure"]["band"] == 1 and dom["figure"]["points"] == 2
    assert (tmp_path / "report_figures" / "study-agreement.svg").is_file()


def test_score_adds_a_metric_through_the_scoring_path_and_reuses_it(tmp_path, capsys):
    from molebench.store import RunStore

    database, hps_a, hps_b = _study(tmp_path, n_prompts=2)
    _simulated_votes(database, hps_a, hps_b)
    main(["study", "agreement", str(database), "--score", "aesthetic-tiny", "--format", "csv", "--device", "cpu",
          "--resamples", "100"])
    captured = capsys.readouterr()
    table = pd.read_csv(io.StringIO(captured.out))  # stdout holds the CSV alone
    assert _row(table, "overall", "aesthetic-tiny/aesthetic").n == 4
    for run in ("a", "b"):
        scores = RunStore(tmp_path / run).read_scores()
        assert len(scores[scores["scorer"] == "aesthetic-tiny"]) == 2, "every image of the run, in its scores"
    main(["study", "agreement", str(database), "--score", "aesthetic-tiny", "--format", "csv", "--device", "cpu",
          "--resamples", "100"])
    assert captured.err.count("scoring 2 images with aesthetic-tiny") == 2
    again = capsys.readouterr().err  # the second call finds every image scored: nothing is scored again
    assert again.count("scored 0 images with aesthetic-tiny: all 2 already scored") == 2 and "scoring 2" not in again
