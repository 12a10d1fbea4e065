"""Per-run summary: mean and spread of each scorer metric (the quick look; `compare` does the statistics).

Per-image metrics give n, mean and std over images; set-level metrics (FID, KID) give their one value per group,
with `std` the value's own uncertainty where defined (KID over subsets) and `n` / `n_reference` the generated and
reference images it rests on.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.table import Table

from molebench.registry import SCORERS

SUMMARY_COLUMNS = ["scorer", "scorer_version", "metric", "n", "mean", "std", "display_scale", "higher_is_better",
                   "level", "n_reference"]


def summarise(scores: pd.DataFrame, set_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (scorer, version, metric) and set-level value: n, mean, std, display scale, direction."""
    frames = []
    if not scores.empty:
        grouped = scores.groupby(["scorer", "scorer_version", "metric"], sort=True)["value"]
        per_image = grouped.agg(n="count", mean="mean", std="std").reset_index()
        per_image["level"], per_image["n_reference"] = "image", pd.NA
        frames.append(per_image)
    if set_scores is not None and not set_scores.empty:
        per_set = set_scores.rename(columns={"value": "mean"})[["scorer", "scorer_version", "metric", "group", "n",
                                                                "mean", "std", "n_reference"]].copy()
        per_set["level"] = "set" + per_set["group"].map(lambda g: "" if g == "all" else f":{g}")
        frames.append(per_set.drop(columns="group"))
    if not frames:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary = pd.concat(frames, ignore_index=True)
    summary["display_scale"] = [display_scale(s, m) for s, m in zip(summary["scorer"], summary["metric"])]
    summary["higher_is_better"] = [higher_is_better(s, m) for s, m in zip(summary["scorer"], summary["metric"])]
    return summary[SUMMARY_COLUMNS]


def display_scale(scorer: str, metric: str) -> float:
    """Factor reports multiply raw values by (HPS ×100), from the scorer registry."""
    try:
        return float(SCORERS.get(scorer).display_scale.get(metric, 1.0))
    except Exception:  # noqa: BLE001 - an unregistered scorer in an old run is shown unscaled
        return 1.0


def higher_is_better(scorer: str, metric: str, fingerprint: dict[str, Any] | None = None) -> bool | None:
    """The metric's direction: from the run's scorer fingerprint (what the run was scored with), else the registered
    class; None (no direction: never gated, no better/worse verdict) when neither knows."""
    recorded = (fingerprint or {}).get("higher_is_better")
    if isinstance(recorded, dict) and metric in recorded:
        value = recorded[metric]
        return None if value is None else bool(value)
    try:
        value = SCORERS.get(scorer).higher_is_better.get(metric)
    except Exception:  # noqa: BLE001 - an unregistered scorer in an old run has no known direction
        return None
    return None if value is None else bool(value)


def direction_label(direction: bool | None) -> str:
    return {True: "↑", False: "↓"}.get(direction, "·")


def paper_scale(scorer: str, metric: str) -> float:
    """Factor the MoLE paper's tables multiply raw values by (HPS ×100 and ImageReward ×100); the display scale
    where a scorer declares none."""
    try:
        cls = SCORERS.get(scorer)
        return float(cls.paper_scale.get(metric, cls.display_scale.get(metric, 1.0)))
    except Exception:  # noqa: BLE001 - an unregistered scorer in an old run is shown unscaled
        return 1.0


def summary_table(summary: pd.DataFrame, title: str) -> Table:
    table = Table(title=title)
    for column in ("scorer", "version", "metric", "n", "mean", "std"):
        table.add_column(column, justify="right" if column in ("n", "mean", "std") else "left")
    for row in summary.itertuples():
        scale = row.display_scale
        label = f"{row.metric} ×{scale:g}" if scale != 1 else row.metric
        label += f" {direction_label(row.higher_is_better)}"
        n = str(row.n)
        if str(row.level).startswith("set"):
            label += f" ({row.level}, one value)"
            n = f"{row.n} vs {row.n_reference} ref"
        std = "" if pd.isna(row.std) else f"{row.std * scale:.4f}"
        table.add_row(row.scorer, row.scorer_version, label, n, f"{row.mean * scale:.4f}", std)
    return table
