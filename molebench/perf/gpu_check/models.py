"""One model's row of the GPU check: load time, s/step, best batch size, peak memory, harness vs raw.

"Raw" is the model's own pipeline call (`run_pipeline`: `pipe(...)` with the model's call convention — SDXL's
refiner hand-off, VQ-Diffusion's one generator per call) on prompts that already carry the model's prompt text;
"harness" is what `molebench run` does for the same prompts and seeds: `generate_into` a fresh run folder (PNG
encoding, hashing, atomic writes, hash records) plus its parquet writes. Steps are few; s/step and the fixed cost per
call (text encoding, VAE decoding) come from two step counts at the best batch size, which projects a call at the
model's default steps — and so the paper protocol's GPU-hours and the harness ratio at default steps.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from molebench.perf.gpu_check.device import is_oom, memory_measure, peak_gib, release, reset_peak, timed
from molebench.perf.gpu_check.sources import Source

PAPER_IMAGES = 2 * 3000 * 3  # 2 benchmarks × 3,000 prompts × 3 repeats


def prompts_for(n: int) -> list[str]:
    from molebench.perf.scorers import PROMPTS

    return [PROMPTS[i % len(PROMPTS)] for i in range(n)]


def raw_call(model: Any, prompts: list[str], seeds: list[int], settings: Any) -> list:
    """The model's pipeline call on a batch, as `generate` makes it (one image per call where the model or the CPU
    needs that), without the harness around it."""
    one = not model.batches_generators or model.device.type == "cpu"
    chunks = [[i] for i in range(len(prompts))] if one else [list(range(len(prompts)))]
    images = []
    with torch.inference_mode(), model.memory.attention_context():
        for chunk in chunks:
            generators = [torch.Generator("cpu").manual_seed(seeds[i]) for i in chunk]
            images += model.run_pipeline(model.prompt_text.apply([prompts[i] for i in chunk]), generators, settings)
    return images


def search_batch(model: Any, settings: Any, device: torch.device, max_batch: int, budget_s: float) -> dict[str, Any]:
    """Batch sizes 1, 2, 4, … until one runs out of memory, stops paying (< 5% more images/s), passes `max_batch` or
    the time budget; the best images/s wins. Each trial's peak memory is recorded."""
    tried, best, started = [], None, time.perf_counter()
    batch = 1
    while batch <= max_batch:
        reset_peak(device)
        seconds = None
        try:
            seconds, _ = timed(device, lambda: raw_call(model, prompts_for(batch), list(range(batch)), settings))
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is expected; anything else propagates
            if not is_oom(exc):
                raise
        if seconds is None:  # released here, once the exception (and the tensors its frames hold) is gone
            release(device)
            tried.append({"batch": batch, "oom": True})
            break
        trial = {"batch": batch, "seconds": seconds, "images_per_s": batch / seconds, "peak_gib": peak_gib(device)}
        tried.append(trial)
        gain = best is None or trial["images_per_s"] > 1.05 * best["images_per_s"]
        if best is None or trial["images_per_s"] > best["images_per_s"]:
            best = trial
        if not gain or time.perf_counter() - started + 2.5 * seconds > budget_s:
            break
        batch *= 2
    return {"best": best, "tried": tried}


def harness_vs_raw(model: Any, settings: Any, device: torch.device, batch: int) -> dict[str, float]:
    """Two batches of the best size through the harness into a fresh run folder, and through the raw call."""
    from molebench.registry import BENCHMARKS
    from molebench.runner.generate_step import generate_into
    from molebench.runner.plan_step import plan_items
    from molebench.store import RunStore

    prompt_set = BENCHMARKS.get("tiny-human")().load()
    n = 2 * batch
    identity = {"name": model.registry_name, "weights_sha256": {}, "pipeline": model.pipeline_class,
                "extra": settings.extra}
    seeds = tuple(range(-(-n // len(prompt_set))))
    items = plan_items(prompt_set, seeds, None, identity, settings.to_json()).iloc[:n]
    prompts, gen_seeds = list(items["prompt"]), [int(s) for s in items["gen_seed"]]
    raw_s = sum(timed(device, lambda s=s: raw_call(model, prompts[s:s + batch], gen_seeds[s:s + batch],
                                                   settings))[0] for s in range(0, n, batch))
    with tempfile.TemporaryDirectory(prefix="molebench-gpu-check-") as tmp:
        store = RunStore(Path(tmp) / "run")
        store.prepare()

        def through_harness() -> None:
            generate_into(store, model, items, settings, batch)
            store.write_items(items)
            store.fold_image_records()

        harness_s, _ = timed(device, through_harness)
    return {"raw_images_per_s": n / raw_s, "harness_images_per_s": n / harness_s, "harness_vs_raw": raw_s / harness_s,
            "harness_overhead_s_per_image": max(0.0, (harness_s - raw_s) / n)}


def measure_model(source: Source, device: torch.device, steps: int, max_batch: int, budget_s: float,
                  size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Everything the check reports for one model (the GPU-hours are added once the scorers are measured)."""
    from molebench.registry import MODELS

    model = MODELS.get(source.name)(weights=source.weights())
    settings = model.settings(steps=steps, size=size, device=device)
    reset_peak(device)
    load_s, _ = timed(device, lambda: model.load(device, settings))
    timed(device, lambda: raw_call(model, prompts_for(1), [0], settings))  # warm-up (kernels, allocator)
    search = search_batch(model, settings, device, max_batch, budget_s)
    best = search["best"]
    if best is None:
        raise RuntimeError(f"{source.name}: batch 1 does not fit on {device}")
    batch = best["batch"]
    more = model.settings(steps=2 * steps, size=size, device=device)
    longer, _ = timed(device, lambda: raw_call(model, prompts_for(batch), list(range(batch)), more))
    per_step = max(0.0, (longer - best["seconds"]) / steps)
    fixed = max(0.0, best["seconds"] - steps * per_step)
    comparison = harness_vs_raw(model, settings, device, batch)
    default_s_per_image = (fixed + model.default_steps * per_step) / batch
    overhead = comparison["harness_overhead_s_per_image"]
    row = {
        "model": source.stands_for, "run_as": source.name, "status": "ok",
        "dtype": settings.dtype, "gpu_dtype": model.default_dtype_gpu, "size": [settings.width, settings.height],
        "steps": steps, "default_steps": model.default_steps, "load_s": load_s,
        "s_per_step": per_step, "fixed_s_per_call": fixed, "best_batch": batch,
        "images_per_s": best["images_per_s"], "batches_tried": search["tried"],
        "peak_memory_gib": best["peak_gib"], "memory_measure": memory_measure(device),
        **comparison,
        "harness_vs_raw_at_default_steps": default_s_per_image / (default_s_per_image + overhead),
        "s_per_image_at_default_steps": default_s_per_image,
        "gpu_hours_generation": PAPER_IMAGES * default_s_per_image / 3600,
    }
    model.pipe = None
    release(device)
    return row
