"""The leaderboard CSV: one row per run × scorer × metric, a stable schema, appended without losing old rows.

Schema (molebench leaderboard 1), in this column order:
  model, benchmark, scorer, metric, version, mean, ci_low, ci_high, n, scale, run_id, date, molebench_version,
  config_hash, prompt_set_sha256, higher_is_better, level, std, n_reference, then the run's label and settings
  (label, weights, steps, guidance, size, scheduler, dtype, seeds, n_prompts, n_images, git_commit, device).
mean/ci_low/ci_high are in display units (raw × scale; HPS ×100), the CI is the seeded 95% BCa bootstrap over
prompts, n counts scored images. higher_is_better is true, false (FID) or empty (no direction). level is `image`
(a mean over images) or `set` (one value per run: FID, KID; no CI, `std` its uncertainty where defined, n and
n_reference the generated and reference images it rests on). A run already on the board (same run_id, benchmark,
config_hash, scorer, metric, version: two folders of one name on two benchmarks are two runs) is replaced in place
by a new export; every other row is kept. Columns are only ever added at the end, never renamed: a board written
before a column existed is read with that column empty and rewritten whole.
"""

from __future__ import annotations

import csv
from pathlib import Path

from molebench.atomic import atomic_path
from molebench.errors import InputError
from molebench.report import stats
from molebench.report.compare import Settings
from molebench.report.csv_safe import safe_row
from molebench.report.runs import LoadedRun, per_prompt
from molebench.report.settings import SETTING_COLUMNS

FIRST_COLUMNS = ["model", "benchmark", "scorer", "metric", "version", "mean", "ci_low", "ci_high", "n", "scale",
                 "run_id", "date", "molebench_version", "config_hash", "prompt_set_sha256"]  # the first release's
COLUMNS = FIRST_COLUMNS + ["higher_is_better", "level", "std", "n_reference", "label"] + SETTING_COLUMNS
ROW_KEY = ("run_id", "benchmark", "config_hash", "scorer", "metric", "version")


def run_rows(run: LoadedRun, settings: Settings | None = None) -> list[dict[str, str]]:
    settings = settings or Settings()
    rows = []
    for scorer, metric in run.metrics():
        values = run.values(scorer, metric)
        scale = run.display_scale(scorer, metric)
        ci = stats.mean_ci(per_prompt(values).to_numpy(), settings.confidence, settings.n_resamples, settings.seed,
                           settings.method)
        rows.append(safe_row({  # text cells neutralised here, so rows read back from the file match on ROW_KEY
            "model": run.model, "benchmark": run.benchmark, "scorer": scorer, "metric": metric,
            "version": run.scorer_version(scorer), "mean": _fmt(ci.estimate * scale), "ci_low": _fmt(ci.low * scale),
            "ci_high": _fmt(ci.high * scale), "n": str(int(values["key"].nunique())), "scale": f"{scale:g}",
            "run_id": run.run_id, "date": run.date, "molebench_version": run.molebench_version,
            "config_hash": run.config_hash, "prompt_set_sha256": run.prompt_set_sha256,
            "higher_is_better": _direction(scorer, metric, run), "level": "image", "std": "", "n_reference": "",
            "label": run.label, **run.settings,
        }))
    for scorer, metric in run.set_metrics():
        stored = run.set_value(scorer, metric)
        scale = run.display_scale(scorer, metric)
        rows.append(safe_row({
            "model": run.model, "benchmark": run.benchmark, "scorer": scorer, "metric": metric,
            "version": str(stored["scorer_version"]), "mean": _fmt(float(stored["value"]) * scale), "ci_low": "",
            "ci_high": "", "n": str(int(stored["n"])), "scale": f"{scale:g}", "run_id": run.run_id, "date": run.date,
            "molebench_version": run.molebench_version, "config_hash": run.config_hash,
            "prompt_set_sha256": run.prompt_set_sha256, "higher_is_better": _direction(scorer, metric, run),
            "level": "set", "std": _fmt(float(stored["std"]) * scale), "n_reference": str(int(stored["n_reference"])),
            "label": run.label, **run.settings,
        }))
    return rows


def _direction(scorer: str, metric: str, run: LoadedRun) -> str:
    direction = run.higher_is_better(scorer, metric)
    return "" if direction is None else str(direction).lower()


def read_leaderboard(path: Path) -> list[dict[str, str]]:
    """Existing rows; refuses a file with another schema rather than silently rewriting it."""
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read leaderboard {path}: {exc}") from None
    if header != COLUMNS[: len(header)] or len(header) < len(FIRST_COLUMNS):  # older boards lack the newest columns
        raise InputError(f"leaderboard {path} has columns {header}, expected {COLUMNS}; write to a new file")
    return [{column: row.get(column) or "" for column in COLUMNS} for row in rows]


def export(runs: list[LoadedRun], out: str | Path, settings: Settings | None = None) -> tuple[int, int]:
    """Merge the runs' rows into `out` (atomic write); returns (rows added, rows replaced)."""
    out = Path(out)
    rows = read_leaderboard(out)
    position = {tuple(r[k] for k in ROW_KEY): i for i, r in enumerate(rows)}
    added = replaced = 0
    for run in runs:
        for row in run_rows(run, settings):
            key = tuple(row[k] for k in ROW_KEY)
            if key in position:
                rows[position[key]] = row
                replaced += 1
            else:
                position[key] = len(rows)
                rows.append(row)
                added += 1
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return added, replaced


def _fmt(value: float) -> str:
    return "" if value != value else repr(round(float(value), 6))
