"""Scorer throughput: molebench's batched scorers vs the reference packages' per-image loops, same tiny weights.

Side by side in one process, same images (512 px, like SD1.5 outputs) and prompts (8 prompts × 4 seeds, as a
benchmark run has them). The references are `hpsv2.img_score.score` per (image, prompt) — which re-reads its
checkpoint on every call, as the package does — and ImageReward's `RM.score` per image with the model loaded once.
They are loaded through molebench_testing.reference (the same adapters the parity tests use; a source checkout has
it, a wheel does not), so this section needs the reference packages installed (`make install` adds them). With tiny
weights this measures the harness around the networks (preprocessing, batching, loading); `scorers-full` measures the
full-size networks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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


def bench_inputs(n_prompts: int = N_PROMPTS, n_seeds: int = N_SEEDS) -> tuple[list[Any], list[str]]:
    """512 px photographs (rotated per seed) and their prompts, the seeds of a prompt next to each other."""
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    images, prompts = [], []
    for p in range(n_prompts):
        for s in range(n_seeds):
            array = sources[(p + s) % len(sources)]
            images.append(Image.fromarray(array).rotate(7 * s + p).resize((512, 512)))
            prompts.append(PROMPTS[p])
    return images, prompts


def ratio_text(ratio: float, target: float) -> str:
    """`ratio` with two decimals, or as many more as keep it from rounding onto the target (4.996 is not 5.00)."""
    digits = 2
    while digits < 6 and ratio != target and round(ratio, digits) == target:
        digits += 1
    return f"{ratio:.{digits}f}×"


def verdict(name: str, ratio: float, target: float) -> str:
    """`name ratio met|NOT met`, decided on the unrounded ratio."""
    return f"{name} {ratio_text(ratio, target)} {'met' if ratio >= target else 'NOT met'}"


@dataclass(frozen=True)
class PairTiming:
    """Best-of-n wall times of one scorer's two implementations on the same inputs, and how far their scores differ."""

    name: str
    n_images: int
    ours_s: float
    reference_s: float
    max_diff: float

    @property
    def ratio(self) -> float:
        return self.reference_s / self.ours_s


def _timed(fn: Callable[[], Any]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    values = np.asarray(fn(), dtype=np.float64).reshape(-1)
    return time.perf_counter() - start, values


def time_pair(name: str, n_images: int, ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int,
              warm_up: tuple[Callable[[], Any], Callable[[], Any]] | None = None) -> PairTiming:
    """Best of `repeats` runs each, alternated so that load shifts hit both sides; `warm_up` (default: one full run
    of each) loads weights and makes the first-call allocations outside the timing."""
    for fn in warm_up or (ours, theirs):
        fn()
    runs = [(_timed(ours), _timed(theirs)) for _ in range(repeats)]
    (t_ours, v_ours), (t_ref, v_ref) = min(r[0] for r in runs), min(r[1] for r in runs)
    return PairTiming(name, n_images, t_ours, t_ref, float(np.abs(v_ours - v_ref).max()))


def throughput_table(title: str, timings: list[PairTiming]) -> Table:
    table = Table(title=title)
    for column in ("scorer", "molebench img/s", "reference img/s", "ratio", "max |diff|"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for t in timings:
        table.add_row(t.name, f"{t.n_images / t.ours_s:.2f}", f"{t.n_images / t.reference_s:.2f}",
                      f"{t.ratio:.2f}×", f"{t.max_diff:.1e}")
    return table


def load_average() -> str:
    import os

    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return f"{os.cpu_count()} cores"


def run(console) -> None:
    from molebench.perf.oracles import reference_module

    reference = reference_module("scorers")
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
    timings = [
        time_pair("hps-tiny", len(images), lambda: hps.score(images, prompts)["hps"],
                  lambda: [hps_ref(im, p) for im, p in zip(images, prompts)], REPEATS),
        time_pair("imagereward-tiny", len(images), lambda: reward.score(images, prompts)["imagereward"],
                  lambda: [reward_ref.score(p, im) for im, p in zip(images, prompts)], REPEATS),
    ]
    console.print(throughput_table(f"scorer throughput, tiny weights, {len(images)} images of 512 px, batch "
                                   f"{BATCH_SIZE} (CPU unless CUDA)", timings))
    console.print(f"ratio = reference per-image loop time / molebench batched time, best of {REPEATS} alternated runs "
                  f"each ({load_average()}); target ≥ {TARGET:g}× on CPU: "
                  f"{', '.join(verdict(t.name, t.ratio, TARGET) for t in timings)}")
