"""Scoring stage: score every image that has no score yet for a scorer version, in atomic shards."""

from __future__ import annotations

import pandas as pd

from molebench import ui
from molebench.scoring.base import Scorer, load_image_rgb
from molebench.store import RunStore
from molebench.store.run_store import score_rows


def unscored_items(store: RunStore, items: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    scores = store.read_scores()
    done = scores[(scores["scorer"] == scorer.registry_name) & (scores["scorer_version"] == scorer.version)]
    complete = set(done.groupby("key")["metric"].nunique().loc[lambda s: s >= len(scorer.metrics)].index)
    return items[~items["key"].isin(complete)]


def score_missing(store: RunStore, items: pd.DataFrame, scorers: list[Scorer], shard_prefix: str = "") -> int:
    """Score unscored images with each scorer; returns the number of (image, scorer) pairs scored."""
    total = 0
    for scorer in scorers:
        todo = unscored_items(store, items, scorer)
        if todo.empty:
            ui.err.print(f"scored 0 images with {scorer.registry_name}: all {len(items)} already scored")
            continue
        ui.err.print(f"scoring {len(todo)} images with {scorer.registry_name} ({scorer.version})")
        scorer.load()
        chunk = max(scorer.batch_size, 1) * 4  # one shard per few batches keeps resume cheap and files few
        with ui.progress() as bar:
            task = bar.add_task(f"score {scorer.registry_name}", total=len(todo))
            for start in range(0, len(todo), chunk):
                batch = todo.iloc[start : start + chunk]
                images = [load_image_rgb(store.root / path) for path in batch["image"]]
                values = scorer.score(images, list(batch["prompt"]))
                rows = score_rows(batch, scorer.registry_name, scorer.version, values)
                store.write_score_shard(f"{shard_prefix}{scorer.registry_name}-{batch['key'].iloc[0]}", rows)
                bar.advance(task, len(batch))
        total += len(todo)
    store.merge_scores()
    return total
