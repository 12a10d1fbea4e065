"""Run the check: every model, then every scorer, within a time budget; one record for the JSON and README rows."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

import torch

from molebench.perf.gpu_check.device import device_name
from molebench.perf.gpu_check.models import PAPER_IMAGES, measure_model
from molebench.perf.gpu_check.report import add_gpu_hours
from molebench.perf.gpu_check.scorers import measure_scorer
from molebench.perf.gpu_check.sources import Source, Sources


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


def run_check(sources: Sources, device: torch.device, plan: Plan, say=print) -> dict[str, Any]:
    """Measure every source on `device`; a row that fails or does not fit the budget says why, the rest go on."""
    from molebench.perf.scorers import bench_inputs

    started = time.perf_counter()
    from molebench.runner.environment import quiet_library_progress, utc_now

    quiet_library_progress()
    models = [_row(lambda s=s: measure_model(s, device, plan.steps, plan.max_batch, plan.search_s), s, "model",
                   started, plan, say) for s in sources.models]
    images, prompts = bench_inputs(-(-plan.scorer_images // 4), 4)
    scorers = [_row(lambda s=s: measure_scorer(s, device, images[: plan.scorer_images],
                                               prompts[: plan.scorer_images], plan.reference_images,
                                               plan.scorer_batch), s, "scorer", started, plan, say)
               for s in sources.scorers]
    add_gpu_hours(models, scorers, PAPER_IMAGES)
    return {"mode": sources.mode, "created": utc_now(),
            "device": {"name": device_name(device), "type": device.type, "torch": torch.__version__,
                       "cuda": torch.version.cuda if device.type == "cuda" else None},
            "plan": plan.__dict__, "protocol": {"benchmarks": 2, "prompts": 3000, "repeats": 3,
                                                "images": PAPER_IMAGES},
            "models": models, "scorers": scorers, "seconds": time.perf_counter() - started}


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
