"""Speed of the human instruments: the `faces` and `hands` scorers, whose cost is their detector's.

Two measurements, side by side in one process on the same images (real photographs of people, scikit-image's
astronaut and matplotlib's Grace Hopper, turned and mirrored, at 512 px as SD1.5 outputs are), for every registered
detector:

- batched / one image at a time: faces+hands scoring all images in one call (the detector sees batches) against one
  call per image; on CUDA when there is one, else on the CPU (a detector without a GPU path runs on the CPU);
- on the CPU, faces+hands against HPS v1 over the same images: issue 22 asks that the face and hand instruments over
  a run take no longer than HPS v1 over it (target ratio HPS v1 time / faces+hands time ≥ 1). HPS v1 runs at full
  size (OpenAI CLIP ViT-L/14) with seeded random weights, built as the `scorers-full` section builds it: random
  weights cost the arithmetic of the real ones.

Detections are forgotten before every timed call (the process memo would make every repeat after the first free),
and faces and hands share one detection per image, as in a run. Best of REPEATS, alternated.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from rich.table import Table

from molebench.perf.scorers import load_average, ratio_text, verdict

N_IMAGES, REPEATS, SIZE = 8, 3, 512
TARGET_VS_HPS = 1.0
PROMPTS = ["a portrait photo of an astronaut smiling", "an elderly woman in uniform, portrait",
           "a person waving with one hand", "close up of a face and two hands"]


def people_inputs(n: int = N_IMAGES) -> tuple[list[Any], list[str]]:
    """`n` photographs of people at SIZE px (turned by a few degrees, every other one mirrored) and their prompts."""
    from matplotlib import cbook
    from PIL import Image, ImageOps
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        sources = [Image.fromarray(data.astronaut()), Image.open(handle).convert("RGB")]
    images = []
    for index in range(n):
        image = sources[index % 2].rotate(5 * (index // 2), fillcolor=(128, 128, 128)).resize((SIZE, SIZE))
        images.append(ImageOps.mirror(image) if (index // 2) % 2 else image)
    return images, [PROMPTS[i % len(PROMPTS)] for i in range(n)]


def people_scorers(detector: str, device: str, batch_size: int) -> list:
    """The `faces` and `hands` scorers on detector `detector`."""
    from molebench.scoring.detect.found import shared_detector
    from molebench.scoring.people import Faces, Hands

    scorers = [Faces(device=device, batch_size=batch_size), Hands(device=device, batch_size=batch_size)]
    for scorer in scorers:
        scorer.detector = shared_detector(detector, device)
        scorer.load()
    return scorers


def score_people(scorers: list, images: list, prompts: list[str], one_at_a_time: bool) -> np.ndarray:
    """Every metric of `scorers` over the images (NaN as -1, so two runs compare), detections forgotten first."""
    from molebench.scoring.detect.found import forget_detections

    forget_detections()
    calls = [([im], [p]) for im, p in zip(images, prompts)] if one_at_a_time else [(images, prompts)]
    values = []
    for scorer in scorers:
        for metric in scorer.metrics:
            values.append(np.concatenate([scorer.score(ims, ps)[metric] for ims, ps in calls]))
    return np.nan_to_num(np.stack(values), nan=-1.0)


def best_of(functions: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Best wall time of each function over `repeats` alternated rounds (after one warm-up call each), and its
    last result."""
    results = {name: fn() for name, fn in functions.items()}
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            results[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results


def batched_vs_single(detector: str, device: str, images: list, prompts: list[str]) -> tuple[float, float, float]:
    """Seconds for faces+hands batched and one image at a time, and the largest difference of their values."""
    scorers = people_scorers(detector, device, len(images))
    best, values = best_of({"batched": lambda: score_people(scorers, images, prompts, False),
                            "single": lambda: score_people(scorers, images, prompts, True)}, REPEATS)
    return best["batched"], best["single"], float(np.abs(values["batched"] - values["single"]).max())


def versus_hps_v1(detectors: list[str], images: list, prompts: list[str]) -> dict[str, float]:
    """Seconds on the CPU for HPS v1 (full size, random weights) and for faces+hands on each detector (default
    batch sizes, as a run scores them), alternated."""
    from molebench.perf.scorers_full import hps_v1_files
    from molebench.scoring.hps_v1 import HPSv1

    with tempfile.TemporaryDirectory(prefix="molebench-bench-") as tmp:
        hps = HPSv1(weights=hps_v1_files(Path(tmp) / "hps_v1", base=False), device="cpu")
        hps.load()
    functions: dict[str, Callable[[], Any]] = {"hps-v1": lambda: hps.score(images, prompts)["hps"]}
    for name in detectors:
        scorers = people_scorers(name, "cpu", 16)
        functions[name] = lambda scorers=scorers: score_people(scorers, images, prompts, False)
    return best_of(functions, REPEATS)[0]


def run(console) -> None:
    import torch

    from molebench.registry import DETECTORS

    images, prompts = people_inputs()
    detectors = DETECTORS.names()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    table = Table(title=f"faces+hands scorers, {len(images)} photographs of people of {SIZE} px, best of {REPEATS}, "
                        f"{torch.get_num_threads()} torch threads ({load_average()})")
    for column in ("detector", "device", "batched img/s", "single img/s", "ratio", "max |diff|"):
        table.add_column(column, justify="left" if column in ("detector", "device") else "right", no_wrap=True)
    for name in detectors:
        batched, single, diff = batched_vs_single(name, device, images, prompts)
        table.add_row(name, device, f"{len(images) / batched:.2f}", f"{len(images) / single:.2f}",
                      ratio_text(single / batched, 1.0), f"{diff:.1e}")
    console.print(table)
    console.print("ratio = one image at a time / batched (faces+hands scorers; their values must agree: max |diff|)")
    times = versus_hps_v1(detectors, images, prompts)
    hps = times.pop("hps-v1")
    console.print(f"CPU, same {len(images)} images: hps-v1 (full-size ViT-L/14, random weights) "
                  f"{len(images) / hps:.2f} img/s; " + "; ".join(f"faces+hands ({name}) {len(images) / t:.2f} img/s"
                                                                 for name, t in times.items()))
    console.print(f"ratio = hps-v1 time / faces+hands time, best of {REPEATS} alternated runs each "
                  f"({load_average()}); target ≥ {TARGET_VS_HPS:g}× (faces+hands no slower than HPS v1): "
                  + ", ".join(verdict(f"faces+hands ({name})", hps / t, TARGET_VS_HPS) for name, t in times.items()))
