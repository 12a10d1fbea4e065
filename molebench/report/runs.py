"""Stored runs as reports see them: manifest facts, scores, and per-prompt values paired across runs.

Runs pair by (prompt_id, seed): the same prompt and the same seed is the same question asked of two models.
Statistics use the prompt as the unit (seeds of a prompt are averaged), so prompts are not over-counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from molebench.errors import IncompatibleRunsError, InputError
from molebench.report.labels import assign_labels
from molebench.report.settings import run_settings
from molebench.store import RunStore
from molebench.store.manifest import Manifest
from molebench.store.run_store import SET_GROUP_ALL
from molebench.store.summary import metric_fact

PAIR_KEYS = ["prompt_id", "seed"]


@dataclass(eq=False)
class LoadedRun:
    """One complete run folder, read once (compared by identity)."""

    root: Path
    manifest: Manifest
    items: pd.DataFrame
    scores: pd.DataFrame
    label: str = ""
    repeats: pd.DataFrame | None = None  # `--protocol paper` runs: repeat membership (repeats.parquet)
    _cache: dict = field(default_factory=dict, repr=False)
    set_scores: pd.DataFrame = field(default_factory=pd.DataFrame)  # set-level metrics (FID, KID), see RunStore

    @property
    def protocol(self) -> dict[str, Any] | None:
        """The manifest's protocol record (`--protocol paper` runs), else None."""
        return self.manifest.protocol

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def model(self) -> str:
        return self.manifest.model_name

    @property
    def benchmark(self) -> str:
        return self.manifest.benchmark_name

    @property
    def prompt_set_sha256(self) -> str:
        return self.manifest.prompt_set_sha256

    @property
    def config_hash(self) -> str:
        """The run identity: hash of model weights, prompt set, generation settings and device type."""
        return self.manifest.identity_sha256

    @property
    def date(self) -> str:
        return self.manifest.date

    @property
    def molebench_version(self) -> str:
        return self.manifest.molebench_version

    @property
    def scorer_prints(self) -> dict[str, dict[str, Any]]:
        return self.manifest.scorers

    def display_scale(self, scorer: str, metric: str) -> float:
        """The scale reports show `scorer/metric` at, as the run's scorer fingerprint recorded it."""
        return self.scale(scorer, metric, "display_scale")

    def scale(self, scorer: str, metric: str, kind: str) -> float:
        """`display_scale` or `paper_scale` of `scorer/metric` from the run's scorer fingerprint."""
        try:
            return float(metric_fact(self.scorer_prints, scorer, metric, kind))
        except InputError as exc:
            raise InputError(f"{self.root}: {exc}") from None

    def higher_is_better(self, scorer: str, metric: str) -> bool | None:
        """The metric's direction from the run's scorer fingerprint (None: no direction, never gated)."""
        try:
            value = metric_fact(self.scorer_prints, scorer, metric, "higher_is_better")
        except InputError as exc:
            raise InputError(f"{self.root}: {exc}") from None
        return None if value is None else bool(value)

    def scorer_version(self, scorer: str) -> str:
        versions = self.scores.loc[self.scores["scorer"] == scorer, "scorer_version"].unique()
        if not len(versions) and not self.set_scores.empty:
            versions = self.set_scores.loc[self.set_scores["scorer"] == scorer, "scorer_version"].unique()
        if len(versions):
            return ",".join(sorted(map(str, versions)))
        return str((self.scorer_prints.get(scorer) or {}).get("version", ""))

    def metrics(self) -> list[tuple[str, str]]:
        """(scorer, metric) pairs with scores, in stored order."""
        pairs = self.scores[["scorer", "metric"]].drop_duplicates()
        return [tuple(p) for p in pairs.itertuples(index=False)]

    def set_metrics(self, group: str = SET_GROUP_ALL) -> list[tuple[str, str]]:
        """(scorer, metric) pairs of set-level values of `group` (the whole run by default)."""
        if self.set_scores.empty:
            return []
        rows = self.set_scores[self.set_scores["group"] == group]
        return [tuple(p) for p in rows[["scorer", "metric"]].drop_duplicates().itertuples(index=False)]

    def set_groups(self, scorer: str, metric: str) -> list[str]:
        """The groups with a set-level value of this metric (`all`, and `repeat-R` for `--protocol paper` runs)."""
        if self.set_scores.empty:
            return []
        rows = self.set_scores[(self.set_scores["scorer"] == scorer) & (self.set_scores["metric"] == metric)]
        return sorted(rows["group"].unique())

    def set_value(self, scorer: str, metric: str, group: str = SET_GROUP_ALL) -> pd.Series:
        """The stored row of one set-level value: value, std, n, n_reference, reference, scorer_version."""
        rows = self.set_scores[(self.set_scores["scorer"] == scorer) & (self.set_scores["metric"] == metric)
                               & (self.set_scores["group"] == group)]
        if rows.empty:
            raise InputError(f"run {self.root} has no set-level {scorer}/{metric} for group {group}")
        return rows.iloc[-1]

    def values(self, scorer: str, metric: str) -> pd.DataFrame:
        """Per-image rows of one metric: prompt_index, prompt_id, prompt, seed, key, value. NaN is "not measured"
        (a face quality where no face was found, molebench.report.people) and is left out, so means, n and pairs
        are over the images that have a value."""
        cache_key = ("values", scorer, metric)
        if cache_key not in self._cache:
            rows = self.scores[(self.scores["scorer"] == scorer) & (self.scores["metric"] == metric)
                               & self.scores["value"].notna()]
            self._cache[cache_key] = rows[["prompt_index", "prompt_id", "prompt", "seed", "key", "value"]].reset_index(
                drop=True)
        return self._cache[cache_key]

    def image_path(self, key: str) -> Path:
        return RunStore(self.root).image_path(key)

    @property
    def settings(self) -> dict[str, str]:
        """Model weights, generation settings, seeds, counts, commit and device as display strings."""
        if "settings" not in self._cache:
            self._cache["settings"] = run_settings(self)
        return self._cache["settings"]


