"""The leaderboard CSV: one row per run × scorer × metric, a stable schema, appended without losing old rows.

Schema (molebench leaderboard 1), in this column order:
  model, benchmark, scorer, metric, version, mean, ci_low, ci_high, n, scale, run_id, date, molebench_version,
  config_hash, prompt_set_sha256, higher_is_better, level, std, n_reference, then the run's label and settings
  (label, weights, steps, guidance, size, scheduler, dtype, seeds, n_prompts, n_images, git_commit, device,
  prompt_suffix, negative_prompt, prompt_weighting, options), then protocol, repeats, units, se, pooled_mean,
  pooled_ci_low, pooled_ci_high.
mean/ci_low/ci_high are in display units (raw × scale; HPS ×100), the CI is the seeded 95% BCa bootstrap over
prompts, n counts scored images. A `--protocol paper` run's mean is its headline number, the mean of its repeat
means in the paper's units (`units` paper, `scale` the paper's), with `se` their standard error and no CI; its mean
over all distinct prompts is in the pooled_* columns. higher_is_better is true, false (FID) or empty (no direction). level is `image`
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
from molebench.report.compare import Settings, compare, units_kind
from molebench.report.csv_safe import direction_text, safe_row
from molebench.report.runs import LoadedRun
from molebench.report.settings import SETTING_COLUMNS

FIRST_COLUMNS = ["model", "benchmark", "scorer", "metric", "version", "mean", "ci_low", "ci_high", "n", "scale",
                 "run_id", "date", "molebench_version", "config_hash", "prompt_set_sha256"]  # the first release's
COLUMNS = FIRST_COLUMNS + ["higher_is_better", "level", "std", "n_reference", "label"] + SETTING_COLUMNS + [
    "protocol", "repeats", "units", "se", "pooled_mean", "pooled_ci_low", "pooled_ci_high"]
ROW_KEY = ("run_id", "benchmark", "config_hash", "scorer", "metric", "version")


def run_rows(run: LoadedRun, settings: Settings | None = None) -> list[dict[str, str]]:
    """The run's rows from the same tables `compare` makes of it alone: one number per metric everywhere (a
    protocol run's headline, the mean of its repeat means ± s.e. in the paper's units)."""
    comparison = compare([run], settings=settings or Settings())
    protocol = str((run.protocol or {}).get("name") or "")
    rows = []
    for table in comparison.tables:
        row = table.rows[0]
        image = table.level == "image"
        rows.append(safe_row({  # text cells neutralised here, so rows read back from the file match on ROW_KEY
            "model": run.model, "benchmark": run.benchmark, "scorer": table.scorer, "metric": table.metric,
            "version": table.version, "mean": _fmt(row.mean), "ci_low": _fmt(row.ci_low) if image else "",
            "ci_high": _fmt(row.ci_high) if image else "", "n": str(row.n), "scale": f"{table.scale:g}",
            "run_id": run.run_id, "date": run.date, "molebench_version": run.molebench_version,
            "config_hash": run.config_hash, "prompt_set_sha256": run.prompt_set_sha256,
            "higher_is_better": direction_text(table.higher_is_better), "level": table.level,
            "std": "" if image or row.std is None else _fmt(row.std),
            "n_reference": "" if image else str(row.n_reference), "label": run.label, **run.settings,
            "protocol": protocol, "repeats": str(row.n_repeats or ""),
            "units": "paper" if units_kind([run], None) == "paper_scale" else "display",
            "se": _fmt(row.headline_se) if row.headline_se is not None else "",
            "pooled_mean": _fmt(row.pooled_mean) if row.pooled_mean is not None else "",
            "pooled_ci_low": _fmt(row.pooled_ci_low) if row.pooled_ci_low is not None and image else "",
            "pooled_ci_high": _fmt(row.pooled_ci_high) if row.pooled_ci_high is not None and image else "",
        }))
    return rows


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


def _fmt(value: float | None) -> str:
    return "" if value is None or value != value else repr(round(float(value), 6))
