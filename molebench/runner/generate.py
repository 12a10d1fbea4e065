"""Generation stage: make the images that are missing, one atomic PNG each."""

from __future__ import annotations

import pandas as pd
import torch

from molebench import ui
from molebench.models.base import GenerationSettings, T2IModel
from molebench.store import RunStore


def missing_items(store: RunStore, items: pd.DataFrame) -> pd.DataFrame:
    present = [store.has_image(key) for key in items["key"]]
    return items[[not p for p in present]]


def generate_missing(
    store: RunStore,
    model: T2IModel,
    items: pd.DataFrame,
    settings: GenerationSettings,
    device: torch.device,
    batch_size: int,
) -> int:
    """Generate images for items without a PNG; returns how many were generated. Loads the model only if needed."""
    todo = missing_items(store, items)
    if todo.empty:
        ui.err.print(f"generated 0 images: all {len(items)} already present")
        return 0
    ui.err.print(f"generating {len(todo)} images ({len(items) - len(todo)} already present)")
    model.load(device, settings)
    with ui.progress() as bar:
        task = bar.add_task("generate", total=len(todo))
        for start in range(0, len(todo), batch_size):
            batch = todo.iloc[start : start + batch_size]
            generators = [torch.Generator("cpu").manual_seed(int(s)) for s in batch["gen_seed"]]
            images = model.generate(list(batch["prompt"]), generators, settings)
            for row, image in zip(batch.itertuples(), images):
                store.write_image(row.key, image, {"prompt": row.prompt, "seed": str(row.seed),
                                                   "molebench_key": row.key})
            bar.advance(task, len(batch))
    return len(todo)
