"""Compare runs: compatibility checks, then one table per benchmark × metric with statistics against a reference.

Runs are compared only when they asked the same questions the same way: same prompt-set hash, same scorer versions
(and scorer checkpoint hashes), same images (count and (prompt, seed) pairs), and for set-level metrics (FID, KID)
the same reference image set. Otherwise the comparison is refused with every difference named; `allow_mismatch`
compares anyway and records the differences in the output.

Verdicts follow each metric's direction (`higher_is_better`, read from the run's scorer fingerprint): "better" is a
significant change the right way, for FID a decrease; a metric without a direction (face counts) gets "higher" or
"lower". A set-level metric has one value per run and no per-prompt pairs, so its table shows the values, their
uncertainty where defined (KID ± std) and Δ, with the verdict "better (no test)" / "worse (no test)".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from molebench.errors import IncompatibleRunsError
from molebench import stats
from molebench.report import people
from molebench.report.labels import assign_labels, check_unique
from molebench.report.paper import PaperResults, entry_scale
from molebench.report.runs import PAIR_KEYS, LoadedRun, per_prompt, shared_pairs, shared_scale
from molebench.report.settings import setting_differences
from molebench.store.summary import repeat_means


@dataclass
class Settings:
    confidence: float = stats.DEFAULT_CONFIDENCE
    n_resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = stats.DEFAULT_SEED
    method: str = "bca"
    alpha: float = 0.05


@dataclass
class Row:
    """One run in one table; numbers in display units (raw × scale)."""

    label: str
    model: str
    run_id: str
    mean: float
    ci_low: float
    ci_high: float
    n: int  # images scored
    n_prompts: int
    is_reference: bool = False
    diff: float | None = None  # paired mean of per-prompt (this − reference)
    diff_low: float | None = None
    diff_high: float | None = None
    p_value: float | None = None  # Wilcoxon signed-rank, two-sided
    win_rate: float | None = None
    n_pairs: int | None = None
    verdict: str = ""  # reference | better | worse | n.s. | higher | lower (no direction) | … (no test): set-level
    paper: float | None = None  # the paper's number, converted to this table's units
    paper_table: str = ""
    paper_se: float | None = None  # its standard error over the paper's 3 repeats
    paper_differences: list[str] = field(default_factory=list)  # how this run was measured differently
    repeats_mean: float | None = None  # `--protocol paper` runs: mean of the repeat means (the paper's form)
    repeats_se: float | None = None
    n_repeats: int | None = None
    std: float | None = None  # set-level: the value's own uncertainty (KID over subsets), display units
    n_reference: int | None = None  # set-level: reference images the value rests on
    seed_means: dict[int, float] = field(default_factory=dict)  # per seed: mean over the shared prompts
    seed_sd: float | None = None  # between-seed s.d. of those means (None with one seed)
    # `--protocol paper` runs: `mean` is the headline (repeats_mean ± repeats_se); these are over all distinct
    # prompts (images for a set-level value), shown only labelled "pooled"
    pooled_mean: float | None = None
    pooled_ci_low: float | None = None
    pooled_ci_high: float | None = None

    @property
    def headline_se(self) -> float | None:
        """The ± of the headline number: the standard error over repeats of a protocol run (else None)."""
        return self.repeats_se if self.n_repeats else None


@dataclass
class MetricTable:
    benchmark: str
    scorer: str
    metric: str
    version: str
    scale: float
    reference: str
    rows: list[Row]
    higher_is_better: bool | None = None
    level: str = "image"  # or "set": one value per run (FID, KID)

    @property
    def title(self) -> str:
        unit = f" ×{self.scale:g}" if self.scale != 1 else ""
        arrow = {True: " ↑", False: " ↓"}.get(self.higher_is_better, "")
        level = ", set-level" if self.level == "set" else ""
        return f"{self.benchmark} — {self.scorer}/{self.metric}{unit}{arrow} (version {self.version}{level})"


@dataclass
class Comparison:
    tables: list[MetricTable]
    settings: Settings
    runs: list[dict[str, Any]]
    mismatches: list[str] = field(default_factory=list)
    allow_mismatch: bool = False
    paper_citation: str = ""
    paper_missing: str = ""
    warnings: list[str] = field(default_factory=list)  # settings other than the model that differ (see settings.py)

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": asdict(self.settings),
            "runs": self.runs,
            "allow_mismatch": self.allow_mismatch,
            "mismatches": self.mismatches,
            "setting_differences": self.warnings,
            "paper": {"citation": self.paper_citation, "missing": self.paper_missing} if self.paper_citation else None,
            "tables": [{**{k: v for k, v in asdict(t).items() if k != "rows"}, "title": t.title,
                        "rows": [asdict(r) for r in t.rows]} for t in self.tables],
        }


# --- compatibility ------------------------------------------------------------------------------------------------
def differences(runs: list[LoadedRun]) -> list[str]:
    """Everything that makes these runs (one benchmark) incomparable, one sentence each; empty when comparable."""
    if len(runs) < 2:
        return []
    first, found = runs[0], []
    for other in runs[1:]:
        pair = f"{first.label} ({first.root}) vs {other.label} ({other.root})"
        if first.prompt_set_sha256 != other.prompt_set_sha256:
            found.append(f"prompt sets differ: {pair}: {first.prompt_set_sha256[:12] or '?'} vs "
                         f"{other.prompt_set_sha256[:12] or '?'}")
        for scorer in sorted(_scorers(first) & _scorers(other)):
            a, b = _scorer_identity(first, scorer), _scorer_identity(other, scorer)
            if a != b:
                found.append(f"scorer {scorer} differs: {pair}: {_describe(a)} vs {_describe(b)}")
        for scorer, metric in sorted(set(first.set_metrics()) & set(other.set_metrics())):
            ref_a, ref_b = (str(r.set_value(scorer, metric)["reference"]) for r in (first, other))
            if ref_a != ref_b:
                found.append(f"{scorer}/{metric} reference image sets differ: {pair}: {ref_a[:12]} vs {ref_b[:12]}")
        if not _scorers(first) & _scorers(other):
            found.append(f"no scorer in common: {pair}: {sorted(_scorers(first))} vs {sorted(_scorers(other))}")
        count_a, count_b = _image_count(first), _image_count(other)
        if count_a != count_b:
            found.append(f"image counts differ: {pair}: {count_a} vs {count_b} scored images")
        else:
            pairs_a, pairs_b = _pairs(first), _pairs(other)
            if pairs_a != pairs_b:
                found.append(f"images are for different (prompt, seed) pairs: {pair}: "
                             f"{len(pairs_a - pairs_b)} pairs only in the first, {len(pairs_b - pairs_a)} only in the second")
    return found


def check_compatible(groups: dict[str, list[LoadedRun]], allow_mismatch: bool) -> list[str]:
    """Differences across every benchmark group; raises (exit 2) unless `allow_mismatch`."""
    found = [f"{bench}: {d}" for bench, runs in groups.items() for d in differences(runs)]
    if found and not allow_mismatch:
        raise IncompatibleRunsError(
            "runs cannot be compared:\n  - " + "\n  - ".join(found)
            + "\n  rerun them on the same prompt set, scorers and seeds, or pass --allow-mismatch to compare anyway "
              "(the differences are then recorded in the output)")
    return found


def _scorers(run: LoadedRun) -> set[str]:
    return set(run.scores["scorer"].unique()) | {scorer for scorer, _ in run.set_metrics()}


def _scorer_identity(run: LoadedRun, scorer: str) -> dict[str, str]:
    """Version label plus every content hash of the scorer (its checkpoint); paths are machine-specific, left out."""
    identity = {"version": run.scorer_version(scorer)}
    for key, value in (run.scorer_prints.get(scorer) or {}).items():
        if key.endswith("sha256"):
            identity[key] = str(value)
    return identity


def _describe(identity: dict[str, str]) -> str:
    return ", ".join(f"{k} {v[:12] if k.endswith('sha256') else v}" for k, v in identity.items())


def _image_count(run: LoadedRun) -> int:
    return int(run.scores["key"].nunique())


def _pairs(run: LoadedRun) -> set[tuple[str, int]]:
    return set(map(tuple, run.scores[PAIR_KEYS].drop_duplicates().itertuples(index=False)))


# --- comparison ---------------------------------------------------------------------------------------------------
def group_by_benchmark(runs: list[LoadedRun]) -> dict[str, list[LoadedRun]]:
    groups: dict[str, list[LoadedRun]] = {}
    for run in runs:
        groups.setdefault(run.benchmark, []).append(run)
    return groups


def compare(
    runs: list[LoadedRun],
    reference: LoadedRun | None = None,
    settings: Settings | None = None,
    allow_mismatch: bool = False,
    paper: PaperResults | None = None,
    metrics: list[str] | None = None,
) -> Comparison:
    """Tables for every benchmark × (scorer, metric) the runs share. Reference: `reference` for its benchmark,
    otherwise the first run given for that benchmark."""
    settings = settings or Settings()
    if any(not run.label for run in runs):  # runs read one by one (load_run) have no label yet
        assign_labels(runs)
    check_unique(runs)  # tables, figures and grids find runs by (benchmark, label)
    groups = group_by_benchmark(runs)
    mismatches = check_compatible(groups, allow_mismatch)
    tables, warnings = [], []
    for benchmark, group in groups.items():
        ref = reference if reference is not None and reference in group else group[0]
        ordered = [ref] + [r for r in group if r is not ref]
        warnings += [f"{benchmark}: {d}" for d in setting_differences(ordered)]
        image_metrics, set_metrics = _shared_metrics(ordered, metrics)
        for scorer, metric in image_metrics:
            tables.append(_table(benchmark, scorer, metric, ordered, settings, paper))
        for scorer, metric in set_metrics:
            tables.append(_set_table(benchmark, scorer, metric, ordered, paper))
    return Comparison(
        tables=tables, settings=settings, runs=[_run_info(r) for r in runs], mismatches=mismatches,
        allow_mismatch=allow_mismatch, paper_citation=paper.citation() if paper else "",
        paper_missing=paper.missing_note() if paper else "", warnings=warnings)


def select_metrics(available: list[tuple[str, str]], wanted: list[str] | None) -> list[tuple[str, str]]:
    """Filter (scorer, metric) pairs by names: `scorer/metric`, a scorer name (all its metrics) or a metric name."""
    if not wanted:
        return available
    chosen = [p for p in available if any(w in (f"{p[0]}/{p[1]}", p[0], p[1]) for w in wanted)]
    unknown = [w for w in wanted if not any(w in (f"{p[0]}/{p[1]}", p[0], p[1]) for p in available)]
    if unknown:
        known = ", ".join(f"{s}/{m}" for s, m in available) or "none"
        raise IncompatibleRunsError(f"metric {', '.join(unknown)} is not scored in every run; available: {known}")
    return chosen


def _shared_metrics(runs: list[LoadedRun], wanted: list[str] | None
                    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(per-image, set-level) (scorer, metric) pairs every run has, filtered by `wanted`."""
    shared = people.order([p for p in runs[0].metrics() if all(p in r.metrics() for r in runs[1:])])
    shared_sets = [p for p in runs[0].set_metrics() if all(p in r.set_metrics() for r in runs[1:])]
    chosen = select_metrics(shared + shared_sets, wanted)
    return [p for p in chosen if p in shared], [p for p in chosen if p in shared_sets]


