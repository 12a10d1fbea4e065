"""Study results: win rates with 95% confidence intervals and agreement between raters.

Win rate: a model's share of the decisive votes (ties excluded): wins / (wins + losses). Ties are reported beside it
as tie_rate = ties / votes, so a study full of ties is visible rather than hidden in the rate. "Does not apply"
answers (no face / no hands visible) are no vote for either side: they are counted apart (not_applicable) and left
out of n_votes, the win rate and the tie rate. The 95% interval
is the Wilson score interval of that proportion (good coverage at small n, never outside [0, 1]). It treats every
vote as independent; votes of several raters on the same pair are correlated, so with many raters per pair the
interval is somewhat too narrow.

Agreement (only pairs judged by two or more raters): the mean share of rater pairs that gave the same answer on a pair
(percent_agreement, Fleiss' P-bar) and Fleiss' kappa over the answers A / B / tie. With a varying number of raters
per pair this is the usual generalisation; "does not apply" is a fourth answer there (raters who both
say no face is visible agree): P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)), p_j = sum_i n_ij / sum n_i.

`win_rates(db_path)` is the entry point for other commands (`compare` shows it beside HPS / ImageReward).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from molebench.stats import fleiss_kappa, wilson_interval
from molebench.study import db

WIN_COLUMNS = ["question", "question_label", "side", "model", "label", "opponent", "run", "n_votes", "wins", "losses",
               "ties", "win_rate", "ci_low", "ci_high", "tie_rate", "n_pairs", "n_raters", "not_applicable"]
AGREEMENT_COLUMNS = ["question", "n_raters", "n_items", "percent_agreement", "fleiss_kappa"]
ANSWERS = ("A", "B", "tie", db.NA)


def _read(db_path: str | Path) -> tuple[pd.DataFrame, dict[str, db.RunInfo], dict[str, str]]:
    votes = db.votes_frame(db_path)
    con = db.connect(db_path)
    try:
        runs, questions = db.read_runs(con), db.read_meta(con).get("questions", db.QUESTIONS)
    finally:
        con.close()
    return votes, runs, questions


def win_rates(db_path: str | Path) -> pd.DataFrame:
    """One row per question and run: wins, losses, ties, win rate (ties excluded) with Wilson 95% CI.

    Columns: WIN_COLUMNS. n_votes, n_pairs and n_raters count the votes for or against the run, or tie, in the pairs
    that show it; not_applicable counts its "does not apply" answers. `side` is 'A', 'B', 'C', ... (the order given to
    `study create`), `model` the registered model name, `label` the display name (model name, plus the run folder
    when runs share a model), `opponent` the label of the other run (with three or more runs: of every other run,
    against all of which the rate is pooled; the Bradley–Terry ranking is the summary there), `run` the run folder.
    Questions without votes appear with n_votes = 0 and NaN rates.
    """
    votes, runs, questions = _read(db_path)
    rows = []
    for question, label in questions.items():
        asked = votes[votes["question"] == question]
        for side, run in runs.items():
            rows.append({"question": question, "question_label": label, "side": side, "model": run.model,
                         "label": run.label, "opponent": ", ".join(r.label for s, r in runs.items() if s != side),
                         "run": run.path, **_side_counts(asked, side)})
    return pd.DataFrame(rows, columns=WIN_COLUMNS)


def _side_counts(asked: pd.DataFrame, side: str) -> dict[str, Any]:
    """Votes on the pairs that show run `side`: its wins, losses, ties, rates and counts."""
    shown = asked[(asked["side_a"] == side) | (asked["side_b"] == side)]
    subset = shown[shown["winner"] != db.NA]
    wins, ties = int((subset["winner"] == side).sum()), int((subset["winner"] == "tie").sum())
    losses = len(subset) - wins - ties
    decisive, total = wins + losses, len(subset)
    low, high = wilson_interval(wins, decisive)
    return {"n_votes": total, "wins": wins, "losses": losses, "ties": ties,
            "win_rate": wins / decisive if decisive else math.nan, "ci_low": low, "ci_high": high,
            "tie_rate": ties / total if total else math.nan, "n_pairs": int(subset["pair_id"].nunique()),
            "n_raters": int(subset["rater"].nunique()), "not_applicable": int(len(shown) - len(subset))}


def agreement(db_path: str | Path) -> pd.DataFrame:
    """Per question: raters, pairs judged by >= 2 raters, percent agreement and Fleiss' kappa (NaN when undefined)."""
    votes, _, questions = _read(db_path)
    rows = []
    for question in questions:
        subset = votes[votes["question"] == question]
        table = pd.crosstab(subset["pair_id"], subset["pair_winner"]).reindex(columns=list(ANSWERS), fill_value=0)
        table = table[table.sum(axis=1) >= 2]
        if table.empty:
            p_bar, kappa = math.nan, math.nan
        else:
            p_bar, kappa = fleiss_kappa(table.to_numpy())
        rows.append({"question": question, "n_raters": int(subset["rater"].nunique()), "n_items": len(table),
                     "percent_agreement": p_bar, "fleiss_kappa": kappa})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def results_frame(db_path: str | Path) -> pd.DataFrame:
    """Win rates with the question's agreement columns: what `study results --csv` writes."""
    agree = agreement(db_path).drop(columns="n_raters").rename(
        columns={"n_items": "agreement_items"})
    return win_rates(db_path).merge(agree, on="question", how="left")
