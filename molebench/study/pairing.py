"""Choose the pairs of a study from two or more run folders.

A pair is the images of two runs for the same prompt id and seed, so raters compare the models, not the prompts.
Runs made from different prompt sets are refused: the same prompt id could name different text. With two runs every
pair is A against B. With N runs each (prompt, seed) is compared in one of the N(N-1)/2 run pairs, the run pairs
dealt out in turn over the items in random order, so every run pair gets the same number of comparisons (+-1) and a
prompt is seen twice only once every prompt has been seen; `--n` takes a prefix of that sequence (default: every
item in every run pair). Which run is shown on the left is counterbalanced within each run pair (the first on the
left in exactly half its pairs, +-1). All of it comes from a seeded RNG, so `study create` with the same seed is
reproducible; two-run studies are drawn exactly as before schema 3.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pandas as pd

from molebench import ui
from molebench.errors import IncompatibleRunsError, InputError, UsageError
from molebench.paths import path_tails
from molebench.store import RunStore
from molebench.store.manifest import Manifest
from molebench.study.db import MAX_RUNS, RunInfo


def run_info(side: str, root: Path) -> tuple[RunInfo, Manifest, pd.DataFrame]:
    """Manifest, items (with existing images only) and identity of one run folder."""
    store = RunStore(root)
    manifest = store.require_manifest()
    items = store.read_items()
    model = manifest.model_name
    info = RunInfo(side=side, path=str(root.resolve()), model=model, label=model,
                   identity_sha256=manifest.identity_sha256)
    present = items["image"].map(lambda rel: (root / rel).is_file())
    if not present.all():
        ui.err.print(f"{root}: {int((~present).sum())} of {len(items)} images are missing; those items are left out",
                     soft_wrap=True, markup=False)
    return info, manifest, items[present]


def build_pairs(run_dirs: list[str | Path], n: int | None, seed: int) -> tuple[list[RunInfo], pd.DataFrame, dict]:
    """RunInfo of each run (sides A, B, C, ...), the chosen pairs (id = presentation order) and study metadata."""
    roots = [Path(run) for run in run_dirs]
    check_roots(roots)
    loaded = [run_info(chr(ord("A") + index), root) for index, root in enumerate(roots)]
    infos, manifests, items = [i for i, _, _ in loaded], [m for _, m, _ in loaded], [t for _, _, t in loaded]
    sha = check_prompt_sets(roots, manifests)
    infos = distinct_labels(infos, roots)
    common = common_items(roots, items)
    if n is not None and n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    combos = list(itertools.combinations(range(len(roots)), 2))
    available = len(common) * len(combos)
    count = available if n is None else min(n, available)
    if n is not None and n > available:
        ui.err.print(f"asked for {n} pairs but only {available} (prompt, seed, run pair) comparisons exist; using all",
                     soft_wrap=True, markup=False)
    rng = random.Random(seed)
    picks = two_run_picks(rng, len(common), count) if len(combos) == 1 else dealt_picks(rng, len(common), combos, count)
    left = left_sides(rng, [combo for _, combo in picks], combos)
    rows = []
    for pair_id, ((item, combo), on_left) in enumerate(zip(picks, left), start=1):
        first, second = (infos[i].side for i in combo)
        row = common.iloc[item]
        rows.append({"id": pair_id, "prompt_index": int(row["prompt_index"]), "prompt_id": str(row["prompt_id"]),
                     "prompt": str(row["prompt"]), "seed": int(row["seed"]),
                     "side_a": first, "key_a": row[f"key_{first}"], "image_a": row[f"image_{first}"],
                     "side_b": second, "key_b": row[f"key_{second}"], "image_b": row[f"image_{second}"],
                     "left_side": first if on_left else second})
    meta = {"seed": seed, "prompt_set_sha256": sha, "n_available": available, "n_runs": len(roots),
            "benchmark": manifests[0].benchmark_name}
    return infos, pd.DataFrame(rows), meta


def check_roots(roots: list[Path]) -> None:
    if len(roots) < 2:
        raise UsageError("a study compares at least two runs: --runs RUN_A RUN_B [RUN_C ...]")
    if len(roots) > MAX_RUNS:
        raise UsageError(f"a study holds at most {MAX_RUNS} runs, got {len(roots)}")
    resolved = [root.resolve() for root in roots]
    twice = sorted({str(root) for root, key in zip(roots, resolved) if resolved.count(key) > 1})
    if twice:
        what = f"both runs are the same folder {twice[0]}" if len(roots) == 2 else f"a folder is named twice: {twice[0]}"
        raise InputError(f"{what}; a study compares different runs")


def check_prompt_sets(roots: list[Path], manifests: list[Manifest]) -> str:
    """The runs' common prompt-set sha256; different prompt sets cannot be paired."""
    shas = [manifest.prompt_set_sha256 for manifest in manifests]
    for root, sha in zip(roots, shas):
        if not sha:
            raise InputError(f"run manifest without prompt_set_sha256: {root}")
    for root, sha in zip(roots[1:], shas[1:]):
        if sha != shas[0]:
            raise IncompatibleRunsError(
                f"runs use different prompt sets and cannot be paired: {roots[0]} has prompt set {shas[0][:12]}, "
                f"{root} has {sha[:12]}; run every model on the same benchmark")
    return shas[0]