def verdict(difference: float, significant: bool, direction: bool | None) -> str:
    """better/worse by the metric's direction; higher/lower for metrics without one; n.s. when not significant."""
    if not significant:
        return "n.s."
    if direction is None:
        return "higher" if difference > 0 else "lower"
    return "better" if (difference > 0) == direction else "worse"


def _table(benchmark: str, scorer: str, metric: str, runs: list[LoadedRun], settings: Settings,
           paper: PaperResults | None) -> MetricTable:
    scale = shared_scale(runs, scorer, metric, units_kind(runs, paper))
    pairs = shared_pairs(runs, scorer, metric)
    ref = runs[0]
    direction = ref.higher_is_better(scorer, metric)
    ref_prompts = per_prompt(ref.values(scorer, metric), pairs)
    rows = []
    for run in runs:
        values = run.values(scorer, metric)
        shared = values.merge(pairs, on=PAIR_KEYS, how="inner")  # every run's numbers rest on the same images
        own = per_prompt(shared)
        ci = stats.mean_ci(own.to_numpy(), settings.confidence, settings.n_resamples, settings.seed, settings.method)
        row = Row(label=run.label, model=run.model, run_id=run.run_id, mean=ci.estimate * scale,
                  ci_low=ci.low * scale, ci_high=ci.high * scale, n=int(shared["key"].nunique()),
                  n_prompts=int(own.size), is_reference=run is ref)
        _seed_cells(row, shared, scale)
        if run is ref:
            row.verdict = "reference"
        else:
            cand = own.reindex(ref_prompts.index)
            result = stats.paired(cand.to_numpy(), ref_prompts.to_numpy(), settings.confidence, settings.n_resamples,
                                  settings.seed, settings.method)
            d = result.difference
            row.diff, row.diff_low, row.diff_high = d.estimate * scale, d.low * scale, d.high * scale
            row.p_value, row.win_rate, row.n_pairs = result.p_value, result.win_rate, result.n
            row.verdict = verdict(d.estimate, result.significant(settings.alpha), direction)
        if run.repeats is not None:
            _repeat_cells(row, repeat_means(values, run.repeats), scale)
            _headline(row)
        if paper is not None:
            _paper_cells(row, paper, run, scorer, metric, scale)
        rows.append(row)
    return MetricTable(benchmark=benchmark, scorer=scorer, metric=metric, version=ref.scorer_version(scorer),
                       scale=scale, reference=ref.label, rows=rows, higher_is_better=direction)


