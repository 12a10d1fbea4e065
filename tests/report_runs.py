"""Synthetic run folders for report tests: manifest, items, tiny PNGs and scores written with the RunStore API.

Values are raw scorer values (hps-tiny is displayed ×100), one row per prompt and one column per seed, so a test
states its effect exactly instead of generating images.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from molebench.atomic import sha256_json
from molebench.store import RunStore
from molebench.store.run_store import score_rows
from molebench.store.summary import summarise

PROMPTS = [f"a person number {i} waving a hand" for i in range(200)]


def make_run(
    root: Path,
    values: np.ndarray | Sequence[float],
    model: str = "model-a",
    benchmark: str = "bench-x",
    prompt_set: str = "set-1",
    seeds: Sequence[int] = (0,),
    scorer: str = "hps-tiny",
    version: str = "hps-tiny",
    metric: str = "hps",
    extra: dict[str, np.ndarray] | None = None,
    status: str = "complete",
    date: str = "2026-01-02T03:04:05+00:00",
    checkpoint_sha256: str = "c" * 64,
) -> Path:
    """A complete run folder whose `scorer/metric` scores are `values` (prompts × seeds); `extra` adds metrics."""
    grid = np.asarray(values, dtype=np.float64)
    grid = grid.reshape(len(grid), -1) if grid.ndim == 1 else grid
    n_prompts, n_seeds = grid.shape
    assert n_seeds == len(seeds) and n_prompts <= len(PROMPTS)
    store = RunStore(root)
    store.prepare()
    rows = []
    for p in range(n_prompts):
        for s, seed in enumerate(seeds):
            key = hashlib.sha256(f"{model}|{p}|{seed}".encode()).hexdigest()[:24]
            rows.append({"key": key, "prompt_index": p, "prompt_id": f"p{p:03d}", "prompt": PROMPTS[p],
                         "seed": int(seed), "gen_seed": p * 1000 + seed, "image": f"images/{key}.png"})
            shade = int(np.clip(128 + 400 * (grid[p, s] - grid.mean()), 0, 255))
            store.write_image(key, Image.new("RGB", (16, 16), (shade, 255 - shade, (p * 37) % 256)))
    items = pd.DataFrame(rows)
    store.write_items(items)
    metrics = {metric: grid.reshape(-1)}
    store.write_score_shard(f"{scorer}-0", score_rows(items, scorer, version, metrics))
    for name, extra_values in (extra or {}).items():
        extra_scorer, extra_metric = name.split("/")
        rows_extra = score_rows(items, extra_scorer, extra_scorer, {extra_metric: np.asarray(extra_values).reshape(-1)})
        store.write_score_shard(f"{extra_scorer}-0", rows_extra)
    store.merge_scores()
    prompt_sha = hashlib.sha256(prompt_set.encode()).hexdigest()
    identity = {"model": {"name": model}, "prompt_set_sha256": prompt_sha, "settings": {"steps": 2}}
    scorers = {scorer: {"name": scorer, "version": version, "checkpoint": "/somewhere/x.pt",
                        "checkpoint_sha256": checkpoint_sha256}}
    for name in [f"{scorer}/{metric}", *(extra or {})]:
        entry_scorer, entry_metric = name.split("/")
        entry = scorers.setdefault(entry_scorer, {"name": entry_scorer, "version": entry_scorer})
        for fact, value in metric_facts(entry_metric).items():
            entry.setdefault(fact, {})[entry_metric] = value
    store.write_summary(summarise(store.read_scores(), scorers))
    store.write_manifest({
        "molebench_version": "0.1.0", "status": status, "created": date, "updated": date,
        "config": {"model": model, "benchmark": benchmark, "seeds": list(seeds)},
        "identity": identity, "identity_sha256": sha256_json(identity),
        "model": {"name": model, "weights_sha256": {}}, "benchmark": {"name": benchmark,
                                                                       "prompt_set_sha256": prompt_sha},
        "prompt_set_sha256": prompt_sha, "seeds": list(seeds), "scorers": scorers,
        "counts": {"items": len(items)},
    })
    return root


def metric_facts(metric: str) -> dict[str, object]:
    """What a scorer fingerprint records per metric, as the real scorers record it: HPS is shown ×100, and the
    paper's tables show HPS and ImageReward ×100."""
    display = 100.0 if metric == "hps" else 1.0
    return {"display_scale": display, "higher_is_better": True,
            "paper_scale": 100.0 if metric in ("hps", "imagereward") else display}
