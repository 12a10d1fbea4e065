"""`molebench run`: prompts -> generate -> score -> store -> summary, resumable.

Everything that can fail for lack of weights or bad input is checked before the run folder is touched. Launched in
several processes (`accelerate launch -m molebench run ...`), the same steps run in each on its share of the items
(see molebench.runner.distributed); a plain run is one process doing all of it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from molebench import __version__, faults, ui
from molebench.atomic import sha256_json
from molebench.errors import InputError, MissingWeightsError, UsageError, raise_missing
from molebench.registry import BENCHMARKS, MODELS
from molebench.runner.config import RunConfig
from molebench.runner.distributed import Workers, join
from molebench.runner.environment import (device_info, git_commit, package_versions, quiet_library_progress,
                                          utc_now)
from molebench.runner.folder import check_same_identity, finish_history, folder_fields, start_history, thread_counts
from molebench.runner.generate import generate_missing, throughput
from molebench.runner.plan import plan_items, planned_count
from molebench.runner.protocol import (PAPER_REPEATS, PAPER_SAMPLE_SIZE, draw, headline_texts, protocol_title,
                                       repeats_table, write_repeats_summary)
from molebench.runner.score import fingerprinted_scorers, score_missing, scorer_names_with_regions
from molebench.runner.set_score import bind_references
from molebench.scoring.base import Scorer
from molebench.store import RunStore
from molebench.store.integrity import damaged_images
from molebench.store.lock import run_lock
from molebench.store.summary import summarise, summary_table

DEFAULT_RESULTS = Path("results")


@dataclass
class Job:
    """What every process of one `run` needs after setup (the manifest only on the main process)."""

    store: RunStore
    model: Any
    settings: Any
    items: pd.DataFrame
    all_items: pd.DataFrame
    scorers: list[Scorer]
    manifest: dict[str, Any] | None


def run(config: RunConfig, wait: bool = False) -> RunStore:
    """Run (or resume) `config`; the main process holds the folder's lock until the end (`wait`: queue for it)."""
    quiet_library_progress()
    workers = join(config.device, config.threads)
    with contextlib.ExitStack() as held:
        with workers.main_first():  # the main process materialises models and writes the folder before others read it
            job = prepare(config, workers, held, wait)
        # every item is made, not only this command's: scoring covers the whole folder
        clock = generate_missing(job.store, job.model, workers.shard(job.all_items, config.batch_size), job.settings,
                                 workers.device, config.batch_size, workers.tag, loaded=workers.barrier,
                                 process=workers.index)
        job.model = None  # free generation memory before scoring
        workers.barrier()  # scoring reads images that other processes made
        if workers.is_main:
            job.store.fold_image_records()
        scored = score_missing(job.store, job.all_items, job.scorers, workers)
        reports = workers.gather((clock, scored))
        if workers.is_main and job.manifest is not None:
            finish(config, job, reports)
        workers.close()
    return job.store


def finish(config: RunConfig, job: Job, reports: list) -> None:
    """Summary, then the manifest marked complete: the last write of a run."""
    store, manifest = job.store, job.manifest
    summary = summarise(store.read_scores(), manifest["scorers"], store.read_set_scores())
    store.write_summary(summary)
    repeats = write_repeats_summary(store, manifest["scorers"])
    faults.reached("summary")
    finish_history(manifest, job.all_items, utc_now(), generated=sum(c.images for c, _ in reports),
                   scored=sum(n for _, n in reports), timings={"generate": throughput([c for c, _ in reports])})
    store.write_manifest(manifest)
    if summary.empty:
        ui.out.print(unscored_note(config, store, len(job.all_items)), soft_wrap=True, markup=False)
    else:
        ui.out.print(summary_table(summary, f"{config.model} on {config.benchmark} ({len(job.all_items)} images) — "
                                            f"{store.root}", headline_texts(repeats) if repeats is not None else None))
    if repeats is not None:
        ui.out.print(repeats_table(repeats, protocol_title(manifest)))