def _set_table(benchmark: str, scorer: str, metric: str, runs: list[LoadedRun], paper: PaperResults | None
               ) -> MetricTable:
    """One value per run (no per-prompt pairs, so no test): value, ± std where defined, Δ vs the reference."""
    scale = shared_scale(runs, scorer, metric, units_kind(runs, paper))
    ref = runs[0]
    direction = ref.higher_is_better(scorer, metric)
    ref_value = float(ref.set_value(scorer, metric)["value"])
    rows = []
    for run in runs:
        stored = run.set_value(scorer, metric)
        value, std = float(stored["value"]), float(stored["std"])
        row = Row(label=run.label, model=run.model, run_id=run.run_id, mean=value * scale, ci_low=float("nan"),
                  ci_high=float("nan"), n=int(stored["n"]), n_prompts=int(run.items["prompt_id"].nunique()),
                  is_reference=run is ref, std=std * scale if std == std else None,
                  n_reference=int(stored["n_reference"]))
        if run is ref:
            row.verdict = "reference"
        else:
            row.diff = (value - ref_value) * scale
            row.verdict = "equal" if value == ref_value else verdict(value - ref_value, True, direction) + " (no test)"
        repeat_values = [float(run.set_value(scorer, metric, group)["value"])
                         for group in run.set_groups(scorer, metric) if group.startswith("repeat-")]
        if repeat_values:  # `--protocol paper` runs: each repeat's own value, as the paper reports
            _repeat_cells(row, repeat_values, scale)
            _headline(row)
        if paper is not None:
            _paper_cells(row, paper, run, scorer, metric, scale)
        rows.append(row)
    return MetricTable(benchmark=benchmark, scorer=scorer, metric=metric, version=ref.scorer_version(scorer),
                       scale=scale, reference=ref.label, rows=rows, higher_is_better=direction, level="set")


