"""`molebench score RUN_DIR`: scoring as its own stage, so generation and scoring can use different machines.

Scores every generated image of a run folder that lacks a score for the chosen scorers (resumable, shardable across
processes like `run`), merges, rewrites the summary and records the scorers and the command in the manifest's history.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from molebench import faults, ui
from molebench.errors import InputError, raise_missing
from molebench.parts import check_parts
from molebench.registry import BENCHMARKS, MODELS
from molebench.runner.distributed import join
from molebench.runner.environment import device_info, git_commit, quiet_library_progress, utc_now
from molebench.runner.folder import finish_history, start_history
from molebench.runner.protocol import headline_texts, protocol_title, repeats_table, write_repeats_summary
from molebench.runner.score import fingerprinted_scorers, score_missing, scorer_names_with_regions
from molebench.runner.set_score import bind_references
from molebench.store import RunStore
from molebench.store.integrity import damaged_images
from molebench.store.lock import run_lock
from molebench.store.summary import summarise, summary_table


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
            manifest = store.read_manifest()
            if manifest is None:
                raise InputError(f"{root} is not a molebench run folder (no manifest.json)")
            if workers.is_main:
                held.enter_context(run_lock(root, wait))
                manifest = store.read_manifest()  # as the previous holder left it
            items = store.read_items()
            names = scorer_names if scorer_names is not None else default_scorers(manifest)
            names = scorer_names_with_regions(names, check_parts(regions))
            if not names:
                raise InputError(f"no scorers to run on {root}: pass --scorers NAME[,NAME...] "
                                 "(see `molebench scorers`)")
            reference = reference or recorded_reference(manifest)
            scorers, prints, missing_weights = fingerprinted_scorers(names, workers.device, batch_size, reference)
            raise_missing(missing_weights)  # every missing scorer file named at once, before anything is written
            if any(s.kind == "set" for s in scorers):
                bind_references(scorers, run_prompt_set(manifest), items)
            missing = [key for key in items["key"] if not store.has_image(key)]
            if missing:
                raise InputError(
                    f"{root}: {len(missing)} of {len(items)} images are not generated yet (first: "
                    f"images/{missing[0]}.png); finish generation first by rerunning the same `molebench run` command"
                )
            if workers.is_main:
                store.read_scores()  # an unreadable scores file stops here, before anything is written
                check_images(store, items)
                store.prepare()  # drop temporaries left by an interrupted scoring
                store.fold_image_records()
                options = {"scorers": list(names), "device": device, "batch_size": batch_size, "threads": threads,
                           "reference": reference}
                manifest["history"] = start_history(manifest, "score", options, names, device_info(workers.device),
                                                    workers.count, utc_now(), git_commit())
                store.write_manifest(manifest)
        scored = sum(workers.gather(score_missing(store, items, scorers, workers)))
        if workers.is_main:
            manifest["scorers"] = {**manifest.get("scorers", {}), **prints}
            summary = summarise(store.read_scores(), manifest["scorers"], store.read_set_scores())
            store.write_summary(summary)
            repeats = write_repeats_summary(store, manifest["scorers"])
            faults.reached("summary")
            finish_history(manifest, items, utc_now(), generated=0, scored=scored, timings={})
            store.write_manifest(manifest)
            ui.out.print(summary_table(summary, f"scores of {store.root} ({len(items)} images)",
                                       headline_texts(repeats) if repeats is not None else None))
            if repeats is not None:
                ui.out.print(repeats_table(repeats, protocol_title(manifest)))
        workers.close()
    return store


def check_images(store: RunStore, items) -> None:
    """Scoring a damaged image would store a score of the wrong picture: refuse, and say how to repair."""
    damage = damaged_images(store, items)
    if damage:
        raise InputError(f"{store.root}: {len(damage)} images are damaged (first: images/{damage[0].key}.png, "
                         f"{damage[0].reason}); run `molebench verify --repair {store.root}` to make them again")


def default_scorers(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The scorers the run was configured with, else its model's defaults."""
    configured = (manifest.get("config") or {}).get("scorers")
    if configured:
        return tuple(configured)
    model = (manifest.get("config") or {}).get("model")
    try:
        return tuple(MODELS.get(model).default_scorers)
    except InputError:  # a model no longer registered: the user must name scorers
        return ()


def run_prompt_set(manifest: dict[str, Any]):
    """The run's prompt set (reference images are picked by its prompts' source image ids), checked by hash."""
    name = (manifest.get("benchmark") or {}).get("name") or (manifest.get("config") or {}).get("benchmark")
    prompt_set = BENCHMARKS.get(name)().load()
    if prompt_set.sha256 != manifest.get("prompt_set_sha256"):
        raise InputError(f"benchmark {name}'s prompt set has changed since this run (sha256 {prompt_set.sha256[:12]} "
                         f"vs {str(manifest.get('prompt_set_sha256'))[:12]}); rebuild it as it was to pick the "
                         "reference images")
    return prompt_set


def recorded_reference(manifest: dict[str, Any]) -> str | None:
    """The reference image set the folder's last command that had one used (set-level scorers reuse it)."""
    for entry in reversed(manifest.get("history") or []):
        if (entry.get("config") or {}).get("reference"):
            return str(entry["config"]["reference"])
    return (manifest.get("config") or {}).get("reference")
