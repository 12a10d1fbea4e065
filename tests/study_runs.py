"""Synthetic run folders for the study tests: written with the RunStore API, tiny PNGs, no generation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from molebench.atomic import sha256_json
from molebench.store import RunStore

PROMPTS = ["a woman waving at the camera", "a man holding a cup", "two children clapping hands",
           "portrait of an old man smiling", "a chef showing both hands"]


def make_run(root: Path, model: str, seeds=(0, 1), prompts=PROMPTS, prompt_set: str = "tiny-set",
             colour=(200, 40, 40), skip_images: int = 0) -> Path:
    """A complete-looking run folder: manifest, items.parquet and a 16x16 PNG per (prompt, seed)."""
    store = RunStore(root)
    store.prepare()
    rows = []
    for index, prompt in enumerate(prompts):
        for seed in seeds:
            key = sha256_json({"model": model, "prompt": prompt, "seed": seed})[:32]
            rows.append({"key": key, "prompt_index": index, "prompt_id": f"p{index:03d}", "prompt": prompt,
                         "seed": seed, "gen_seed": 1000 * seed + index, "image": f"images/{key}.png"})
    items = pd.DataFrame(rows)
    store.write_items(items)
    for n, row in enumerate(items.itertuples()):
        if n < skip_images:
            continue
        shade = tuple(min(255, c + 8 * n) for c in colour)
        store.write_image(row.key, Image.new("RGB", (16, 16), shade))
    prompt_sha = sha256_json({"set": prompt_set, "prompts": list(prompts)})
    store.write_manifest({"status": "complete", "model": {"name": model}, "config": {"model": model},
                          "prompt_set_sha256": prompt_sha, "benchmark": {"name": prompt_set},
                          "identity_sha256": sha256_json({"model": model, "prompts": prompt_sha})})
    return root