def units_kind(runs: list[LoadedRun], paper: PaperResults | None) -> str:
    """The scale a table is shown at: the paper's units (HPS ×100, ImageReward ×100) with --paper or when a run
    follows the paper protocol (its declared units: its headline number is the same here as in its summary),
    otherwise each scorer's display units."""
    return "paper_scale" if paper is not None or any(r.repeats is not None for r in runs) else "display_scale"


def _headline(row: Row) -> None:
    """A protocol run's one headline number: the mean of its repeat means ± their standard error replaces the mean;
    the mean over all its distinct prompts (and its CI, or a set-level value over all images) stays, labelled
    pooled."""
    row.pooled_mean, row.pooled_ci_low, row.pooled_ci_high = row.mean, row.ci_low, row.ci_high
    row.mean, row.ci_low, row.ci_high = row.repeats_mean, float("nan"), float("nan")


def _seed_cells(row: Row, values, scale: float) -> None:
    """Per-seed means (each over the prompts, display units) and their between-seed s.d.: how much the number
    moves with the seed, which a CI over prompts does not show."""
    by_seed = values.groupby("seed", sort=True)["value"].mean() * scale
    row.seed_means = {int(seed): float(mean) for seed, mean in by_seed.items()}
    row.seed_sd = float(by_seed.std(ddof=1)) if len(by_seed) > 1 else None


def _repeat_cells(row: Row, values: list[float], scale: float) -> None:
    """Mean ± standard error over the repeats' values (the paper's protocol), in display units."""
    mean, se = stats.mean_se(values)
    row.repeats_mean, row.repeats_se, row.n_repeats = mean * scale, se * scale, len(values)


def _paper_cells(row: Row, paper: PaperResults, run: LoadedRun, scorer: str, metric: str, scale: float) -> None:
    """The paper's number beside a run, in the table's units, with the ways the run was measured differently."""
    entry, differences = paper.match(run.model, run.benchmark, scorer, metric, run.protocol,
                                     run.manifest.settings.get("extra") or {})
    if entry is None:
        return
    factor = scale / (entry_scale(entry) or run.display_scale(scorer, metric))  # older files: display units
    row.paper, row.paper_table = float(entry["value"]) * factor, str(entry["table"])
    row.paper_se = float(entry["se"]) * factor if isinstance(entry.get("se"), (int, float)) else None
    row.paper_differences = differences


def _run_info(run: LoadedRun) -> dict[str, Any]:
    return {"label": run.label, "model": run.model, "benchmark": run.benchmark, "run_id": run.run_id,
            "path": str(Path(run.root)), "prompt_set_sha256": run.prompt_set_sha256, "date": run.date,
            "images": _image_count(run), "config_hash": run.config_hash,
            "scorers": {s: run.scorer_version(s) for s in sorted(_scorers(run))}, "settings": run.settings}
