"""`molebench score RUN_DIR`: scoring as its own stage, so generation and scoring can use different machines.

Scores every generated image of a run folder that lacks a score for the chosen scorers (resumable, shardable across
processes like `run`), merges, rewrites the summary and records the scorers in the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from molebench import ui
from molebench.errors import InputError
from molebench.registry import MODELS
from molebench.report.summary import summarise, summary_table
from molebench.runner.distributed import join
from molebench.runner.environment import device_info
from molebench.runner.run import _now, make_scorer, protocol_title, write_repeats_summary
from molebench.runner.protocol import repeats_table
from molebench.runner.score import score_missing
from molebench.store import RunStore


def score_run(
    root: str | Path,
    scorer_names: tuple[str, ...] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    threads: int | None = None,
) -> RunStore:
    """Score the images of run folder `root`; `scorer_names` None means the run's scorers (or its model's defaults)."""
    workers = join(device, threads)
    store = RunStore(root)
    with workers.main_first():  # the main process checks the folder and materialises scorer weights first
        manifest = store.read_manifest()
        if manifest is None:
            raise InputError(f"{root} is not a molebench run folder (no manifest.json)")
        items = store.read_items()
        names = scorer_names if scorer_names is not None else default_scorers(manifest)
        if not names:
            raise InputError(f"no scorers to run on {root}: pass --scorers NAME[,NAME...] (see `molebench scorers`)")
        scorers = [make_scorer(name, workers.device, batch_size) for name in names]
        prints = {s.registry_name: s.fingerprint() for s in scorers}  # missing scorer weights fail here
        missing = [key for key in items["key"] if not store.has_image(key)]
        if missing:
            raise InputError(
                f"{root}: {len(missing)} of {len(items)} images are not generated yet (first: images/{missing[0]}.png); "
                "finish generation first by rerunning the same `molebench run` command"
            )
        if workers.is_main:
            store.prepare()  # drop temporaries left by an interrupted scoring
    scored = sum(workers.gather(score_missing(store, items, scorers, workers)))
    if workers.is_main:
        summary = summarise(store.read_scores())
        store.write_summary(summary)
        repeats = write_repeats_summary(store)
        manifest["scorers"] = {**manifest.get("scorers", {}), **prints}
        manifest["updated"] = _now()
        manifest["score_stage"] = {"scorers": list(names), "scored_this_run": scored, "processes": workers.count,
                                   "device": device_info(workers.device), "finished": manifest["updated"]}
        store.write_manifest(manifest)
        ui.out.print(summary_table(summary, f"scores of {store.root} ({len(items)} images)"))
        if repeats is not None:
            ui.out.print(repeats_table(repeats, protocol_title(manifest)))
    workers.close()
    return store


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
