"""Metric–human agreement: how often does each automatic metric prefer the image the raters preferred?

The definition is ImageReward's pairwise accuracy (Xu et al. 2023; the `acc` function of the THUDM/ImageReward
repository's test.py, which HPS v2 reuses as `calc_ImageReward` to score its model on ImageReward's test set):

- only pairs where the human prefers one image count: **human ties are left out**;
- the metric is right when it scores the preferred image strictly better (in the metric's direction); **a metric
  tie counts as wrong** (it stays in n and is not credited);
- accuracy = right / counted.

Here each rater's decisive vote (A or B) on a pair is one human judgement, so a pair three people judged counts three
times. "Does not apply" answers (no face / no hands visible) are no preference and are left out like human ties. A
pair whose image lacks the metric's value (a region metric where no face was found) is left out for that metric only:
its `n` says how many votes it could rank.

The **human ceiling** uses the same rule with the other raters in the metric's place: each decisive vote on a pair
with two or more decisive votes against the majority of the *other* raters' decisive votes; a vote whose others are
split evenly has no reference and is left out. With independent raters who each agree with the truth with probability
q, two raters per pair give q² + (1 − q)², the chance two raters agree.

95% intervals: percentile bootstrap over pairs (votes on one pair are correlated, so pairs are resampled whole), the
same resamples for every metric of a question, seeded. Everything is counted per pair with numpy (A votes and B votes
per pair, the metric's sign per pair), so thousands of votes take milliseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from molebench.errors import InputError
from molebench.store import RunStore
from molebench.store.summary import metric_fact
from molebench.study import db

CEILING = "human ceiling"
COLUMNS = ["question", "question_label", "kind", "name", "scorer", "metric", "region", "accuracy", "ci_low", "ci_high",
           "n", "correct", "metric_ties", "n_pairs", "human_ties", "not_applicable"]
REGIONS = {"face": "face", "hand": "hand", "hands": "hand"}  # scorer suffix after '@' -> the region it scores
QUESTION_REGION = {"face": "face", "hands": "hand"}  # questions about one region; "overall" takes whole images only
DEFAULT_RESAMPLES = 2000
BOOTSTRAP_CHUNK = 250


@dataclass(frozen=True)
class Metric:
    """One per-image metric of the study's runs, with the direction that makes a value better."""

    scorer: str
    metric: str
    higher_is_better: bool

    @property
    def name(self) -> str:
        return f"{self.scorer}/{self.metric}"

    @property
    def region(self) -> str:
        """'face' or 'hand' for a region scorer (`hps-v2.1@face`), 'image' for a whole-image one."""
        _, _, suffix = self.scorer.partition("@")
        return REGIONS.get(suffix, "image")


@dataclass
class Agreement:
    """The agreement table (COLUMNS) and the metrics left out, each with its reason."""

    table: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0


