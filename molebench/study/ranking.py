"""Study results beside the scores: win rates per study, and a Bradley–Terry ranking when a study, or several
studies together, cover more than two runs.

A study compares two or more runs, two in each pair; several studies over overlapping runs (A vs B, B vs C, A vs C)
say more together than apart. The Bradley–Terry model gives each run a strength s with P(i beats j) = s_i / (s_i +
s_j), fitted by maximum likelihood to every vote of every study (Hunter's MM iteration, 2004). A tie counts as half a win for each
side; "does not apply" answers are no vote. Strengths are reported as log-strengths centred on their mean (a
difference of 1 is odds e:1), with a 95% percentile interval from a seeded bootstrap over the votes (resampled
within each study, so each study keeps its size). Runs are matched across studies by their folder path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from molebench.errors import InputError
from molebench.study import db
from molebench.study.tally import win_rates

RANK_COLUMNS = ["question", "rank", "run", "label", "log_strength", "ci_low", "ci_high", "n_votes"]
BOOTSTRAP = 999


def comparisons(db_paths: list[str | Path]) -> pd.DataFrame:
    """Every decisive or tied vote of the studies: study, question, run_a, run_b (folder paths), score_a (1, ½, 0)."""
    frames = []
    for path in db_paths:
        if not Path(path).is_file():
            raise InputError(f"study database not found: {path}")
        votes = db.votes_frame(path)
        con = db.connect(path)
        try:
            runs = db.read_runs(con)
        finally:
            con.close()
        votes = votes[votes["winner"] != db.NA]
        score = votes["pair_winner"].map({"A": 1.0, "B": 0.0, "tie": 0.5})
        paths = {side: _key(info.path) for side, info in runs.items()}
        frames.append(pd.DataFrame({"study": str(path), "question": votes["question"],
                                    "run_a": votes["side_a"].map(paths), "run_b": votes["side_b"].map(paths),
                                    "score_a": score}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["study", "question", "run_a", "run_b", "score_a"])


def _key(path: str) -> str:
    return str(Path(path).resolve())


def bradley_terry(votes: pd.DataFrame) -> pd.Series:
    """Log-strengths (mean 0) per run from rows (run_a, run_b, score_a)."""
    names = sorted(set(votes["run_a"]) | set(votes["run_b"]))
    index = {name: i for i, name in enumerate(names)}
    strength = _fit(votes["run_a"].map(index).to_numpy(), votes["run_b"].map(index).to_numpy(),
                    votes["score_a"].to_numpy(dtype=float), len(names))
    return pd.Series(strength, index=names)


def _fit(a: np.ndarray, b: np.ndarray, score: np.ndarray, k: int, iterations: int = 1000,
         tol: float = 1e-10) -> np.ndarray:
    """MM updates (Hunter 2004) with a weak prior of one tie between every two runs, so a run that won or lost
    every vote still gets a finite strength; returns log-strengths with mean 0."""
    wins = np.full((k, k), 0.5) - 0.5 * np.eye(k)
    np.add.at(wins, (a, b), score)
    np.add.at(wins, (b, a), 1.0 - score)
    games, total = wins + wins.T, wins.sum(axis=1)
    strength = np.ones(k)
    for _ in range(iterations):
        updated = total / (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated /= np.exp(np.log(updated).mean())
        done = np.max(np.abs(updated - strength)) < tol
        strength = updated
        if done:
            break
    return np.log(strength)


def ranking(db_paths: list[str | Path], seed: int = 0, resamples: int = BOOTSTRAP) -> pd.DataFrame:
    """Per question: runs ranked by Bradley–Terry log-strength with a 95% bootstrap interval (RANK_COLUMNS)."""
    votes = comparisons(db_paths)
    labels = _labels(db_paths)
    rows = []
    rng = np.random.default_rng(seed)
    for question, asked in votes.groupby("question", sort=False):
        names = sorted(set(asked["run_a"]) | set(asked["run_b"]))
        index = {name: i for i, name in enumerate(names)}
        a, b = asked["run_a"].map(index).to_numpy(), asked["run_b"].map(index).to_numpy()
        score = asked["score_a"].to_numpy(dtype=float)
        fitted = _fit(a, b, score, len(names))
        studies = [np.flatnonzero((asked["study"] == study).to_numpy()) for study in asked["study"].unique()]
        draws = np.empty((resamples, len(names)))
        for r in range(resamples):  # resampled within each study: every study keeps its number of votes
            pick = np.concatenate([rows_[rng.integers(0, len(rows_), len(rows_))] for rows_ in studies])
            draws[r] = _fit(a[pick], b[pick], score[pick], len(names))
        low, high = np.quantile(draws, [0.025, 0.975], axis=0)
        counts = pd.concat([asked["run_a"], asked["run_b"]]).value_counts()
        for rank, i in enumerate(np.argsort(-fitted, kind="stable"), start=1):
            rows.append({"question": question, "rank": rank, "run": names[i],
                         "label": labels.get(names[i], Path(names[i]).name), "log_strength": float(fitted[i]),
                         "ci_low": float(low[i]), "ci_high": float(high[i]), "n_votes": int(counts.get(names[i], 0))})
    return pd.DataFrame(rows, columns=RANK_COLUMNS)


def study_win_rates(db_paths: list[str | Path]) -> pd.DataFrame:
    """`tally.win_rates` of every study, one frame, with the study's path and each side's resolved folder."""
    frames = []
    for path in db_paths:
        if not Path(path).is_file():
            raise InputError(f"study database not found: {path}")
        rates = win_rates(path)
        rates.insert(0, "study", str(path))
        rates["run"] = [_key(p) for p in rates["run"]]
        frames.append(rates)
    return pd.concat(frames, ignore_index=True)


def _labels(db_paths: list[str | Path]) -> dict[str, str]:
    labels = {}
    for path in db_paths:
        con = db.connect(path)
        try:
            for info in db.read_runs(con).values():
                labels.setdefault(_key(info.path), info.label)
        finally:
            con.close()
    return labels


def describe(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:+.2f}"