def load_run(path: str | Path, require_complete: bool = True) -> LoadedRun:
    """Read a run folder; refuse folders that are not runs, have no scores, or are still running."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"run folder not found: {root}")
    store = RunStore(root)
    manifest = store.require_manifest()
    if require_complete and not manifest.is_complete:
        raise IncompatibleRunsError(
            f"run {root} is not complete (status '{manifest.status}'): rerun its `molebench run` command to "
            "finish it before reporting on it")
    items = store.read_items()
    scores = store.read_scores()
    set_scores = store.read_set_scores()
    if scores.empty and set_scores.empty:
        raise InputError(f"run {root} has no scores (it was run with --no-score?); nothing to report")
    return LoadedRun(root=root, manifest=manifest, items=items, scores=scores, repeats=store.read_repeats(),
                     set_scores=set_scores)


def load_runs(paths, require_complete: bool = True, labels: Mapping[Path, str] | None = None) -> list[LoadedRun]:
    """Read run folders and label them (unique within a benchmark; `labels`: {folder: name} from --label)."""
    runs = [load_run(p, require_complete) for p in paths]
    assign_labels(runs, labels)
    return runs


def per_prompt(values: pd.DataFrame, pairs: pd.DataFrame | None = None) -> pd.Series:
    """Mean value per prompt_id (over seeds), optionally only over the (prompt_id, seed) pairs given."""
    if pairs is not None:
        values = values.merge(pairs, on=PAIR_KEYS, how="inner")
    return values.groupby("prompt_id", sort=True)["value"].mean()


def shared_pairs(runs: list[LoadedRun], scorer: str, metric: str) -> pd.DataFrame:
    """The (prompt_id, seed) pairs every run scored for this metric."""
    shared: pd.DataFrame | None = None
    for run in runs:
        pairs = run.values(scorer, metric)[PAIR_KEYS].drop_duplicates()
        shared = pairs if shared is None else shared.merge(pairs, on=PAIR_KEYS, how="inner")
    return shared if shared is not None else pd.DataFrame(columns=PAIR_KEYS)


def shared_scale(runs: list[LoadedRun], scorer: str, metric: str, kind: str = "display_scale") -> float:
    """The `kind` scale every run records for `scorer/metric` (they must agree to be shown in one table)."""
    scales = {run.scale(scorer, metric, kind) for run in runs}
    if len(scales) > 1:
        raise IncompatibleRunsError(f"runs record different {kind} values for {scorer}/{metric}: "
                                    f"{', '.join(f'{s:g}' for s in sorted(scales))}")
    return scales.pop()
