"""Preference study: pairing, the database, the HTTP API on bad input, and the statistics (against their formulas)."""

from __future__ import annotations

import math
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from scipy.stats import binomtest

from molebench.cli import main
from molebench.errors import InputError
from molebench.store import RunStore
from molebench import stats as molebench_stats
from molebench.study import db, tally
from molebench.study.app import create_app
from study_runs import make_run


def _create(tmp_path: Path, *extra: str, out: str = "study.db") -> Path:
    path = tmp_path / out
    main(["study", "create", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(path), *extra])
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    make_run(tmp_path / "a", "model-a")
    make_run(tmp_path / "b", "model-b", colour=(40, 40, 200))
    return tmp_path


@pytest.fixture
def client(runs: Path) -> tuple[TestClient, Path]:
    path = _create(runs)
    return TestClient(create_app(path)), path


def _pairs(path: Path) -> pd.DataFrame:
    with sqlite3.connect(path) as con:
        return pd.read_sql_query("SELECT * FROM pairs ORDER BY id", con)


def _vote_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT pair_id, rater_id, question, choice, winner FROM votes ORDER BY id").fetchall()


# --- create ---------------------------------------------------------------------------------------------------------
def test_create_pairs_same_prompt_and_seed_and_counterbalances(runs):
    path = _create(runs)
    pairs = _pairs(path)
    items_a = RunStore(runs / "a").read_items().set_index(["prompt_id", "seed"])
    items_b = RunStore(runs / "b").read_items().set_index(["prompt_id", "seed"])
    assert len(pairs) == len(items_a) == 10
    assert sorted(pairs["id"]) == list(range(1, 11))
    for row in pairs.itertuples():
        assert items_a.loc[(row.prompt_id, row.seed), "key"] == row.key_a
        assert items_b.loc[(row.prompt_id, row.seed), "key"] == row.key_b
        assert items_a.loc[(row.prompt_id, row.seed), "prompt"] == row.prompt
    assert (pairs["left_side"] == "A").sum() == 5, "A on the left in exactly half the pairs"
    assert list(pairs["prompt_id"] + "/" + pairs["seed"].astype(str)) != sorted(
        pairs["prompt_id"] + "/" + pairs["seed"].astype(str)), "presentation order is shuffled"
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        runs_rows = dict(con.execute("SELECT side, model FROM runs"))
    assert runs_rows == {"A": "model-a", "B": "model-b"}

    again = _create(runs, out="again.db")
    pd.testing.assert_frame_equal(_pairs(again), pairs)
    other = _pairs(_create(runs, "--seed", "7", out="other.db"))
    assert not other[["prompt_id", "seed", "left_side"]].equals(pairs[["prompt_id", "seed", "left_side"]])


