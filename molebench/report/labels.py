"""Names and colours of runs in tables and figures.

A run is named by its *label*. Labels are unique within a benchmark (two runs of one benchmark never share one), and
the same system (model, weights, generation settings, device type) run on several benchmarks keeps one label, so it
is one row of the overview table and one colour in every figure. By default the label is the model name; runs whose
model names clash get the shortest tail of their folder path that tells them apart (`runs/a/sd15` and
`runs/b/sd15` become `sd15 (a/sd15)` and `sd15 (b/sd15)`). `--label NAME=RUN` names a run explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Protocol

from molebench.atomic import sha256_json
from molebench.errors import InputError
from molebench.paths import path_tails
from molebench.store.manifest import Manifest


class LoadedRun(Protocol):
    """What labelling reads and writes of a run (report.runs.LoadedRun; not imported: runs imports this module)."""

    root: Path
    manifest: Manifest
    label: str

    @property
    def model(self) -> str: ...

    @property
    def benchmark(self) -> str: ...

# Colour-blind-safe qualitative palette (Okabe & Ito), then matplotlib's tab10 for runs beyond it.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
           "#8c564b", "#7f7f7f", "#bcbd22", "#17becf"]


def parse_label_options(options: Iterable[str]) -> dict[Path, str]:
    """`NAME=RUN` strings into {resolved run folder: name}; the name is everything before the first '='."""
    named: dict[Path, str] = {}
    for option in options:
        name, sep, run = option.partition("=")
        name, run = name.strip(), run.strip()
        if not sep or not name or not run:
            raise InputError(f"--label {option!r}: expected NAME=RUN (e.g. --label 'SD 1.5=runs/coco/sd15')")
        path = Path(run).resolve()
        if path in named and named[path] != name:
            raise InputError(f"--label: run {run} is named twice ({named[path]!r} and {name!r})")
        named[path] = name
    return named


def system_key(run: LoadedRun) -> str:
    """What makes two runs the same system: the run identity without the prompt set."""
    identity = run.manifest.identity
    identity.pop("prompt_set_sha256", None)
    return sha256_json(identity or {"model": run.model})


def assign_labels(runs: list[LoadedRun], named: Mapping[Path, str] | None = None) -> None:
    """Give every run a label (see the module docstring); refuse names that would merge two runs of one benchmark."""
    named = dict(named or {})
    known = {run.root.resolve() for run in runs}
    for path, name in named.items():
        if path not in known:
            raise InputError(f"--label {name}={path}: that folder is not one of the runs given")
    by_model: dict[str, list[LoadedRun]] = {}
    taken = {(run.benchmark, named[run.root.resolve()]) for run in runs if run.root.resolve() in named}
    for run in runs:
        if run.root.resolve() not in named:
            by_model.setdefault(run.model, []).append(run)
    for model, group in by_model.items():
        systems = {system_key(r) for r in group}
        benchmarks = [r.benchmark for r in group]
        clash = any((r.benchmark, model) in taken for r in group)
        if len(systems) == 1 and len(set(benchmarks)) == len(benchmarks) and not clash:
            for run in group:
                run.label = model
        else:
            for run, tail in zip(group, path_tails([r.root for r in group])):
                run.label = f"{model} ({tail})"
    for run in runs:
        if run.root.resolve() in named:
            run.label = named[run.root.resolve()]
    check_unique(runs)


def check_unique(runs: list[LoadedRun]) -> None:
    """Two runs of one benchmark under one label would be drawn and tabled as one: refuse."""
    seen: dict[tuple[str, str], LoadedRun] = {}
    for run in runs:
        key = (run.benchmark, run.label)
        if key in seen:
            other = seen[key]
            if other.root.resolve() == run.root.resolve():
                raise InputError(f"run {run.root} is given twice")
            raise InputError(f"runs {other.root} and {run.root} are both labelled {run.label!r} on benchmark "
                             f"{run.benchmark}: give each run of a benchmark its own name with --label NAME=RUN")
        seen[key] = run


def colours(labels: Iterable[str]) -> dict[str, str]:
    """One colour per label, in order of first appearance: the same run has the same colour in every figure."""
    order = list(dict.fromkeys(labels))
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(order)}
