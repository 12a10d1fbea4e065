"""A study over more than two runs (issue 27): `study create --runs A B C` pairs the runs fairly per prompt, votes
name the chosen run, and `study results`, `compare --study` and the report rank the runs with the Bradley–Terry
model and intervals. Studies made before (schema 2: two runs, every pair A against B) keep working."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from conftest import exit_code_and_error
from molebench.cli import main
from molebench.study import db, tally
from molebench.study.app import create_app
from molebench.study.ranking import ranking
from study_runs import PROMPTS, make_run

ITEMS = len(PROMPTS) * 2  # make_run: every prompt with seeds 0 and 1
STRENGTH = {"A": 0, "B": 1, "C": 2}  # the vote rule below: the run with the larger number wins


@pytest.fixture()
def three(tmp_path):
    return [make_run(tmp_path / name, name, colour=colour)
            for name, colour in (("sd15", (200, 40, 40)), ("mole", (40, 200, 40)), ("sdxl", (40, 40, 200)))]


def _create(tmp_path, runs, *extra):
    out = tmp_path / "study.db"
    main(["study", "create", "--runs", *map(str, runs), "--out", str(out), *extra])
    with sqlite3.connect(out) as con:
        pairs = con.execute("SELECT prompt_id, seed, side_a, side_b, left_side FROM pairs ORDER BY id").fetchall()
    return out, pairs


def test_every_item_is_compared_in_every_run_pair_by_default(tmp_path, three):
    _, pairs = _create(tmp_path, three)
    assert len(pairs) == ITEMS * 3
    assert Counter((a, b) for _, _, a, b, _ in pairs) == {("A", "B"): ITEMS, ("A", "C"): ITEMS, ("B", "C"): ITEMS}
    assert len({(p, s, a, b) for p, s, a, b, _ in pairs}) == len(pairs)
    for combo in (("A", "B"), ("A", "C"), ("B", "C")):  # the first run of each run pair on the left in half
        assert sum(left == combo[0] for _, _, a, b, left in pairs if (a, b) == combo) == ITEMS // 2


def test_n_pairs_spread_over_the_prompts_and_the_run_pairs(tmp_path, three):
    _, pairs = _create(tmp_path, three, "--n", "7")
    items = Counter((p, s) for p, s, _, _, _ in pairs)
    assert len(pairs) == 7 and max(items.values()) == 1  # no item twice before every item is used
    per_combo = Counter((a, b) for _, _, a, b, _ in pairs).values()
    assert len(per_combo) == 3 and max(per_combo) - min(per_combo) <= 1
    _, more = _create(tmp_path, three, "--n", str(ITEMS + 4), "--force")
    assert max(Counter((p, s) for p, s, _, _, _ in more).values()) == 2
    assert sorted(Counter((a, b) for _, _, a, b, _ in more).values()) == [4, 5, 5]
    _, again = _create(tmp_path, three, "--n", str(ITEMS + 4), "--force")
    assert again == more  # the same seed, the same study


def test_a_folder_named_twice_or_a_single_run_is_refused(tmp_path, three, capsys):
    code, err = exit_code_and_error(capsys, "study", "create", "--runs", *map(str, three), str(three[0]),
                                    "--out", str(tmp_path / "s.db"))
    assert code == 1 and "a folder is named twice" in err and not (tmp_path / "s.db").exists()
    code, err = exit_code_and_error(capsys, "study", "create", "--runs", str(three[0]), "--out", str(tmp_path / "s.db"))
    assert code == 2 and "at least two runs" in err and not (tmp_path / "s.db").exists()


def _vote_by_strength(path, raters=("ann", "bob")):
    """Every rater answers `overall` for every pair: the stronger run (STRENGTH) wins; returns the votes cast."""
    client = TestClient(create_app(path))
    con = db.connect(path)
    pairs = con.execute("SELECT id, side_a, side_b, left_side FROM pairs").fetchall()
    con.close()
    for rater in raters:
        for pair_id, side_a, side_b, left in pairs:
            best = max((side_a, side_b), key=STRENGTH.get)
            body = {"pair_id": pair_id, "rater": rater, "question": "overall",
                    "choice": "left" if left == best else "right"}
            assert client.post("/api/votes", json=body).status_code == 201
    return len(pairs) * len(raters)


def test_votes_name_the_chosen_run_and_the_runs_are_ranked(tmp_path, three, capsys):
    path, _ = _create(tmp_path, three, "--n", "12")
    cast = _vote_by_strength(path)
    votes = db.votes_frame(path)
    assert len(votes) == cast and set(votes["winner"]) <= {"B", "C"}  # A (the weakest) never wins
    assert (votes["winner"] == votes[["side_a", "side_b"]].max(axis=1)).all()
    rates = tally.win_rates(path).set_index(["question", "side"])
    assert rates.loc[("overall", "C"), "win_rate"] == 1 and rates.loc[("overall", "A"), "win_rate"] == 0
    assert rates.loc[("overall", "A"), "opponent"] == "mole, sdxl"
    assert rates.loc[("overall", "B"), "n_votes"] == int(((votes["side_a"] == "B") | (votes["side_b"] == "B")).sum())
    ranked = ranking([path], resamples=200)
    overall = ranked[ranked["question"] == "overall"]
    assert list(overall["label"]) == ["sdxl", "mole", "sd15"]
    assert (overall["ci_low"] <= overall["log_strength"]).all() and (overall["log_strength"] <= overall["ci_high"]).all()
    main(["study", "results", str(path)])
    printed = " ".join(capsys.readouterr().out.split())
    assert "Bradley–Terry ranking of the runs" in printed and "sdxl" in printed


def test_compare_and_the_report_rank_the_runs_of_one_study(tmp_path, capsys):
    import numpy as np

    from report_runs import make_run as make_scored_run

    runs = [make_scored_run(tmp_path / name, np.linspace(0.2, 0.3, 6), model=name) for name in ("sd15", "mole", "sdxl")]
    path, _ = _create(tmp_path, runs)
    _vote_by_strength(path)
    main(["compare", *map(str, runs), "--study", str(path), "--resamples", "200", "-f", "json"])
    ranked = [r for r in json.loads(capsys.readouterr().out)["study"]["ranking"] if r["question"] == "overall"]
    assert [r["label"] for r in ranked] == ["sdxl", "mole", "sd15"]
    from molebench.report.study_view import html, study_view  # the report's section (`report --study` renders it)

    section = html(study_view([path], []))
    table = section[section.index("class='study-ranking'"):]
    assert table.index(">sdxl<") < table.index(">mole<") < table.index(">sd15<")


def test_the_page_shows_each_pair_s_images_from_its_own_runs(tmp_path, three):
    path, _ = _create(tmp_path, three)
    client = TestClient(create_app(path))
    con = db.connect(path)
    runs = db.read_runs(con)
    for pair in con.execute("SELECT * FROM pairs WHERE side_a = 'B' OR side_b = 'C' LIMIT 4").fetchall():
        right = pair["side_b"] if pair["left_side"] == pair["side_a"] else pair["side_a"]
        image = pair["image_a"] if right == pair["side_a"] else pair["image_b"]
        served = client.get(f"/images/{pair['id']}/right")
        assert served.status_code == 200 and served.content == (tmp_path / runs[right].path / image).read_bytes()
    con.close()


def test_a_schema_2_study_keeps_working(tmp_path, three):
    """A two-run file as schema 2 wrote it (no side columns, winners A/B only) is read, served and voted on."""
    path, _ = _create(tmp_path, three[:2])
    with sqlite3.connect(path) as con:
        con.executescript(
            "CREATE TABLE pairs2 (id INTEGER PRIMARY KEY, prompt_index INTEGER NOT NULL, prompt_id TEXT NOT NULL, "
            "prompt TEXT NOT NULL, seed INTEGER NOT NULL, key_a TEXT NOT NULL, image_a TEXT NOT NULL, key_b TEXT NOT "
            "NULL, image_b TEXT NOT NULL, left_side TEXT NOT NULL CHECK (left_side IN ('A', 'B')), "
            "UNIQUE (prompt_id, seed));"
            "INSERT INTO pairs2 SELECT id, prompt_index, prompt_id, prompt, seed, key_a, image_a, key_b, image_b, "
            "left_side FROM pairs; DROP TABLE votes; DROP TABLE pairs; ALTER TABLE pairs2 RENAME TO pairs; "
            + db.VOTES.format(name="votes", winners=db.TWO_RUN_WINNERS) + db.VOTES_INDEX
            + "UPDATE study SET value = '2' WHERE key = 'schema_version';")
    client = TestClient(create_app(path))
    assert client.get("/images/1/left").status_code == 200
    assert client.post("/api/votes", json={"pair_id": 1, "rater": "ann", "question": "overall",
                                           "choice": "left"}).status_code == 201
    with sqlite3.connect(path) as con:
        left = con.execute("SELECT left_side FROM pairs WHERE id = 1").fetchone()[0]
    rates = tally.win_rates(path).set_index(["question", "side"])
    assert rates.loc[("overall", left), "wins"] == 1 and rates.loc[("overall", left), "opponent"] in ("sd15", "mole")
    ranked = ranking([path], resamples=100).query("question == 'overall'")
    assert ranked.iloc[0]["label"] == db.read_runs(db.connect(path))[left].label  # the run that won the vote


def test_metric_agreement_reads_each_pair_s_images_from_their_own_runs(tmp_path):
    import numpy as np

    from molebench.study.agreement import study_agreement
    from report_runs import make_run as make_scored_run

    # every image of a stronger run (STRENGTH order: sd15 < mole < sdxl) scores higher, prompt by prompt
    runs = [make_scored_run(tmp_path / name, np.linspace(0.2, 0.25, 6) + 0.1 * rank, model=name)
            for rank, name in enumerate(("sd15", "mole", "sdxl"))]
    path, _ = _create(tmp_path, runs)
    cast = _vote_by_strength(path, raters=("ann",))
    table = study_agreement(path, resamples=100).table
    metric = table[(table["question"] == "overall") & (table["kind"] == "metric")].iloc[0]
    assert metric["n"] == cast and metric["accuracy"] == 1.0