def test_create_n_and_missing_images(tmp_path, capsys):
    make_run(tmp_path / "a", "model-a")
    make_run(tmp_path / "b", "model-b", skip_images=3)
    pairs = _pairs(_create(tmp_path, "--n", "4"))
    assert len(pairs) == 4 and pairs["left_side"].value_counts().to_dict() == {"A": 2, "B": 2}
    capsys.readouterr()
    pairs = _pairs(_create(tmp_path, "--n", "50", out="all.db"))
    err = capsys.readouterr().err
    assert len(pairs) == 7 and "3 of 10 images are missing" in err and "only 7" in err
    missing = set(RunStore(tmp_path / "b").read_items()["key"][:3])
    assert not missing & set(pairs["key_b"])


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_create_refuses_bad_runs(tmp_path, capsys):
    make_run(tmp_path / "a", "model-a")
    make_run(tmp_path / "b", "model-b", prompt_set="other-set")
    out = tmp_path / "s.db"
    assert _exit(["study", "create", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 2
    assert "different prompt sets" in capsys.readouterr().err and not out.exists()
    assert _exit(["study", "create", "--runs", str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(out)]) == 1
    assert "same folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _exit(["study", "create", "--runs", str(tmp_path / "a"), str(tmp_path / "empty"), "--out", str(out)]) == 1
    assert "not a molebench run folder" in capsys.readouterr().err and not out.exists()


def test_create_refuses_to_overwrite_votes(runs, capsys):
    path = _create(runs)
    con = db.connect(path)
    db.add_vote(con, 1, "ann", "overall", "left")
    con.close()
    argv = ["study", "create", "--runs", str(runs / "a"), str(runs / "b"), "--out", str(path)]
    assert _exit(argv) == 1
    assert "already exists" in capsys.readouterr().err
    assert len(_vote_rows(path)) == 1
    main(argv + ["--force"])
    assert len(_vote_rows(path)) == 0


def test_connect_refuses_non_study_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        db.connect(tmp_path / "nope.db")
    (tmp_path / "junk.db").write_text("not sqlite at all, just text" * 10)
    with pytest.raises(InputError, match="not a molebench study database"):
        db.connect(tmp_path / "junk.db")
    assert _exit(["study", "serve", str(tmp_path / "nope.db")]) == 1


# --- HTTP -----------------------------------------------------------------------------------------------------------
def test_vote_flow_progress_and_blindness(client):
    http, path = client
    info = http.get("/api/study").json()
    assert [q["id"] for q in info["questions"]] == ["overall", "face", "hands"] and info["n_pairs"] == 10
    assert "model-a" not in http.get("/api/study").text and "model-a" not in http.get("/").text
    first = http.get("/api/next", params={"rater": "ann"}).json()
    assert first["pair"]["id"] == 1 and first["progress"] == {"done": 0, "total": 10, "votes": 0}
    for question, choice in (("overall", "left"), ("face", "tie")):
        response = http.post("/api/votes", json={"pair_id": 1, "rater": "ann", "question": question, "choice": choice})
        assert response.status_code == 201, response.text
    state = http.get("/api/next", params={"rater": "ann"}).json()
    assert state["pair"]["id"] == 1 and state["pair"]["answers"] == {"overall": "left", "face": "tie"}
    response = http.post("/api/votes", json={"pair_id": 1, "rater": "ann", "question": "hands", "choice": "right"})
    assert response.json()["progress"] == {"done": 1, "total": 10, "votes": 3}
    assert http.get("/api/next", params={"rater": "ann"}).json()["pair"]["id"] == 2
    assert http.get("/api/next", params={"rater": "bob"}).json()["pair"]["id"] == 1, "progress is per rater"
    left_side = _pairs(path).set_index("id").loc[1, "left_side"]
    right_side = "B" if left_side == "A" else "A"
    assert [(r[2], r[4]) for r in _vote_rows(path)] == [("overall", left_side), ("face", "tie"), ("hands", right_side)]


def test_unknown_pair_is_404_and_stores_nothing(client):
    http, path = client
    response = http.post("/api/votes", json={"pair_id": 11, "rater": "ann", "question": "overall", "choice": "left"})
    assert response.status_code == 404 and "unknown pair id 11" in response.json()["detail"]
    assert http.get("/api/pairs/999").status_code == 404
    assert http.get("/images/999/left").status_code == 404
    assert _vote_rows(path) == []
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 0, "refused vote leaves no rater row"


HUGE_ID = "12345678901234567890123456"  # 26 digits: no SQLite integer holds it


@pytest.mark.parametrize("pair_id, status", [("NaN", 422), ("Infinity", 422), ("-Infinity", 422), ("1e400", 422),
                                             (HUGE_ID, 404), (str(2 ** 63), 404)])
def test_out_of_range_vote_pair_ids_are_refused_not_500(client, pair_id, status):
    """Python's JSON reader takes NaN, 1e400 (inf) and integers of any size; none may become a server error."""
    http, path = client
    body = f'{{"pair_id": {pair_id}, "rater": "ann", "question": "overall", "choice": "left"}}'.encode()
    response = http.post("/api/votes", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    assert _vote_rows(path) == []
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 0


@pytest.mark.parametrize("url", [f"/images/{HUGE_ID}/left", f"/images/{HUGE_ID}/right", f"/api/pairs/{HUGE_ID}",
                                 f"/api/pairs/{HUGE_ID}?rater=ann", f"/api/pairs/{2 ** 63}"])
def test_out_of_range_pair_ids_in_urls_are_404(client, url):
    http, path = client
    response = http.get(url)
    assert response.status_code == 404 and "unknown pair id" in response.json()["detail"]
    assert _vote_rows(path) == []


def test_double_submission_is_409_and_keeps_the_first_vote(client):
    http, path = client
    vote = {"pair_id": 3, "rater": "ann", "question": "face", "choice": "left"}
    assert http.post("/api/votes", json=vote).status_code == 201
    for choice in ("left", "right"):
        response = http.post("/api/votes", json={**vote, "choice": choice})
        assert response.status_code == 409
        assert "already answered" in response.json()["detail"] and response.json()["existing"]["choice"] == "left"
    assert [r[3] for r in _vote_rows(path)] == ["left"]
    # Same vote sent by several clients at once: exactly one is stored.
    racing = {"pair_id": 4, "rater": "ann", "question": "hands", "choice": "tie"}
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(http.post("/api/votes", json=racing).status_code))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [201] + [409] * 5
    assert len(_vote_rows(path)) == 2


@pytest.mark.parametrize("body", [
    {"rater": "ann", "question": "overall", "choice": "left"},                       # no pair id
    {"pair_id": 1, "rater": "ann", "question": "teeth", "choice": "left"},          # unknown question
    {"pair_id": 1, "rater": "ann", "question": "overall", "choice": "both"},        # unknown choice
    {"pair_id": "1", "rater": "ann", "question": "overall", "choice": "left"},      # id as text
    {"pair_id": 1.5, "rater": "ann", "question": "overall", "choice": "left"},      # id not an integer
    {"pair_id": True, "rater": "ann", "question": "overall", "choice": "left"},     # id as boolean
    {"pair_id": 0, "rater": "ann", "question": "overall", "choice": "left"},        # ids start at 1
    {"pair_id": 1, "rater": "", "question": "overall", "choice": "left"},           # empty rater
    {"pair_id": 1, "rater": "   ", "question": "overall", "choice": "left"},        # blank rater
    {"pair_id": 1, "rater": "a\x00b", "question": "overall", "choice": "left"},     # control character
    {"pair_id": 1, "rater": "x" * 65, "question": "overall", "choice": "left"},     # too long
    {"pair_id": 1, "rater": "ann", "question": "overall", "choice": "left", "winner": "A"},  # unknown field
    [1, "ann", "overall", "left"],                                                  # not an object
])
def test_malformed_vote_is_422_and_stores_nothing(client, body):
    http, path = client
    response = http.post("/api/votes", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert _vote_rows(path) == []


def test_unparseable_requests_are_422(client):
    http, path = client
    assert http.post("/api/votes", content=b"{not json", headers={"content-type": "application/json"}
                     ).status_code == 422
    assert http.post("/api/votes", content=b"", headers={"content-type": "application/json"}).status_code == 422
    assert http.get("/api/next").status_code == 422, "rater is required"
    assert http.get("/api/pairs/abc").status_code == 422
    assert _vote_rows(path) == []


def test_huge_bodies_are_413_and_store_nothing(client):
    http, path = client
    vote = {"pair_id": 1, "rater": "ann", "question": "overall", "choice": "left"}
    padded = {**vote, "rater": "x" * 20_000}
    assert http.post("/api/votes", json=padded).status_code == 413  # declared length over the limit

    def chunks():  # no declared length: refused while it streams in
        yield b'{"pair_id": 1, "rater": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'", "question": "overall", "choice": "left"}'

    response = http.post("/api/votes", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert _vote_rows(path) == []
    assert http.post("/api/votes", json=vote).status_code == 201, "a normal vote still passes"


def test_images_come_from_the_run_folders_only(client, runs):
    http, path = client
    pair = _pairs(path).set_index("id").loc[2]
    left, right = ("a", "b") if pair["left_side"] == "A" else ("b", "a")
    left_file = runs / left / pair[f"image_{'a' if left == 'a' else 'b'}"]
    right_file = runs / right / pair[f"image_{'a' if right == 'a' else 'b'}"]
    assert http.get("/images/2/left").content == left_file.read_bytes()
    assert http.get("/images/2/right").content == right_file.read_bytes()
    for url in ("/images/2/up", "/images/2/..%2F..%2Fmanifest.json", "/images/2/left/../../a/manifest.json",
                "/images/..%2Fa/left"):
        assert http.get(url).status_code in (404, 422), url
    # A tampered database pointing outside the run folder is refused too.
    with sqlite3.connect(path) as con:
        con.execute("UPDATE pairs SET image_a = '../study.db', image_b = '../study.db' WHERE id = 2")
    assert http.get("/images/2/left").status_code == 404
    assert http.get("/images/2/right").status_code == 404


# --- statistics -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k,n", [(0, 1), (3, 10), (7, 10), (50, 100), (99, 100), (12, 12)])
def test_wilson_interval_matches_scipy(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = molebench_stats.wilson_interval(k, n)
    assert low == pytest.approx(expected.low, abs=1e-12) and high == pytest.approx(expected.high, abs=1e-12)


def test_fleiss_kappa_matches_the_published_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> P-bar 0.378, kappa 0.210.
    counts = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                       [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    p_bar, kappa = molebench_stats.fleiss_kappa(counts)
    assert round(p_bar, 3) == 0.378 and round(kappa, 3) == 0.210
    assert molebench_stats.fleiss_kappa([[2, 0, 0], [0, 2, 0]]) == pytest.approx((1.0, 1.0))
    assert math.isnan(molebench_stats.fleiss_kappa([[2, 0, 0], [3, 0, 0]])[1]), "undefined when only one answer is used"


def test_win_rates_and_agreement_from_votes(client, capsys, tmp_path):
    _, path = client
    left = _pairs(path).set_index("id")["left_side"].to_dict()
    want = {"A": {1: "ann", 2: "ann", 3: "ann", 4: "bob"}, "B": {5: "ann"}, "tie": {6: "ann"}}
    con = db.connect(path)
    for winner, votes in want.items():
        for pair_id, rater in votes.items():
            choice = "tie" if winner == "tie" else ("left" if left[pair_id] == winner else "right")
            db.add_vote(con, pair_id, rater, "overall", choice)
    db.add_vote(con, 1, "bob", "overall", "left" if left[1] == "A" else "right")  # agrees with ann on pair 1
    db.add_vote(con, 2, "bob", "overall", "tie")                                   # disagrees on pair 2
    con.close()
    rates = tally.win_rates(path).set_index(["question", "side"])
    a, b = rates.loc[("overall", "A")], rates.loc[("overall", "B")]
    assert (a.wins, a.losses, a.ties, a.n_votes, a.n_raters, a.n_pairs) == (5, 1, 2, 8, 2, 6)
    assert (b.wins, b.losses, b.ties) == (1, 5, 2)
    assert a.win_rate == pytest.approx(5 / 6) and a.win_rate + b.win_rate == pytest.approx(1)
    assert (a.ci_low, a.ci_high) == pytest.approx(molebench_stats.wilson_interval(5, 6))
    assert a.tie_rate == pytest.approx(2 / 8) and a.model == "model-a" and a.opponent == "model-b"
    face = rates.loc[("face", "A")]
    assert face.n_votes == 0 and math.isnan(face.win_rate) and math.isnan(face.ci_low)

    agree = tally.agreement(path).set_index("question")
    counts = np.array([[2, 0, 0], [1, 0, 1]])  # pair 1: A, A; pair 2: A, tie
    p_bar, kappa = molebench_stats.fleiss_kappa(counts)
    assert agree.loc["overall", "n_items"] == 2 and agree.loc["overall", "percent_agreement"] == pytest.approx(0.5)
    assert agree.loc["overall", "fleiss_kappa"] == pytest.approx(kappa) and p_bar == 0.5
    assert agree.loc["face", "n_items"] == 0 and math.isnan(agree.loc["face", "fleiss_kappa"])

    capsys.readouterr()
    csv, votes_csv = tmp_path / "out" / "results.csv", tmp_path / "votes.csv"
    main(["study", "results", str(path), "--csv", str(csv), "--votes-csv", str(votes_csv)])
    out = capsys.readouterr().out
    assert "model-a" in out and "83.3%" in out and "Fleiss" in out
    table = pd.read_csv(csv)
    assert list(table.columns[:len(tally.WIN_COLUMNS)]) == tally.WIN_COLUMNS and len(table) == 6
    assert table.loc[(table.question == "overall") & (table.side == "A"), "wins"].item() == 5
    assert len(pd.read_csv(votes_csv)) == 8


def test_only_loopback_hosts_count_as_private():
    from molebench.cli.study import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("localhost") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4") and not _is_loopback("example")


# --- "does not apply" answers and the criteria ----------------------------------------------------------------------
def test_not_applicable_is_stored_and_counted_apart_from_votes(client):
    http, path = client
    questions = {q["id"]: q for q in http.get("/api/study").json()["questions"]}
    assert questions["overall"]["not_applicable"] is None and "prompt" in questions["overall"]["definition"]
    assert questions["face"]["not_applicable"] == "No face visible"
    assert questions["hands"]["not_applicable"] == "No hands visible" and "fingers" in questions["hands"]["definition"]
    vote = {"pair_id": 1, "rater": "ann", "question": "overall", "choice": "na"}
    response = http.post("/api/votes", json=vote)
    assert response.status_code == 422 and "always applies" in response.text and _vote_rows(path) == []
    for pair_id, rater, question, choice in ((1, "ann", "overall", "left"), (1, "ann", "face", "na"),
                                             (1, "ann", "hands", "na"), (1, "bob", "face", "na"),
                                             (2, "ann", "face", "left"), (2, "bob", "face", "na")):
        response = http.post("/api/votes", json={"pair_id": pair_id, "rater": rater, "question": question,
                                                 "choice": choice})
        assert response.status_code == 201, response.text
    assert response.json()["progress"] == {"done": 0, "total": 10, "votes": 2}
    assert http.get("/api/next", params={"rater": "ann"}).json()["pair"]["id"] == 2, "n/a answers a question"
    assert [r[4] for r in _vote_rows(path) if r[3] == "na"] == ["na"] * 4
    rates = tally.win_rates(path).set_index(["question", "side"])
    face = rates.loc[("face", "A")]
    left_side = _pairs(path).set_index("id").loc[2, "left_side"]
    wins_a = int(left_side == "A")
    assert (face.n_votes, face.wins, face.losses, face.ties, face.not_applicable) == (1, wins_a, 1 - wins_a, 0, 3)
    assert face.n_raters == 1 and face.win_rate == wins_a and face.tie_rate == 0
    assert rates.loc[("hands", "B"), "not_applicable"] == 1 and rates.loc[("hands", "B"), "n_votes"] == 0
    agree = tally.agreement(path).set_index("question")  # pair 1: ann and bob both said "no face": agreement
    assert agree.loc["face", "n_items"] == 2 and agree.loc["face", "percent_agreement"] == pytest.approx(0.5)
    con = db.connect(path)
    with pytest.raises(InputError, match="always applies"):
        db.add_vote(con, 3, "ann", "overall", "na")
    con.close()


def test_a_schema_1_study_is_upgraded_keeping_its_votes(runs):
    path = _create(runs)
    with sqlite3.connect(path) as con:  # rebuild the file as schema 1 wrote it, with one vote
        con.executescript(
            "DROP TABLE votes; " + db.VOTES.format(name="votes", winners=db.TWO_RUN_WINNERS).replace(", 'na'", "") + db.VOTES_INDEX
            + "UPDATE study SET value = '1' WHERE key = 'schema_version'; "
            "DELETE FROM study WHERE key IN ('definitions', 'not_applicable');"
            "INSERT INTO raters (name, created) VALUES ('ann', 'x');"
            "INSERT INTO votes (pair_id, rater_id, question, choice, winner, created) VALUES (1, 1, 'face', 'tie', "
            "'tie', 'x');")
        with pytest.raises(sqlite3.IntegrityError):
            con.execute("INSERT INTO votes (pair_id, rater_id, question, choice, winner, created) VALUES "
                        "(2, 1, 'face', 'na', 'na', 'x')")
    con = db.connect(path)
    try:
        assert db.read_meta(con)["schema_version"] == 2 and db.read_meta(con)["definitions"] == db.DEFINITIONS
        db.add_vote(con, 2, "ann", "face", "na")
    finally:
        con.close()
    assert [(r[0], r[3], r[4]) for r in _vote_rows(path)] == [(1, "tie", "tie"), (2, "na", "na")]


def test_same_model_in_same_named_folders_gets_two_labels(tmp_path):
    from molebench.study.pairing import build_pairs

    make_run(tmp_path / "steps2" / "sd15", "sd15")
    make_run(tmp_path / "steps8" / "sd15", "sd15", colour=(40, 40, 200))
    infos, _, _ = build_pairs([tmp_path / "steps2" / "sd15", tmp_path / "steps8" / "sd15"], None, 0)
    assert [i.label for i in infos] == ["sd15 (steps2/sd15)", "sd15 (steps8/sd15)"]