def distinct_labels(infos: list[RunInfo], roots: list[Path]) -> list[RunInfo]:
    """Runs of the same model (e.g. other settings) are told apart by their folder path."""
    labels = [info.label for info in infos]
    shared = [index for index, label in enumerate(labels) if labels.count(label) > 1]
    if not shared:
        return infos
    tails = dict(zip(shared, path_tails([roots[index] for index in shared])))
    return [RunInfo(**{**info.__dict__, "label": f"{info.model} ({tails[index]})"}) if index in tails else info
            for index, info in enumerate(infos)]


def common_items(roots: list[Path], items: list[pd.DataFrame]) -> pd.DataFrame:
    """(prompt id, seed) with an image in every run: prompt_index, prompt, and key_X / image_X per side X."""
    merged = None
    for index, frame in enumerate(items):
        side = chr(ord("A") + index)
        part = frame[["prompt_id", "seed", "prompt_index", "prompt", "key", "image"]].rename(
            columns={"key": f"key_{side}", "image": f"image_{side}", "prompt_index": f"prompt_index_{side}",
                     "prompt": f"prompt_{side}"})
        merged = part if merged is None else merged.merge(part, on=["prompt_id", "seed"], validate="one_to_one")
    if merged is None or merged.empty:
        raise InputError(f"{', '.join(map(str, roots))} share no (prompt id, seed) with an image in every run")
    merged = merged.rename(columns={"prompt_index_A": "prompt_index", "prompt_A": "prompt"})
    return merged.sort_values(["prompt_index", "seed"], kind="mergesort").reset_index(drop=True)


def two_run_picks(rng: random.Random, items: int, count: int) -> list[tuple[int, tuple[int, int]]]:
    """Two runs: a random subset of the items in random order (the draw of studies made before schema 3)."""
    return [(item, (0, 1)) for item in rng.sample(range(items), count)]


def dealt_picks(rng: random.Random, items: int, combos: list[tuple[int, int]], count: int
                ) -> list[tuple[int, tuple[int, int]]]:
    """N runs: in round r the item at place i of a random order is compared in run pair (i + r) mod K, so each
    round sees every item once, run pairs in turn, and no item meets the same run pair twice; the first `count`
    comparisons, in random presentation order."""
    order = rng.sample(range(items), items)
    dealt = rng.sample(combos, len(combos))
    sequence = [(item, dealt[(place + rnd) % len(dealt)]) for rnd in range(len(dealt))
                for place, item in enumerate(order)]
    chosen = sequence[:count]
    rng.shuffle(chosen)
    return chosen


def left_sides(rng: random.Random, combos_of_pairs: list[tuple[int, int]], combos: list[tuple[int, int]]
               ) -> list[bool]:
    """Per pair: is the run pair's first run on the left? True in exactly half of each run pair's pairs (+-1)."""
    on_left = [False] * len(combos_of_pairs)
    for combo in combos:
        places = [i for i, c in enumerate(combos_of_pairs) if c == combo]
        sides = [True] * ((len(places) + 1) // 2) + [False] * (len(places) // 2)
        rng.shuffle(sides)
        for place, side in zip(places, sides):
            on_left[place] = side
    return on_left
