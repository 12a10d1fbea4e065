"""A run's summary (summary.csv): mean and spread of each scorer metric, the quick look; `compare` does statistics.

Display scale and direction come from the scorer fingerprints in the run's manifest (written when the scores were
made), so a summary or report never imports a scorer (no torch) and never guesses a scale. Here, beside the store,
because both the runner (which writes the summary) and the reports (which read runs) use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd
from rich.table import Table

from molebench.errors import InputError
from molebench.stats import decimals, mean_ci, mean_se

if TYPE_CHECKING:
    from molebench.store.run_store import RunStore

SUMMARY_COLUMNS = ["scorer", "scorer_version", "metric", "n", "mean", "std", "display_scale", "higher_is_better",
                   "level", "n_reference"]
# repeats.csv of a `--protocol paper` run (molebench.runner.protocol): per repeat, then the mean over repeats
REPEAT_SUMMARY_COLUMNS = ["scorer", "scorer_version", "metric", "repeat", "sample_seed", "n_prompts", "mean", "se",
                          "ci_low", "ci_high", "paper_scale"]
REPEAT_ALL = "mean"  # the `repeat` value of the mean-over-repeats row


def metric_fact(scorer_prints: Mapping[str, Any], scorer: str, metric: str, fact: str) -> Any:
    """`display_scale` or `higher_is_better` of `scorer/metric` as its fingerprint recorded it."""
    facts = (scorer_prints.get(scorer) or {}).get(fact) or {}
    if metric not in facts:
        raise InputError(f"the run's manifest records no {fact} for {scorer}/{metric} (scored by an older molebench "
                         f"or written by hand); record it with `molebench score RUN_DIR --scorers {scorer}`")
    return facts[metric]


def display_scale(scorer_prints: Mapping[str, Any], scorer: str, metric: str) -> float:
    """Factor reports multiply raw values by (HPS ×100)."""
    return float(metric_fact(scorer_prints, scorer, metric, "display_scale"))


def paper_scale(scorer_prints: Mapping[str, Any], scorer: str, metric: str) -> float:
    """Factor the MoLE paper's tables multiply raw values by (HPS ×100 and ImageReward ×100)."""
    return float(metric_fact(scorer_prints, scorer, metric, "paper_scale"))


def higher_is_better(scorer_prints: Mapping[str, Any], scorer: str, metric: str) -> bool | None:
    """The metric's direction as its fingerprint recorded it: True, False (FID: lower is better) or None (no
    direction: face and hand counts, never gated)."""
    value = metric_fact(scorer_prints, scorer, metric, "higher_is_better")
    return None if value is None else bool(value)


def direction_label(direction: bool | None) -> str:
    return {True: "↑", False: "↓"}.get(direction, "·")


def summarise(scores: pd.DataFrame, scorer_prints: Mapping[str, Any],
              set_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (scorer, version, metric): n, mean, std, and the display scale and direction of the metric.

    Set-level metrics (FID, KID; `set_scores`) add one row per value: `mean` is the value, `std` its own uncertainty
    where defined (KID over subsets), `n` / `n_reference` the generated and reference images, `level` "set" (or
    "set:repeat-R" for a repeat of a paper-protocol run); per-image rows have level "image".
    """
    frames = []
    if not scores.empty:
        grouped = scores.groupby(["scorer", "scorer_version", "metric"], sort=True)["value"]
        per_image = grouped.agg(n="count", mean="mean", std="std").reset_index()
        per_image["level"], per_image["n_reference"] = "image", pd.NA
        frames.append(per_image)
    if set_scores is not None and not set_scores.empty:
        per_set = set_scores.rename(columns={"value": "mean"})[["scorer", "scorer_version", "metric", "group", "n",
                                                                "mean", "std", "n_reference"]].copy()
        per_set["level"] = ["set" if g == "all" else f"set:{g}" for g in per_set["group"]]
        frames.append(per_set.drop(columns="group"))
    if not frames:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary = pd.concat(frames, ignore_index=True)
    pairs = list(zip(summary["scorer"], summary["metric"]))
    summary["display_scale"] = [display_scale(scorer_prints, s, m) for s, m in pairs]
    summary["higher_is_better"] = [higher_is_better(scorer_prints, s, m) for s, m in pairs]
    return summary[SUMMARY_COLUMNS]


def summary_table(summary: pd.DataFrame, title: str, headline: Mapping[tuple[str, str], str] | None = None) -> Table:
    """The run's summary; `headline` ((scorer, metric) -> text) is a protocol run's headline number per metric (the
    mean of its repeat means ± s.e.), shown first, and then the mean and std over all images are labelled pooled."""
    table = Table(title=title)
    pooled = "pooled " if headline else ""
    columns = ["scorer", "version", "metric", "n"] + (["headline: repeats mean ± s.e."] if headline else []) + [
        f"{pooled}mean", f"{pooled}std"]
    for column in columns:
        text = column in ("scorer", "version", "metric")  # names wrap (fold), never cut with an ellipsis
        table.add_column(column, justify="left" if text else "right", overflow="fold", no_wrap=not text)
    for row in summary.itertuples():
        scale = row.display_scale
        label = f"{row.metric} ×{scale:g}" if scale != 1 else row.metric
        label += f" {direction_label(row.higher_is_better)}"
        n = str(row.n)
        if str(row.level).startswith("set"):
            label += f" ({row.level}, one value)"
            n = f"{row.n} vs {row.n_reference} ref"
        std = "" if pd.isna(row.std) else f"{row.std * scale:.4f}"
        first = [headline.get((row.scorer, row.metric), "") if row.level == "image" else ""] if headline else []
        table.add_row(row.scorer, row.scorer_version, label, n, *first, f"{row.mean * scale:.4f}", std)
    return table


def repeat_means(values: pd.DataFrame, membership: pd.DataFrame) -> list[float]:
    """Each repeat's mean over its prompts (a prompt's seeds averaged first) from per-image rows with
    `prompt_index` and `value`; the rule of the paper's per-repeat numbers."""
    per_prompt = values.groupby("prompt_index")["value"].mean()
    return [float(per_prompt.reindex(member["prompt_index"]).dropna().mean())
            for _, member in membership.groupby("repeat", sort=True)]


