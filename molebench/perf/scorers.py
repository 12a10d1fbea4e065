"""Scorer throughput: molebench's batched scorers vs the reference packages' per-image loops, same tiny weights.

Side by side in one process, same images (512 px, like SD1.5 outputs) and prompts (8 prompts × 4 seeds, as a
benchmark run has them). The references are `hpsv2.img_score.score` per (image, prompt) — which re-reads its
checkpoint on every call, as the package does — and ImageReward's `RM.score` per image with the model loaded once.
They are loaded through molebench.perf.reference (the same adapters the parity tests use), so this section needs the
reference packages installed (`make install` adds them).
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
from rich.table import Table

N_PROMPTS, N_SEEDS, BATCH_SIZE, REPEATS = 8, 4, 16, 7
TARGET = 5.0
PROMPTS = [
    "a portrait photo of a smiling woman", "a man holding a guitar", "two children playing in a park",
    "close up of a hand holding a cup of coffee", "an elderly man reading a book", "a dancer on a stage",
    "a chef in a kitchen", "a family walking on the beach",
]


def bench_inputs() -> tuple[list[Any], list[str]]:
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    images, prompts = [], []
    for p in range(N_PROMPTS):
        for s in range(N_SEEDS):
            array = sources[(p + s) % len(sources)]
            images.append(Image.fromarray(array).rotate(7 * s + p).resize((512, 512)))
            prompts.append(PROMPTS[p])
    return images, prompts


def _timed(fn: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    values = np.asarray(fn(), dtype=np.float64)
    return time.perf_counter() - start, values


def run(console) -> None:
    from molebench.perf import reference

    reason = reference.missing_reference()
    if reason:
        console.print(f"scorers: skipped — {reason}")
        return
    from molebench.scoring.hps import TINY_HPS_CONFIG, TinyHPS
    from molebench.scoring.imagereward import TinyImageReward

    images, prompts = bench_inputs()
    hps, reward = TinyHPS(batch_size=BATCH_SIZE), TinyImageReward(batch_size=BATCH_SIZE)
    hps_ref = reference.hps_reference(hps.checkpoint_path(), TINY_HPS_CONFIG)
    reward_ref = reference.imagereward_reference(reward.folder())
    pairs = {
        "hps-tiny": (lambda: hps.score(images, prompts)["hps"],
                     lambda: [hps_ref(im, p) for im, p in zip(images, prompts)]),
        "imagereward-tiny": (lambda: reward.score(images, prompts)["imagereward"],
                             lambda: [reward_ref.score(p, im) for im, p in zip(images, prompts)]),
    }
    table = Table(title=f"scorer throughput, {len(images)} images of 512 px, batch {BATCH_SIZE} (CPU unless CUDA)")
    for column in ("scorer", "molebench img/s", "reference img/s", "ratio", "max |diff|"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    verdicts = []
    for name, (ours, theirs) in pairs.items():
        ours()  # warm-up: load weights, first-call allocations
        theirs()
        runs = [(_timed(ours), _timed(theirs)) for _ in range(REPEATS)]  # alternated, so load shifts hit both
        (t_ours, v_ours), (t_ref, v_ref) = min(r[0] for r in runs), min(r[1] for r in runs)
        ratio = t_ref / t_ours
        table.add_row(name, f"{len(images) / t_ours:.1f}", f"{len(images) / t_ref:.1f}", f"{ratio:.1f}×",
                      f"{np.abs(v_ours - v_ref).max():.1e}")
        verdicts.append(f"{name} {'met' if ratio >= TARGET else 'NOT met'}")
    console.print(table)
    console.print(f"ratio = reference per-image loop time / molebench batched time, best of {REPEATS} alternated runs "
                  f"each; target ≥ {TARGET:g}× on CPU: {', '.join(verdicts)}")