def signs(values_a: np.ndarray, values_b: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """+1 where the metric prefers image A, -1 image B, 0 a tie, NaN where either value is missing."""
    diff = np.asarray(values_a, dtype=float) - np.asarray(values_b, dtype=float)
    return np.sign(diff if higher_is_better else -diff)


def questions_metrics(metrics: list[Metric], question: str) -> list[Metric]:
    """The metrics a question is scored against: the question's region metrics first, then whole-image ones."""
    region = QUESTION_REGION.get(question)
    own = [m for m in metrics if region is not None and m.region == region]
    return own + [m for m in metrics if m.region == "image"]


def vote_counts(votes: pd.DataFrame, pair_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Decisive A and B votes per pair (aligned with `pair_ids`), and the human ties and n/a answers left out."""
    position = pd.Index(pair_ids).get_indexer(votes["pair_id"])
    if (position < 0).any():
        raise InputError(f"votes name pairs the study does not have: {sorted(set(votes['pair_id'][position < 0]))}")
    winner = votes["winner"].to_numpy()
    size = len(pair_ids)
    a = np.bincount(position[winner == "A"], minlength=size).astype(float)
    b = np.bincount(position[winner == "B"], minlength=size).astype(float)
    return a, b, int((winner == "tie").sum()), int((winner == db.NA).sum())


def ceiling_counts(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: votes agreeing with the majority of the other raters' decisive votes, and votes with such a majority.

    A rater who voted A sees a - 1 other A votes and b B votes: agreement when a - 1 > b, no reference when equal."""
    correct = a * (a - 1 > b) + b * (b - 1 > a)
    counted = a * (a - 1 != b) + b * (b - 1 != a)
    return correct, counted


def metric_counts(a: np.ndarray, b: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: votes the metric agrees with, votes counted (the metric has both values), votes on metric ties."""
    known = ~np.isnan(sign)
    correct = a * (sign == 1) + b * (sign == -1)
    counted = (a + b) * known
    return correct, counted, (a + b) * (sign == 0)


def resample_counts(rng: np.random.Generator, pairs: int, size: int) -> np.ndarray:
    """(size, pairs): how often each pair is drawn in each resample of `pairs` draws with replacement."""
    drawn = rng.integers(0, pairs, size=(size, pairs)) + np.arange(size)[:, None] * pairs
    return np.bincount(drawn.ravel(), minlength=size * pairs).reshape(size, pairs).astype(float)


def bootstrap(correct: np.ndarray, counted: np.ndarray, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95% interval of sum(correct) / sum(counted) per row, resampling the columns (pairs) whole.

    correct, counted: (rows, pairs). Every row sees the same resamples (seeded), drawn in chunks to bound memory."""
    rows, pairs = correct.shape
    if pairs == 0:
        return np.full(rows, math.nan), np.full(rows, math.nan)
    rng = np.random.default_rng(seed)
    estimates = []
    for start in range(0, resamples, BOOTSTRAP_CHUNK):
        weights = resample_counts(rng, pairs, min(BOOTSTRAP_CHUNK, resamples - start))
        with np.errstate(invalid="ignore", divide="ignore"):
            estimates.append((weights @ correct.T) / (weights @ counted.T))
    stacked = np.vstack(estimates)
    low, high = np.full(rows, math.nan), np.full(rows, math.nan)
    for row in range(rows):
        finite = stacked[:, row][np.isfinite(stacked[:, row])]
        if counted[row].sum() > 0 and len(finite):
            low[row], high[row] = np.percentile(finite, [2.5, 97.5])
    return low, high


def question_rows(votes: pd.DataFrame, pair_signs: pd.DataFrame, metrics: list[Metric], question: str, label: str,
                  resamples: int, seed: int) -> list[dict]:
    """The ceiling row and one row per metric for one question (votes: that question's votes only)."""
    pair_ids = pair_signs.index.to_numpy()
    a, b, human_ties, not_applicable = vote_counts(votes, pair_ids)
    chosen = questions_metrics(metrics, question)
    ceiling = ceiling_counts(a, b)
    counts = [metric_counts(a, b, pair_signs[m.name].to_numpy(dtype=float)) for m in chosen]
    correct = np.vstack([ceiling[0], *(c[0] for c in counts)])
    counted = np.vstack([ceiling[1], *(c[1] for c in counts)])
    voted = (a + b) > 0  # only pairs with a decisive vote carry information; resampling the rest changes nothing
    low, high = bootstrap(correct[:, voted], counted[:, voted], resamples, seed)
    ties = [0.0] + [float(c[2].sum()) for c in counts]
    rows = []
    for index, metric in enumerate([None, *chosen]):
        n, right = float(counted[index].sum()), float(correct[index].sum())
        rows.append({
            "question": question, "question_label": label, "kind": "ceiling" if metric is None else "metric",
            "name": CEILING if metric is None else metric.name, "scorer": "" if metric is None else metric.scorer,
            "metric": "" if metric is None else metric.metric, "region": "" if metric is None else metric.region,
            "accuracy": right / n if n else math.nan, "ci_low": low[index], "ci_high": high[index],
            "n": int(n), "correct": int(right), "metric_ties": int(ties[index]),
            "n_pairs": int((counted[index] > 0).sum()), "human_ties": human_ties, "not_applicable": not_applicable,
        })
    return rows


def agreement_frame(votes: pd.DataFrame, pair_signs: pd.DataFrame, metrics: list[Metric], questions: dict[str, str],
                    resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Pairwise accuracy of every metric and the human ceiling, per question.

    votes: columns pair_id, question, winner (A / B / tie / na); pair_signs: one row per study pair (index pair_id),
    one column per metric name with `signs` of that pair; metrics: the columns' metrics."""
    if resamples < 100:
        raise InputError(f"--resamples must be at least 100, got {resamples}")
    rows = []
    for question, label in questions.items():
        asked = votes[votes["question"] == question]
        rows += question_rows(asked, pair_signs, metrics, question, label, resamples, seed)
    return pd.DataFrame(rows, columns=COLUMNS)


def _run_scores(path: str) -> tuple[pd.DataFrame, dict]:
    store = RunStore(path)
    manifest = store.read_manifest()
    if manifest is None:
        raise InputError(f"the study's run folder {path} is gone or not a run (no manifest.json); the study reads "
                         "each image's scores from it")
    return store.read_scores(), manifest.scorers


def _direction(prints: dict, scorer: str, metric: str) -> tuple[bool | None, str | None]:
    """(higher_is_better, None) or (None, why the metric cannot be used)."""
    try:
        value = metric_fact(prints, scorer, metric, "higher_is_better")
    except InputError:
        return None, "its direction is not recorded (rescore with `molebench score RUN --scorers " + scorer + "`)"
    if value is None:
        return None, "it has no direction (a count, not a quality score)"
    return bool(value), None


def _versions(scores: pd.DataFrame) -> pd.Series:
    return scores.groupby("scorer")["scorer_version"].agg(lambda v: tuple(sorted(set(map(str, v)))))


def study_signs(db_path: str | Path) -> tuple[pd.DataFrame, list[Metric], list[str]]:
    """Per study pair (index pair_id), the sign of every per-image metric every run scored; metrics left out, why."""
    con = db.connect(db_path)
    try:
        runs = db.read_runs(con)
        pairs = db.pairs_frame(con)
    finally:
        con.close()
    loaded = {side: _run_scores(info.path) for side, info in runs.items()}
    versions = {side: _versions(scores) for side, (scores, _) in loaded.items()}
    names = {side: set(map(tuple, scores[["scorer", "metric"]].drop_duplicates().to_numpy()))
             for side, (scores, _) in loaded.items()}
    values = {side: scores.set_index(["scorer", "metric", "key"])["value"].sort_index()
              for side, (scores, _) in loaded.items()}
    common = set.intersection(*names.values())
    columns, metrics, skipped = {}, [], []
    for scorer, metric in sorted(common):
        name = f"{scorer}/{metric}"
        seen = {v for side in runs for v in versions[side][scorer]}
        if any(len(versions[side][scorer]) > 1 for side in runs) or len(seen) > 1:
            skipped.append(f"{name}: the runs hold other scorer versions ({', '.join(sorted(seen))}); rescore every "
                           "run with the same one")
            continue
        direction, why = _direction(next(iter(loaded.values()))[1], scorer, metric)
        if why:
            skipped.append(f"{name}: {why}")
            continue
        a, b = (_pair_values(values, pairs, slot, scorer, metric) for slot in ("a", "b"))
        columns[name] = signs(a, b, bool(direction))
        metrics.append(Metric(scorer, metric, bool(direction)))
    for scorer, metric in sorted(set.union(*names.values()) - common):
        what = "only one run has it" if len(runs) == 2 else "not every run has it"
        skipped.append(f"{scorer}/{metric}: {what}; add it with `molebench study agreement --score {scorer}`")
    return pd.DataFrame(columns, index=pd.Index(pairs["id"], name="pair_id")), metrics, skipped


def _pair_values(values: dict[str, pd.Series], pairs: pd.DataFrame, slot: str, scorer: str, metric: str
                 ) -> np.ndarray:
    """Each pair's value of one metric for its first (`slot` a) or second (b) image, read from that image's run."""
    out = np.full(len(pairs), np.nan)
    for side, group in pairs.groupby(f"side_{slot}"):
        out[group.index] = values[side].loc[(scorer, metric)].reindex(group[f"key_{slot}"]).to_numpy(dtype=float)
    return out


def study_agreement(db_path: str | Path, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Agreement:
    """Pairwise accuracy of every per-image metric of the study's runs against the study's votes, per question."""
    pair_signs, metrics, skipped = study_signs(db_path)
    votes = db.votes_frame(db_path)
    votes["winner"] = votes["pair_winner"]  # A / B: the pair's first / second image, whichever runs they come from
    con = db.connect(db_path)
    try:
        questions = db.read_meta(con).get("questions", db.QUESTIONS)
    finally:
        con.close()
    table = agreement_frame(votes, pair_signs, metrics, questions, resamples, seed)
    return Agreement(table, skipped, resamples, seed)


DEFINITION = ("pairwise accuracy as ImageReward defines it (THUDM/ImageReward test.py, reused by HPS v2): over decisive "
              "human votes, the share where the metric scores the chosen image strictly better; human ties and 'does "
              "not apply' answers are left out, a metric tie counts as wrong. Human ceiling: each decisive vote "
              "against the majority of the other raters' decisive votes on the pair. 95% CI: bootstrap over pairs.")
FORMATS = ("table", "md", "csv", "json")


def pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}%"


def interval(row) -> str:
    return "-" if row.ci_low != row.ci_low else f"{100 * row.ci_low:.1f}–{100 * row.ci_high:.1f}%"


def display_rows(result: Agreement) -> list[list[str]]:
    """question, metric, region, accuracy, 95% CI, n, pairs, metric ties: the cells of the md, terminal and HTML
    tables (the ceiling first in each question)."""
    return [[row.question_label, row.name, row.region or "-", pct(row.accuracy), interval(row), str(row.n),
             str(row.n_pairs), str(row.metric_ties) if row.kind == "metric" else "-"]
            for row in result.table.itertuples()]


HEADERS = ["question", "metric", "region", "accuracy", "95% CI", "n", "pairs", "metric ties"]


def to_markdown(result: Agreement) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in display_rows(result)]
    notes = [f"Definition: {DEFINITION} {result.resamples} resamples, seed {result.seed}."]
    notes += [f"Left out: {reason}." for reason in result.skipped]
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def to_json(result: Agreement) -> str:
    rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in result.table.to_dict(orient="records")]
    payload = {"definition": DEFINITION, "resamples": result.resamples, "seed": result.seed, "rows": rows,
               "skipped": result.skipped}
    return json.dumps(payload, indent=2, default=_plain) + "\n"


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)
