"""One scorer's row of the GPU check: images/s batched vs the reference package's per-image loop, fp16 vs fp32.

The batched side is the registered scorer at the device's default precision (float16 on a GPU) scoring the whole
set in batches; the reference is the package's own per-image call (`hpsv2.img_score.score`, ImageReward's
`RM.score`) on the same device, where the bench's oracles (molebench.perf.oracles) adapt it; the precision figure
is the largest and the mean absolute difference between the scores (set scorers: their features) at float16 and at
float32 on the same images.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from molebench.perf.gpu_check.device import release, timed
from molebench.perf.gpu_check.sources import Source


def reference_loop(scorer: Any, device: torch.device) -> tuple[Callable[[Any, str], float] | None, str]:
    """The reference package's per-(image, prompt) call for `scorer`'s weights, and its name (None: no adapter or
    the package is not installed)."""
    from molebench.perf.oracles import NoTestSupportError, reference_module
    from molebench.scoring.hps import HPSScorer
    from molebench.scoring.imagereward import ImageRewardScorer

    try:
        reference = reference_module("gpu-check")
    except NoTestSupportError as exc:  # a wheel install: the check runs, without the reference comparison
        return None, str(exc)
    missing = reference.missing_reference()
    if missing:
        return None, missing
    if isinstance(scorer, HPSScorer):
        return reference.hps_reference(scorer.checkpoint_path(), scorer.model_config(), str(device)), "hpsv2 score"
    if isinstance(scorer, ImageRewardScorer):
        checkpoint, _, tokenizer = scorer.files()
        if tokenizer != checkpoint.parent:
            return None, "the ImageReward adapter wants checkpoint, med_config.json and vocab.txt in one folder"
        model = reference.imagereward_reference(checkpoint.parent, str(device))
        return (lambda image, prompt: model.score(prompt, image)), "ImageReward RM.score"
    return None, "no reference adapter for this scorer (the bench's oracles)"


def values(scorer: Any, images: list, prompts: list[str]) -> np.ndarray:
    """Primary metric of an image scorer, or the features of a set scorer (flattened)."""
    if scorer.kind == "set":
        return np.asarray(scorer.extract(images), dtype=np.float64).reshape(-1)
    return np.asarray(scorer.score(images, prompts)[scorer.metrics[0]], dtype=np.float64)


def measure_scorer(source: Source, device: torch.device, images: list, prompts: list[str], n_reference: int,
                   batch_size: int) -> dict[str, Any]:
    from molebench.registry import SCORERS

    cls = SCORERS.get(source.name)
    low = "float16" if device.type == "cuda" else "bfloat16"
    scorer = cls(device=device, dtype=low, batch_size=batch_size, weights=source.weights())
    values(scorer, images[:1], prompts[:1])  # load and warm up
    best = min(timed(device, lambda: values(scorer, images, prompts))[0] for _ in range(2))
    low_values = values(scorer, images, prompts)
    full = cls(device=device, dtype="float32", batch_size=batch_size, weights=source.weights())
    diff = np.abs(low_values - values(full, images, prompts))
    row = {"scorer": source.stands_for, "run_as": source.name, "status": "ok", "kind": cls.kind, "dtype": low,
           "batch_size": batch_size, "images": len(images), "images_per_s": len(images) / best,
           "low_vs_fp32_max_abs": float(diff.max()), "low_vs_fp32_mean_abs": float(diff.mean()),
           "compared": "features" if cls.kind == "set" else scorer.metrics[0],
           "precision_note": ("identical values: this scorer computes in float32 whatever dtype it is given"
                              if not diff.any() else "")}
    row.update(reference_row(scorer, device, images[:n_reference], prompts[:n_reference], len(images) / best))
    from molebench.scoring.base import release_shared_models

    release_shared_models()
    release(device)
    return row


def reference_row(scorer: Any, device: torch.device, images: list, prompts: list[str],
                  batched_images_per_s: float) -> dict[str, Any]:
    try:
        loop, name = reference_loop(scorer, device)
    except Exception as exc:  # noqa: BLE001 - the reference's own loading failed: the batched figures still stand
        loop, name = None, f"reference failed to load: {type(exc).__name__}: {exc}".splitlines()[0]
    if loop is None or scorer.kind == "set":
        return {"reference": None, "reference_note": name if loop is None else "set scorer",
                "reference_images_per_s": None, "batched_vs_reference": None}
    loop(images[0], prompts[0])  # warm-up (hpsv2 reads its checkpoint on every call, as in real use)
    seconds, _ = timed(device, lambda: [loop(im, p) for im, p in zip(images, prompts)])
    rate = len(images) / seconds
    return {"reference": name, "reference_note": "", "reference_images_per_s": rate,
            "batched_vs_reference": batched_images_per_s / rate}
