"""A run's summary (summary.csv): mean and spread of each scorer metric, the quick look; `compare` does statistics.

Display scale and direction come from the scorer fingerprints in the run's manifest (written when the scores were
made), so a summary or report never imports a scorer (no torch) and never guesses a scale. Here, beside the store,
because both the runner (which writes the summary) and the reports (which read runs) use it.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd
from rich.table import Table

from molebench.errors import InputError

SUMMARY_COLUMNS = ["scorer", "scorer_version", "metric", "n", "mean", "std", "display_scale", "higher_is_better"]


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


def summarise(scores: pd.DataFrame, scorer_prints: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (scorer, version, metric): n, mean, std, and the display scale and direction of the metric."""
    if scores.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = scores.groupby(["scorer", "scorer_version", "metric"], sort=True)["value"]
    summary = grouped.agg(n="count", mean="mean", std="std").reset_index()
    pairs = list(zip(summary["scorer"], summary["metric"]))
    summary["display_scale"] = [display_scale(scorer_prints, s, m) for s, m in pairs]
    summary["higher_is_better"] = [bool(metric_fact(scorer_prints, s, m, "higher_is_better")) for s, m in pairs]
    return summary


def summary_table(summary: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in ("scorer", "version", "metric", "n", "mean", "std"):
        table.add_column(column, justify="right" if column in ("n", "mean", "std") else "left")
    for row in summary.itertuples():
        scale = row.display_scale
        label = f"{row.metric} ×{scale:g}" if scale != 1 else row.metric
        std = "" if pd.isna(row.std) else f"{row.std * scale:.4f}"
        table.add_row(row.scorer, row.scorer_version, label, str(row.n), f"{row.mean * scale:.4f}", std)
    return table