def prepare(config: RunConfig, workers: Workers, held: contextlib.ExitStack | None = None, wait: bool = False) -> Job:
    """Resolve model, settings, scorers and work items; the main process also locks the folder, checks what is
    there (unreadable files stop the run before anything is written; damaged images are removed, with their scores,
    to be made again) and writes items and manifest."""
    if config.out and Path(config.out).exists() and not Path(config.out).is_dir():
        raise UsageError(f"--out {config.out} is a file, not a folder: give a new folder or an existing run folder")
    device = workers.device
    benchmark = BENCHMARKS.get(config.benchmark)()
    prompt_set = benchmark.load()
    repeats = None
    if config.protocol == "paper":  # the run generates each repeat's sample, independent images per repeat
        repeats = draw(prompt_set, config.sample_size or PAPER_SAMPLE_SIZE, PAPER_REPEATS)
        prompt_set = repeats.prompt_set
    prompts, images = planned_count(prompt_set, config.seeds, config.limit)
    try:  # an option or setting this model cannot honour is a usage error like any bad option value
        model = MODELS.get(config.model)(weights=config.weights, **config.model_options)
        settings = model.settings(steps=config.steps, guidance=config.guidance, size=config.size,
                                  scheduler=config.scheduler, dtype=config.dtype, device=device)
    except UsageError:
        raise
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if workers.is_main:  # every option is checked: say what the run will make before any weights are read
        ui.err.print(f"planned: {images} images ({prompts} prompts × {len(config.seeds)} seeds) of {config.model} on "
                     f"{config.benchmark}", soft_wrap=True, markup=False)
    if workers.is_main:
        warn_cpu_half_precision(settings, device)
    scorer_names = config.scorers if config.scorers is not None else tuple(getattr(model, "default_scorers", ()))
    scorer_names = scorer_names_with_regions(scorer_names, config.regions)
    fingerprint, scorers, scorer_prints = fingerprints(model, scorer_names, device, config)
    if workers.is_main:
        for warning in fingerprint.get("warnings") or ():  # also kept in the manifest's model entry
            ui.err.print(f"warning: {warning}", soft_wrap=True, markup=False)

    model_identity = {"name": fingerprint["name"], "weights_sha256": fingerprint["weights_sha256"],
                      "pipeline": getattr(model, "pipeline_class", None), "extra": settings.extra}
    identity = {
        "model": model_identity,
        "prompt_set_sha256": prompt_set.sha256,
        "settings": settings.to_json(),
        "device_type": device.type,
    }
    identity_hash = sha256_json(identity)
    root = Path(config.out) if config.out else DEFAULT_RESULTS / f"{config.model}__{config.benchmark}__{identity_hash[:10]}"
    store = RunStore(root)
    items = plan_items(prompt_set, config.seeds, config.limit, model_identity, settings.to_json(),
                       repeats.repeat_of() if repeats is not None else None)
    # set scorers compare the folder's images (earlier commands' too) with their references: a missing reference
    # image fails here, before the folder is touched
    bind_references(scorers, prompt_set, _union_items(store, items) if workers.is_main else store.read_items())
    if not workers.is_main:  # the main process has checked and written the folder already
        return Job(store, model, settings, items, store.read_items(), scorers, None)

    (held or contextlib.ExitStack()).enter_context(run_lock(root, wait))
    previous = store.read_manifest()
    if previous is not None:
        check_same_identity(store.root, previous, identity, identity_hash)
        warn_thread_change(previous, device_info(device))
    all_items = _union_items(store, items)
    scores = store.read_scores()  # an unreadable scores file stops the run here, before anything is written
    store.prepare()
    remove_damaged(store, all_items, scores)
    store.write_items(all_items)
    if repeats is not None:
        store.write_repeats(repeats.table())
    commit, started = git_commit(), utc_now()
    history = start_history(previous, "run", config.to_json(), scorer_names, device_info(device), workers.count,
                            started, commit)
    manifest = {
        "molebench_version": __version__,
        "status": "running",
        "created": (previous or {}).get("created") or started,
        "updated": started,
        "identity": identity,
        "identity_sha256": identity_hash,
        "model": {**fingerprint, "class": type(model).__name__, "description": model.description,
                  "paper_settings": model.paper_settings, "memory_options": model.memory_options()},
        "settings": settings.to_json(),
        "benchmark": {"name": config.benchmark, "prompt_set_sha256": prompt_set.sha256, "n_prompts": len(prompt_set),
                      **benchmark.info()},
        "prompt_set_sha256": prompt_set.sha256,
        **({"protocol": repeats.to_json()} if repeats is not None else {}),
        "seed_rule": ("gen_seed = first 63 bits of sha256('molebench:{seed}:repeat{repeat}:{prompt_index}'); CPU "
                      "torch.Generator" if repeats is not None else
                      "gen_seed = first 63 bits of sha256('molebench:{seed}:{prompt_index}'); CPU torch.Generator"),
        "scorers": {**(previous or {}).get("scorers", {}), **scorer_prints},
        "packages": package_versions(),
        "git_commit": commit,
        **folder_fields(history, all_items),  # config, seeds, device, counts, timings: the folder, not one command
    }
    store.write_manifest(manifest)
    return Job(store, model, settings, items, all_items, scorers, manifest)


