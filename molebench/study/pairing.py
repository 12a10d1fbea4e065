"""Choose the pairs of a study from two run folders.

A pair is the image of run A and the image of run B for the same prompt id and seed, so raters compare the models,
not the prompts. Runs made from different prompt sets are refused: the same prompt id could name different text.
Which run is shown on the left is counterbalanced (A on the left in exactly half the pairs, +-1) and randomised with
a seeded RNG, as is the choice of `n` pairs and their order, so `study create` with the same seed is reproducible.
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from molebench import ui
from molebench.errors import IncompatibleRunsError, InputError
from molebench.paths import path_tails
from molebench.store import RunStore
from molebench.study.db import RunInfo
from molebench.store.manifest import Manifest


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


def build_pairs(run_a: str | Path, run_b: str | Path, n: int | None, seed: int
                ) -> tuple[list[RunInfo], pd.DataFrame, dict]:
    """RunInfo for A and B, the chosen pairs (id = presentation order) and study metadata."""
    root_a, root_b = Path(run_a), Path(run_b)
    if root_a.resolve() == root_b.resolve():
        raise InputError(f"both runs are the same folder {root_a}; a study compares two different runs")
    info_a, manifest_a, items_a = run_info("A", root_a)
    info_b, manifest_b, items_b = run_info("B", root_b)
    sha_a, sha_b = manifest_a.prompt_set_sha256, manifest_b.prompt_set_sha256
    if not sha_a or not sha_b:
        raise InputError(f"run manifest without prompt_set_sha256: {root_a if not sha_a else root_b}")
    if sha_a != sha_b:
        raise IncompatibleRunsError(
            f"runs use different prompt sets and cannot be paired: {root_a} has prompt set {sha_a[:12]}, "
            f"{root_b} has {sha_b[:12]}; run both models on the same benchmark")
    if info_a.label == info_b.label:  # same model twice (e.g. other settings): tell them apart by folder path
        tail_a, tail_b = path_tails([root_a, root_b])
        info_a = RunInfo(**{**info_a.__dict__, "label": f"{info_a.model} ({tail_a})"})
        info_b = RunInfo(**{**info_b.__dict__, "label": f"{info_b.model} ({tail_b})"})

    merged = items_a.merge(items_b, on=["prompt_id", "seed"], suffixes=("_a", "_b"), validate="one_to_one")
    if merged.empty:
        raise InputError(f"{root_a} and {root_b} share no (prompt id, seed) with an image in both runs")
    merged = merged.sort_values(["prompt_index_a", "seed"], kind="mergesort").reset_index(drop=True)
    available = len(merged)
    if n is not None and n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    count = available if n is None else min(n, available)
    if n is not None and n > available:
        ui.err.print(f"asked for {n} pairs but only {available} (prompt, seed) pairs exist in both runs; using all",
                     soft_wrap=True, markup=False)

    rng = random.Random(seed)
    chosen = merged.iloc[rng.sample(range(available), count)].reset_index(drop=True)  # random subset, random order
    sides = ["A"] * ((count + 1) // 2) + ["B"] * (count // 2)
    rng.shuffle(sides)
    pairs = pd.DataFrame({
        "id": range(1, count + 1),
        "prompt_index": chosen["prompt_index_a"].astype(int),
        "prompt_id": chosen["prompt_id"].astype(str),
        "prompt": chosen["prompt_a"].astype(str),
        "seed": chosen["seed"].astype(int),
        "key_a": chosen["key_a"], "image_a": chosen["image_a"],
        "key_b": chosen["key_b"], "image_b": chosen["image_b"],
        "left_side": sides,
    })
    meta = {"seed": seed, "prompt_set_sha256": sha_a, "n_available": available,
            "benchmark": manifest_a.benchmark_name}
    return [info_a, info_b], pairs, meta
