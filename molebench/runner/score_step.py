"""Scoring stage: score every image that has no score yet for a scorer version, in atomic shards."""

from __future__ import annotations

from typing import Any

import pandas as pd

from molebench import faults, ui
from molebench.assets.weights import replica_paths
from molebench.errors import InputError, MissingWeightsError
from molebench.parts import split_region, with_regions
from molebench.registry import SCORERS
from molebench.runner.distributed import Workers
from molebench.runner.set_score_step import score_sets
from molebench.scoring.base import Scorer, load_image_rgb
from molebench.scoring.people import Detecting
from molebench.scoring.region_sets import CropSetScorer
from molebench.scoring.regions import RegionScorer
from molebench.store import RunStore
from molebench.store.run_store import REGION_COLUMNS, score_rows


def make_scorer(name: str, device, batch_size: int | None, reference: str | None = None,
                weights: str | None = None) -> Scorer:
    """The registered scorer `name` on `device` (a torch.device or a device string torch accepts); set-level scorers
    (FID, KID) also get the reference image set they compare the run with; `weights`: a local copy of the weights.
    `NAME@face` / `NAME@hand` is scorer NAME on the face / hand crops of each image (molebench.scoring.regions), or
    for a set metric on the crops of the run and of the reference images (`fid@hand`, molebench.scoring.region_sets)."""
    base, part = split_region(name)
    cls = SCORERS.get(base)
    extra = {"weights": str(weights)} if weights is not None else {}
    if cls.kind == "set":
        inner = cls(device=device, batch_size=batch_size, reference=reference, **extra)
    else:
        inner = cls(device=device, batch_size=batch_size, **extra)
    if part is None:
        return inner
    if isinstance(inner, Detecting):
        raise InputError(f"scorer '{name}': {base} measures faces and hands itself; it does not run on crops")
    if inner.kind == "set":
        return CropSetScorer(inner, part)
    return RegionScorer(inner, part)


def scorer_names_with_regions(names: tuple[str, ...], regions: tuple[str, ...]) -> tuple[str, ...]:
    """`names` plus, for `--regions face,hand`, every whole-image scorer among them on face and hand crops."""
    if not regions:
        return tuple(names)
    kinds = {}
    for name in names:
        base, part = split_region(name)
        cls = SCORERS.get(base)
        kinds[name] = "people" if part or issubclass(cls, Detecting) else cls.kind
    return with_regions(names, regions, kinds)


def region_rows(batch: pd.DataFrame, scorer: Detecting, images) -> pd.DataFrame:
    """The faces and hands `scorer`'s detector found in these images (from its memo: nothing is detected again)."""
    rows = []
    for key, found in zip(batch["key"], scorer.found(images)):
        counters: dict[str, int] = {}
        for region in found:
            index = counters[region.part] = counters.get(region.part, -1) + 1
            rows.append({"key": key, "detector": scorer.detector.version, "index": index, **region.as_row()})
    return pd.DataFrame(rows, columns=REGION_COLUMNS)


def fingerprinted_scorers(names: tuple[str, ...] | list[str], device, batch_size: int | None,
                          reference: str | None = None) -> tuple[list[Scorer], dict[str, Any], list[MissingWeightsError]]:
    """Each scorer with its fingerprint (which looks its weights up); the missing-weights errors are collected, not
    raised, so a command names every missing file at once (errors.raise_missing)."""
    scorers, prints, missing = [], {}, []
    for name in names:
        try:
            scorer = make_scorer(name, device, batch_size, reference)
            prints[scorer.registry_name] = mark_replica(scorer.fingerprint())
            scorers.append(scorer)
        except MissingWeightsError as exc:
            missing.append(exc)
    return scorers, prints, missing


def mark_replica(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint whose weights molebench.replicas built (random weights) says so: `replica: true` in the
    manifest, and `replica_warnings` names it when a command starts."""
    return {**fingerprint, "replica": True} if replica_paths(fingerprint) else fingerprint


def replica_warnings(prints: dict[str, dict[str, Any]]) -> list[str]:
    """One line per model or scorer whose weights are a molebench replica: its numbers measure speed only."""
    return [f"{name}'s weights are a molebench replica (random weights at full size, built by molebench.replicas): "
            "its images and scores check speed and code paths only and say nothing about quality"
            for name, fingerprint in prints.items() if fingerprint.get("replica")]


def store_regions(store: RunStore, shard: str, batch: pd.DataFrame, scorer: Detecting, images,
                  searched: set[tuple[str, str]]) -> None:
    """The regions of the batch's images not stored yet by this command: faces, hands and every `NAME@part` scorer
    share one detector's regions, which are written once, by the first of them to score the image."""
    version = scorer.detector.version
    new = [index for index, key in enumerate(batch["key"]) if (version, key) not in searched]
    if new:
        store.write_regions(shard, region_rows(batch.iloc[new], scorer, [images[index] for index in new]))
        searched.update((version, key) for key in batch["key"])


def unscored_items(store: RunStore, items: pd.DataFrame, scorer: Scorer) -> pd.DataFrame:
    scores = store.read_scores()
    done = scores[(scores["scorer"] == scorer.registry_name) & (scores["scorer_version"] == scorer.version)]
    complete = set(done.groupby("key")["metric"].nunique().loc[lambda s: s >= len(scorer.metrics)].index)
    return items[~items["key"].isin(complete)]


def score_missing(store: RunStore, items: pd.DataFrame, scorers: list[Scorer], workers: Workers | None = None) -> int:
    """Score unscored images with each scorer; returns the number of (image, scorer) pairs this process scored.

    With several processes each takes its share of whole chunks (so every image is scored in the same batch as in a
    one-process run) and the main process merges all shards once everyone is done.
    """
    workers = workers or Workers()
    tag = workers.tag
    total = 0
    searched: set[tuple[str, str]] = set()  # (detector version, image key) whose regions this command stored
    set_scorers = [s for s in scorers if s.kind == "set"]
    for scorer in (s for s in scorers if s.kind != "set"):
        chunk = max(scorer.batch_size, 1) * 4  # one shard per few batches keeps resume cheap and files few
        mine = workers.shard(items, chunk)
        todo = unscored_items(store, mine, scorer)
        if todo.empty:
            ui.err.print(f"{tag}scored 0 images with {scorer.registry_name}: all {len(mine)} already scored")
            continue
        ui.err.print(f"{tag}scoring {len(todo)} images with {scorer.registry_name} ({scorer.version})")
        scorer.load()
        with ui.progress() as bar:
            task = bar.add_task(f"{tag}score {scorer.registry_name}", total=len(todo))
            for start in range(0, len(todo), chunk):
                batch = todo.iloc[start : start + chunk]
                images = [load_image_rgb(store.root / path) for path in batch["image"]]
                values = scorer.score(images, list(batch["prompt"]))
                rows = score_rows(batch, scorer.registry_name, scorer.version, values)
                shard = f"{workers.shard_prefix}{scorer.registry_name}-{batch['key'].iloc[0]}"
                if isinstance(scorer, Detecting):  # before the scores: a scored image always has its regions
                    store_regions(store, shard, batch, scorer, images, searched)
                store.write_score_shard(shard, rows)
                faults.reached("score")
                bar.advance(task, len(batch))
        total += len(todo)
    workers.barrier()  # every shard is written before the main process folds them in
    if workers.is_main:
        store.merge_scores()
        total += score_sets(store, items, set_scorers, tag=tag)
    return total