def summarise_repeats(scores: pd.DataFrame, repeats: pd.DataFrame, scorer_prints: Mapping[str, Any],
                      n_resamples: int = 9999, seed: int = 0) -> pd.DataFrame:
    """Per scorer metric: each repeat's mean over its prompts (seeds averaged per prompt) with its per-prompt
    bootstrap CI, then the mean of the repeat means ± their standard error (s.d. / sqrt(repeats)); raw values,
    `paper_scale` (from the run's scorer fingerprints) says what the paper multiplies by."""
    rows = []
    if scores.empty:
        return pd.DataFrame(columns=REPEAT_SUMMARY_COLUMNS)
    for (scorer, version, metric), group in scores.groupby(["scorer", "scorer_version", "metric"], sort=True):
        per_prompt = group.groupby("prompt_index")["value"].mean()
        means = []
        for repeat, member in repeats.groupby("repeat", sort=True):
            values = per_prompt.reindex(member["prompt_index"]).dropna().to_numpy()
            ci = mean_ci(values, n_resamples=n_resamples, seed=seed)
            means.append(ci.estimate)
            rows.append({"scorer": scorer, "scorer_version": version, "metric": metric, "repeat": str(repeat),
                         "sample_seed": int(member["sample_seed"].iloc[0]), "n_prompts": int(values.size),
                         "mean": ci.estimate, "se": np.nan, "ci_low": ci.low, "ci_high": ci.high})
        pooled = mean_ci(per_prompt.reindex(repeats["prompt_index"].unique()).dropna().to_numpy(),
                         n_resamples=n_resamples, seed=seed)
        mean, se = mean_se(means)
        rows.append({"scorer": scorer, "scorer_version": version, "metric": metric, "repeat": REPEAT_ALL,
                     "sample_seed": -1, "n_prompts": pooled.n, "mean": mean, "se": se,
                     "ci_low": pooled.low, "ci_high": pooled.high})
        for row in rows[-len(means) - 1:]:
            row["paper_scale"] = paper_scale(scorer_prints, scorer, metric)
    return pd.DataFrame(rows, columns=REPEAT_SUMMARY_COLUMNS)


def headline_texts(summary: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Per (scorer, metric): the run's headline number, the mean of its repeat means ± their standard error in the
    paper's units (`×100` named where it is not 1), printed at the precision `compare` uses for the same number."""
    texts = {}
    for row in summary[summary["repeat"] == REPEAT_ALL].itertuples():
        scale = float(row.paper_scale)
        mean, se = row.mean * scale, row.se * scale
        places = decimals([mean])
        texts[(row.scorer, row.metric)] = f"{mean:.{places}f} ± {se:.{places}f}" + (
            f" (×{scale:g})" if scale != 1 else "")
    return texts


def write_repeats_summary(store: RunStore, scorer_prints: Mapping[str, Any],
                          scores: pd.DataFrame) -> pd.DataFrame | None:
    """For a `--protocol paper` run: per-repeat means and mean ± s.e. of `scores` (the folder's, as read by the
    caller) into repeats.csv (None for other runs)."""
    membership = store.read_repeats()
    if membership is None:
        return None
    summary = summarise_repeats(scores, membership, scorer_prints)
    store.write_repeats_summary(summary)
    return summary
