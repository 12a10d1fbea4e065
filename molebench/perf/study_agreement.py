"""Study agreement on a large simulated study: the vectorised computation (per-pair vote counts, bootstrap as matrix
products) next to the literal rule — ImageReward's pairwise accuracy, one vote at a time in Python — for the point
estimates, which must be equal.

Simulated raters: each pair has a `truth` metric; each of RATERS raters per pair says tie with probability TIE, else
prefers the image `truth` prefers with probability Q; `noise` is a metric unrelated to the votes. Face answers are
"does not apply" with probability NA. tests/study/test_study_agreement.py uses the same simulation.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from molebench.study import agreement as ag
from molebench.study.db import NA, QUESTIONS

PAIRS, RATERS, Q, TIE, NA_SHARE, RESAMPLES = 5000, 3, 0.8, 0.1, 0.2, 2000
TRUTH = ag.Metric("truth", "score", True)
NOISE = ag.Metric("noise", "score", True)


def simulate(seed: int, n_pairs: int, raters: int, q: float, tie: float = 0.0, na: float = 0.0
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(votes: pair_id, question, winner; per-pair signs of `truth` and `noise`), as described above."""
    rng = np.random.default_rng(seed)
    truth_a, truth_b = rng.normal(size=n_pairs), rng.normal(size=n_pairs)
    pair_signs = pd.DataFrame({TRUTH.name: ag.signs(truth_a, truth_b, True),
                               NOISE.name: ag.signs(rng.normal(size=n_pairs), rng.normal(size=n_pairs), True)},
                              index=pd.Index(np.arange(1, n_pairs + 1), name="pair_id"))
    rows = []
    for question in QUESTIONS:
        pair = np.repeat(pair_signs.index.to_numpy(), raters)
        follows = rng.random(len(pair)) < q
        winner = np.where(np.repeat(truth_a > truth_b, raters) == follows, "A", "B")
        winner = np.where(rng.random(len(pair)) < tie, "tie", winner)
        if question == "face":
            winner = np.where(rng.random(len(pair)) < na, NA, winner)
        rows.append(pd.DataFrame({"pair_id": pair, "question": question, "winner": winner}))
    return pd.concat(rows, ignore_index=True), pair_signs


def literal(votes: pd.DataFrame, pair_signs: pd.DataFrame, names: list[str]) -> dict[tuple[str, str], float]:
    """Accuracy per (question, metric) by the rule, one vote at a time: human ties and n/a skipped, metric tie wrong."""
    signs = {name: dict(zip(pair_signs.index, pair_signs[name])) for name in names}
    tally: dict[tuple[str, str], list[int]] = {}
    for pair, question, winner in votes[["pair_id", "question", "winner"]].itertuples(index=False):
        if winner not in ("A", "B"):
            continue
        for name in names:
            sign = signs[name][pair]
            if sign != sign:  # missing value: this metric cannot rank the pair
                continue
            counts = tally.setdefault((question, name), [0, 0])
            counts[0] += int(sign == (1 if winner == "A" else -1))
            counts[1] += 1
    return {key: right / n for key, (right, n) in tally.items()}


def vectorised(votes: pd.DataFrame, pair_signs: pd.DataFrame, names: list[str]) -> dict[tuple[str, str], float]:
    """The same point estimates from agreement.py's per-pair counts."""
    found = {}
    for question in QUESTIONS:
        a, b, _, _ = ag.vote_counts(votes[votes["question"] == question], pair_signs.index.to_numpy())
        for name in names:
            right, counted, _ = ag.metric_counts(a, b, pair_signs[name].to_numpy(dtype=float))
            found[(question, name)] = right.sum() / counted.sum()
    return found


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def run(console) -> None:
    votes, pair_signs = simulate(0, PAIRS, RATERS, Q, TIE, NA_SHARE)
    names = [TRUTH.name, NOISE.name]
    fast, fast_s = _timed(vectorised, votes, pair_signs, names)
    slow, slow_s = _timed(literal, votes, pair_signs, names)
    worst = max(abs(fast[key] - slow[key]) for key in slow)
    if set(fast) != set(slow) or worst > 1e-12:
        raise AssertionError(f"vectorised and literal accuracies differ (by up to {worst})")
    _, full_s = _timed(ag.agreement_frame, votes, pair_signs, [TRUTH, NOISE], QUESTIONS, RESAMPLES, 0)
    console.print(f"{len(votes)} votes on {PAIRS} pairs ({RATERS} raters, 3 questions, 2 metrics): point estimates "
                  f"per-pair counts {fast_s:.3f} s vs the literal per-vote loop {slow_s:.3f} s (×{slow_s / fast_s:.0f}, "
                  f"same values); the whole table with the ceiling and {RESAMPLES} bootstrap resamples {full_s:.2f} s")
