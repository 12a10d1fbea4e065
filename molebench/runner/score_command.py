"""`molebench score RUN_DIR`: scoring as its own stage, so generation and scoring can use different machines.

Scores every generated image of a run folder that lacks a score for the chosen scorers (resumable, shardable across
processes like `run`), merges, rewrites the summary and records the scorers and the command in the manifest's history.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from molebench import ui
from molebench.errors import InputError, raise_missing
from molebench.parts import check_parts
from molebench.registry import BENCHMARKS, MODELS
from molebench.runner.distributed import Workers, join
from molebench.runner.environment import quiet_library_progress
from molebench.runner.lifecycle import Command, close, open_history, stopping_says_so
from molebench.runner.score_step import (fingerprinted_scorers, replica_warnings, score_missing,
                                         scorer_names_with_regions)
from molebench.runner.set_score_step import bind_references
from molebench.scoring.base import Scorer
from molebench.store import RunStore
from molebench.store.integrity import damaged_images
from molebench.store.lock import run_lock
from molebench.store.manifest import Manifest


def score_run(
    root: str | Path,
    scorer_names: tuple[str, ...] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    threads: int | None = None,
    reference: str | None = None,
    wait: bool = False,
    regions: tuple[str, ...] = (),
) -> RunStore:
    """Score the images of run folder `root`; `scorer_names` None means the run's scorers (or its model's defaults);
    `regions` (face, hand) adds those scorers on face / hand crops.

    The main process holds the folder's lock (scoring writes shards, scores, summary and manifest); `wait` queues.
    """
    quiet_library_progress()
    workers = join(device, threads)
    store = RunStore(root)
    with contextlib.ExitStack() as held:
        with workers.main_first():  # the main process checks the folder and materialises scorer weights first
            job = prepare(store, workers, held, wait, scorer_names, regions, reference, batch_size,
                          {"device": device, "batch_size": batch_size, "threads": threads})
        with stopping_says_so(job.command):
            workers.gather(score_missing(store, job.items, job.scorers, workers))  # every process has finished
            if job.command is not None:
                job.command.manifest["scorers"] = {**job.command.manifest.get("scorers", {}), **job.prints}
                close(job.command, f"scores of {store.root} ({len(job.items)} images)")
        workers.close()
    return store


@dataclass
class ScoreJob:
    """What every process of one `score` needs (the folder's command record only on the main process)."""

    items: pd.DataFrame
    scorers: list[Scorer]
    prints: dict[str, Any]
    command: Command | None


def prepare(store: RunStore, workers: Workers, held: contextlib.ExitStack, wait: bool,
            scorer_names: tuple[str, ...] | None, regions: tuple[str, ...], reference: str | None,
            batch_size: int | None, options: dict[str, Any]) -> ScoreJob:
    """Scorers (every missing weight file named at once), their references, the folder checked (every image made
    and intact) and, on the main process, locked and opened with this command's history entry."""
    manifest = store.require_manifest()
    if workers.is_main:
        held.enter_context(run_lock(store.root, wait))
        manifest = store.require_manifest()  # as the previous holder left it
    items = store.read_items()
    names = scorer_names if scorer_names is not None else default_scorers(manifest)
    names = scorer_names_with_regions(names, check_parts(regions))
    if not names:
        raise InputError(f"no scorers to run on {store.root}: pass --scorers NAME[,NAME...] (see `molebench scorers`)")
    reference = reference or manifest.recorded_reference()
    scorers, prints, missing_weights = fingerprinted_scorers(names, workers.device, batch_size, reference)
    raise_missing(missing_weights)  # every missing scorer file named at once, before anything is written
    if any(s.kind == "set" for s in scorers):
        bind_references(scorers, run_prompt_set(manifest), items)
    missing = [key for key in items["key"] if not store.has_image(key)]
    if missing:
        raise InputError(f"{store.root}: {len(missing)} of {len(items)} images are not generated yet (first: "
                         f"images/{missing[0]}.png); finish generation first by rerunning the same `molebench run` "
                         "command")
    if not workers.is_main:
        return ScoreJob(items, scorers, prints, None)
    for warning in replica_warnings(prints):
        ui.err.print(f"warning: {warning}", soft_wrap=True, markup=False)
    scores = store.read_scores()  # an unreadable scores file stops here, before anything is written
    check_images(store, items)
    store.prepare()  # drop temporaries left by an interrupted scoring
    store.fold_image_records()
    record = manifest.to_json()
    record["history"] = open_history(manifest, store, items, "score", {"scorers": list(names), **options,
                                     "reference": reference}, names, workers.device, workers.count, scores)
    store.write_manifest(record)
    return ScoreJob(items, scorers, prints, Command(store, record, items))


def check_images(store: RunStore, items) -> None:
    """Scoring a damaged image would store a score of the wrong picture: refuse, and say how to repair."""
    damage = damaged_images(store, items)
    if damage:
        raise InputError(f"{store.root}: {len(damage)} images are damaged (first: images/{damage[0].key}.png, "
                         f"{damage[0].reason}); run `molebench verify --repair {store.root}` to make them again")


def default_scorers(manifest: Manifest) -> tuple[str, ...]:
    """The scorers the run was configured with, else its model's defaults."""
    configured = manifest.config.get("scorers")
    if configured:
        return tuple(configured)
    model = manifest.model_name
    try:
        return tuple(MODELS.get(model).default_scorers)
    except InputError:  # a model no longer registered: the user must name scorers
        return ()


def run_prompt_set(manifest: Manifest):
    """The run's prompt set (reference images are picked by its prompts' source image ids), checked by hash."""
    name = manifest.benchmark_name
    prompt_set = BENCHMARKS.get(name)().load()
    if prompt_set.sha256 != manifest.prompt_set_sha256:
        raise InputError(f"benchmark {name}'s prompt set has changed since this run (sha256 {prompt_set.sha256[:12]} "
                         f"vs {manifest.prompt_set_sha256[:12]}); rebuild it as it was to pick the "
                         "reference images")
    return prompt_set