def fingerprints(model: Any, scorer_names: tuple[str, ...], device: Any, config: RunConfig
                 ) -> tuple[dict[str, Any], list[Scorer], dict[str, Any]]:
    """The model's and every scorer's fingerprint, before anything is written; the weights of all of them are
    looked up first and every missing one is named in one error (not one per attempt)."""
    missing: list[MissingWeightsError] = []
    fingerprint: dict[str, Any] = {}
    try:
        fingerprint = model.fingerprint()
    except MissingWeightsError as exc:
        missing.append(exc)
    scorers, prints, missing_scorers = fingerprinted_scorers(scorer_names, device, config.scorer_batch_size,
                                                             config.reference)
    raise_missing(missing + missing_scorers)
    return fingerprint, scorers, prints


def remove_damaged(store: RunStore, items: pd.DataFrame, scores: pd.DataFrame) -> None:
    """Delete images that are not what was written, saying so, and drop every score of an image that is not there:
    generation makes them again and they are scored again (a score always belongs to the image in the folder)."""
    damage = damaged_images(store, items)
    for item in damage:
        ui.err.print(f"images/{item.key}.png is damaged ({item.reason}); making it again", soft_wrap=True,
                     markup=False)
        store.image_path(item.key).unlink(missing_ok=True)
    scored = set(scores["key"]) & set(items["key"])
    gone = {key for key in scored if not store.has_image(key)}
    if gone:
        dropped = store.drop_scores(gone)
        ui.err.print(f"dropped {dropped} score rows of {len(gone)} images that are missing or damaged; they are "
                     "scored again once made", soft_wrap=True, markup=False)


def unscored_note(config: RunConfig, store: RunStore, images: int) -> str:
    """What a run without scores made, and the command that scores it (instead of an empty table)."""
    defaults = ", ".join(getattr(MODELS.get(config.model), "default_scorers", ())) or "none"
    return (f"{config.model} on {config.benchmark}: {images} images in {store.images_dir}, not scored yet.\n"
            f"score them with:  molebench score {store.root}   (the model's default scorers: {defaults}; "
            "or --scorers NAME,...)")


def warn_cpu_half_precision(settings: Any, device: Any) -> None:
    """An explicit half-precision --dtype is honoured on CPU too (it is part of every image's key); say what it costs."""
    if device.type == "cpu" and settings.dtype != "float32":
        ui.err.print(f"note: running {settings.dtype} on the CPU as asked (--dtype auto is float32 there): slower than "
                     "float32 on most CPUs, and the images differ from float32 and from a GPU's "
                     f"{settings.dtype}", soft_wrap=True)




def warn_thread_change(previous: dict[str, Any], device: dict[str, Any]) -> None:
    """On CPU the thread count picks kernels (and so can flip pixels); say so when a resumed run changes it."""
    before, now = thread_counts(previous), device.get("torch_threads")
    if device.get("type") == "cpu" and before and before != [now]:
        shown = " and ".join(map(str, before))
        ui.err.print(f"note: earlier images in this folder were made with {shown} CPU threads per process, this run "
                     f"uses {now}; on CPU that can change pixels (pass --threads {before[-1]} to match)")


def _union_items(store: RunStore, items: pd.DataFrame) -> pd.DataFrame:
    """Items already in the folder plus this command's, in (prompt, seed) order: the order every process uses."""
    if not store.items_path.exists():
        return items.sort_values(["prompt_index", "seed"]).reset_index(drop=True)
    merged = pd.concat([store.read_items(), items], ignore_index=True).drop_duplicates("key", keep="first")
    return merged.sort_values(["prompt_index", "seed"]).reset_index(drop=True)
