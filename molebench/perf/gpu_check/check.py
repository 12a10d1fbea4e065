"""Run the check: every model and scorer, most important first, within a time budget; one record for the JSON and
README rows."""

from __future__ import annotations

import functools
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import torch

from molebench.perf.gpu_check.device import device_name
from molebench.perf.gpu_check.models import PAPER_IMAGES, measure_model
from molebench.perf.gpu_check.report import add_gpu_hours
from molebench.perf.gpu_check.scorers import measure_scorer
from molebench.perf.gpu_check.sources import Source, Sources, in_priority


@dataclass(frozen=True)
class Plan:
    """How hard the check pushes: steps per call, batch-size ceiling and search time, scorer set sizes, and the
    total budget after which the remaining rows are reported as skipped."""

    steps: int
    max_batch: int
    search_s: float
    scorer_images: int
    scorer_batch: int
    reference_images: int
    budget_s: float


GPU_PLAN = Plan(steps=4, max_batch=64, search_s=12.0, scorer_images=64, scorer_batch=32, reference_images=4,
                budget_s=420.0)
REDUCED_PLAN = Plan(steps=2, max_batch=2, search_s=5.0, scorer_images=4, scorer_batch=2, reference_images=2,
                    budget_s=420.0)


def run_check(sources: Sources, device: torch.device, plan: Plan, say=print,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Measure every source on `device` in PRIORITY order; a row that fails or does not fit the budget says why, the
    rest go on. `on_row(record)` gets the record so far after each row (a killed run keeps what it measured)."""
    from molebench.perf.scorers import bench_inputs
    from molebench.runner.environment import quiet_library_progress, utc_now

    quiet_library_progress()  # imports the libraries: the budget counts from here, seconds in all as well
    started = time.perf_counter()
    inputs = functools.cache(lambda: bench_inputs(-(-plan.scorer_images // 4), 4))  # made when a scorer first needs them
    measures = {
        "model": lambda s: measure_model(s, device, plan.steps, plan.max_batch, plan.search_s),
        "scorer": lambda s: measure_scorer(s, device, inputs()[0][: plan.scorer_images],
                                           inputs()[1][: plan.scorer_images], plan.reference_images,
                                           plan.scorer_batch)}
    record = {"mode": sources.mode, "created": utc_now(),
              "device": {"name": device_name(device), "type": device.type, "torch": torch.__version__,
                         "cuda": torch.version.cuda if device.type == "cuda" else None},
              "plan": plan.__dict__, "protocol": {"benchmarks": 2, "prompts": 3000, "repeats": 3,
                                                  "images": PAPER_IMAGES}}
    done: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, source in in_priority(sources):
        done[kind, source.name] = _row(lambda s=source, k=kind: measures[k](s), source, kind, started, plan, say)
        record.update(_rows(sources, done), seconds=time.perf_counter() - started, complete=False)
        if on_row is not None:
            on_row(record)
    record.update(seconds=time.perf_counter() - started, complete=True)
    add_gpu_hours(record["models"], record["scorers"], PAPER_IMAGES)
    return record


def _rows(sources: Sources, done: dict[tuple[str, str], dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The measured rows in the sources' own order (the order of the tables), whatever order they ran in."""
    return {"models": [done[key] for s in sources.models if (key := ("model", s.name)) in done],
            "scorers": [done[key] for s in sources.scorers if (key := ("scorer", s.name)) in done]}


def _row(measure, source: Source, kind: str, started: float, plan: Plan, say) -> dict[str, Any]:
    from molebench.errors import MissingWeightsError

    base = {kind: source.stands_for, "run_as": source.name}
    if time.perf_counter() - started > plan.budget_s:
        return {**base, "status": f"skipped: over the {plan.budget_s:.0f} s budget"}
    say(f"gpu-check: {kind} {source.stands_for} ({source.name}) …")
    try:
        row = measure()
    except MissingWeightsError as exc:
        row = {**base, "status": f"skipped: {str(exc).splitlines()[0]}"}
    except Exception as exc:  # noqa: BLE001 - one broken model must not hide the others' figures
        row = {**base, "status": f"failed: {type(exc).__name__}: {exc}".splitlines()[0],
               "traceback": traceback.format_exc(limit=8)}
    say(f"gpu-check: {kind} {source.stands_for}: {row['status']}")
    return row
