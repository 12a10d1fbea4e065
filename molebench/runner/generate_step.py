"""Generation stage: make the images that are missing, one atomic PNG each."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch

from molebench import faults, ui
from molebench.models.base import GenerationSettings, T2IModel
from molebench.store import RunStore


@dataclass(frozen=True)
class GenerationClock:
    """What one process generated, and when: wall-clock seconds after its model was loaded and after its last image."""

    images: int = 0
    ready: float | None = None
    done: float | None = None


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
    tag: str = "",
    loaded: Callable[[], None] = lambda: None,
    process: int = 0,
) -> GenerationClock:
    """Generate images for items without a PNG. Loads the model only if needed. `tag` prefixes status lines,
    `process` names this process's hash ledger.

    `loaded` is called exactly once, after the model is loaded (or when there is nothing to load): several processes
    pass a barrier, so they start generating together. With shards fixed in advance that costs no wall time (the
    run still ends when the slowest process has loaded and made its share), and the generation clock then measures
    processes working side by side, not one process working while another is still starting.
    """
    todo = missing_items(store, items)
    if todo.empty:
        loaded()
        ui.err.print(f"{tag}generated 0 images: all {len(items)} already present")
        return GenerationClock()
    ui.err.print(f"{tag}generating {len(todo)} images ({len(items) - len(todo)} already present)")
    model.load(device, settings)
    loaded()
    ready = time.time()
    generate_into(store, model, todo, settings, batch_size, tag, process)
    return GenerationClock(len(todo), ready, time.time())


def generate_into(store: RunStore, model: T2IModel, todo: pd.DataFrame, settings: GenerationSettings,
                  batch_size: int, tag: str = "", process: int = 0) -> None:
    """The generation loop on a loaded model: each batch's PNGs are encoded, hashed and written on a helper thread
    while the model makes the next batch (one batch in flight: memory stays bounded, and a write error stops the
    loop at the next batch). On a GPU the encoding would otherwise leave it idle for tens of milliseconds per image."""
    with ui.progress() as bar, ThreadPoolExecutor(1, thread_name_prefix="molebench-write") as writer:
        task = bar.add_task(f"{tag}generate", total=len(todo))
        pending: Future | None = None
        for start in range(0, len(todo), batch_size):
            batch = todo.iloc[start : start + batch_size]
            generators = [torch.Generator("cpu").manual_seed(int(s)) for s in batch["gen_seed"]]
            images = model.generate(list(batch["prompt"]), generators, settings)
            if pending is not None:
                bar.advance(task, pending.result())
            pending = writer.submit(write_batch, store, batch, images, process)
        if pending is not None:
            bar.advance(task, pending.result())


def write_batch(store: RunStore, batch: pd.DataFrame, images: list, process: int = 0) -> int:
    """Write one batch's images (PNG with prompt, seed and key in text chunks, and their hash records)."""
    for row, image in zip(batch.itertuples(), images):
        store.write_image(row.key, image, {"prompt": row.prompt, "seed": str(row.seed), "molebench_key": row.key},
                          process=process)
        faults.reached("generate")
    return len(batch)


def throughput(clocks: list[GenerationClock]) -> dict[str, float | int | None]:
    """Images per second over all processes: images / (last image written - first model ready)."""
    busy = [c for c in clocks if c.images and c.ready is not None and c.done is not None]
    images = sum(c.images for c in busy)
    if not busy:
        return {"images": 0, "seconds": None, "images_per_s": None, "processes": len(clocks)}
    seconds = max(c.done for c in busy) - min(c.ready for c in busy)  # type: ignore[type-var]
    return {"images": images, "seconds": round(seconds, 3),
            "images_per_s": round(images / seconds, 4) if seconds > 0 else None, "processes": len(clocks)}
