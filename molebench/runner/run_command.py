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

from molebench import __version__, ui
from molebench.atomic import sha256_json
from molebench.errors import InputError, MissingWeightsError, UsageError, raise_missing
from molebench.registry import BENCHMARKS, MODELS
from molebench.runner.config import RunConfig
from molebench.runner.distributed import Workers, join
from molebench.runner.environment import device_info, git_commit, package_versions, quiet_library_progress
from molebench.runner.generate_step import generate_missing, throughput
from molebench.runner.lifecycle import Command, close, open_history, stopping_says_so
from molebench.runner.plan_step import plan_items, planned_count
from molebench.runner.protocol import PAPER_REPEATS, PAPER_SAMPLE_SIZE, Repeats, draw
from molebench.runner.score_step import (fingerprinted_scorers, mark_replica, replica_warnings, score_missing,
                                         scorer_names_with_regions)
from molebench.runner.set_score_step import bind_references
from molebench.scoring.base import Scorer
from molebench.store import RunStore
from molebench.store.integrity import damaged_images
from molebench.store.history import check_same_identity, folder_fields, thread_counts
from molebench.store.lock import run_lock
from molebench.store.manifest import RUNNING, Manifest

DEFAULT_RESULTS = Path("results")


@dataclass
class Job:
    """What every process of one `run` needs after setup (the folder's command record only on the main process)."""

    store: RunStore
    model: Any
    settings: Any
    items: pd.DataFrame
    all_items: pd.DataFrame
    scorers: list[Scorer]
    command: Command | None


def run(config: RunConfig, wait: bool = False) -> RunStore:
    """Run (or resume) `config`; the main process holds the folder's lock until the end (`wait`: queue for it)."""
    quiet_library_progress()
    workers = join(config.device, config.threads)
    with contextlib.ExitStack() as held:
        with workers.main_first():  # the main process materialises models and writes the folder before others read it
            job = prepare(config, workers, held, wait)
        with stopping_says_so(job.command):
            work(config, job, workers)
        workers.close()
    return job.store


def work(config: RunConfig, job: Job, workers: Workers) -> None:
    """Generate every missing image of the folder (not only this command's), score, and close the folder."""
    clock = generate_missing(job.store, job.model, workers.shard(job.all_items, config.batch_size), job.settings,
                             workers.device, config.batch_size, workers.tag, loaded=workers.barrier,
                             process=workers.index)
    job.model = None  # free generation memory before scoring
    workers.barrier()  # scoring reads images that other processes made
    if workers.is_main:
        job.store.fold_image_records()
    scored = score_missing(job.store, job.all_items, job.scorers, workers)
    reports = workers.gather((clock, scored))
    if workers.is_main and job.command is not None:
        job.command.timings = {"generate": throughput([c for c, _ in reports])}
        close(job.command, f"{config.model} on {config.benchmark} ({len(job.all_items)} images) — {job.store.root}",
              unscored_note(config, job.store, len(job.all_items)))


@dataclass
class Plan:
    """What one `run` command will make, resolved and checked before the run folder is touched."""

    benchmark: Any
    prompt_set: Any
    repeats: Repeats | None
    model: Any
    settings: Any
    scorer_names: tuple[str, ...]
    fingerprint: dict[str, Any]
    scorers: list[Scorer]
    scorer_prints: dict[str, Any]
    identity: dict[str, Any]
    identity_hash: str
    items: pd.DataFrame


def prepare(config: RunConfig, workers: Workers, held: contextlib.ExitStack | None = None, wait: bool = False) -> Job:
    """Resolve model, settings, scorers and work items; the main process also locks the folder, checks what is
    there (unreadable files stop the run before anything is written; damaged images are removed, with their scores,
    to be made again) and writes items and manifest."""
    if config.out and Path(config.out).exists() and not Path(config.out).is_dir():
        raise UsageError(f"--out {config.out} is a file, not a folder: give a new folder or an existing run folder")
    plan = plan_run(config, workers)
    root = Path(config.out) if config.out else DEFAULT_RESULTS / f"{config.model}__{config.benchmark}__{plan.identity_hash[:10]}"
    store = RunStore(root)
    # set scorers compare the folder's images (earlier commands' too) with their references: a missing reference
    # image fails here, before the folder is touched
    bind_references(plan.scorers, plan.prompt_set,
                    _union_items(store, plan.items) if workers.is_main else store.read_items())
    if not workers.is_main:  # the main process has checked and written the folder already
        return Job(store, plan.model, plan.settings, plan.items, store.read_items(), plan.scorers, None)
    (held or contextlib.ExitStack()).enter_context(run_lock(root, wait))
    command = open_folder(config, plan, store, workers)
    return Job(store, plan.model, plan.settings, plan.items, command.items, plan.scorers, command)


def plan_run(config: RunConfig, workers: Workers) -> Plan:
    """Prompts (the protocol's repeats drawn), model and settings, scorers with fingerprints (every missing weight
    file named at once), the run's identity and its work items."""
    device = workers.device
    benchmark = BENCHMARKS.get(config.benchmark)()
    prompt_set = benchmark.load()
    repeats = None
    if config.protocol == "paper":  # the run generates each repeat's sample, independent images per repeat
        repeats = draw(prompt_set, config.sample_size or PAPER_SAMPLE_SIZE, PAPER_REPEATS)
        prompt_set = repeats.prompt_set
    prompts, images = planned_count(prompt_set, config.seeds, config.limit)
    model, settings = load_model(config, device)
    if workers.is_main:  # every option is checked: say what the run will make before any weights are read
        ui.err.print(f"planned: {images} images ({prompts} prompts × {len(config.seeds)} seeds) of {config.model} on "
                     f"{config.benchmark}", soft_wrap=True, markup=False)
        warn_cpu_half_precision(settings, device)
    scorer_names = config.scorers if config.scorers is not None else tuple(getattr(model, "default_scorers", ()))
    scorer_names = scorer_names_with_regions(scorer_names, config.regions)
    fingerprint, scorers, scorer_prints = fingerprints(model, scorer_names, device, config)
    fingerprint = mark_replica(fingerprint)
    if workers.is_main:
        for warning in [*(fingerprint.get("warnings") or ()),  # also kept in the manifest's model entry
                        *replica_warnings({config.model: fingerprint, **scorer_prints})]:
            ui.err.print(f"warning: {warning}", soft_wrap=True, markup=False)
    model_identity = {"name": fingerprint["name"], "weights_sha256": fingerprint["weights_sha256"],
                      "pipeline": getattr(model, "pipeline_class", None), "extra": settings.extra}
    identity = {"model": model_identity, "prompt_set_sha256": prompt_set.sha256, "settings": settings.to_json(),
                "device_type": device.type}
    items = plan_items(prompt_set, config.seeds, config.limit, model_identity, settings.to_json(),
                       repeats.repeat_of() if repeats is not None else None)
    return Plan(benchmark, prompt_set, repeats, model, settings, scorer_names, fingerprint, scorers, scorer_prints,
                identity, sha256_json(identity), items)


def load_model(config: RunConfig, device: Any) -> tuple[Any, Any]:
    """The model and its generation settings; an option or setting this model cannot honour is a usage error like
    any bad option value."""
    try:
        model = MODELS.get(config.model)(weights=config.weights, **config.model_options)
        settings = model.settings(steps=config.steps, guidance=config.guidance, size=config.size,
                                  scheduler=config.scheduler, dtype=config.dtype, device=device)
    except UsageError:
        raise
    except InputError as exc:
        raise UsageError(str(exc)) from None
    return model, settings


def open_folder(config: RunConfig, plan: Plan, store: RunStore, workers: Workers) -> Command:
    """Check the locked folder (same identity; readable files; damaged images removed), write items and the
    manifest with this command's history entry `running`: the command's record until `close`."""
    previous = store.read_manifest()
    if previous is not None:
        check_same_identity(store.root, previous, plan.identity, plan.identity_hash)
        warn_thread_change(previous, device_info(workers.device))
    all_items = _union_items(store, plan.items)
    scores = store.read_scores()  # an unreadable scores file stops the run here, before anything is written
    store.prepare()
    scores = remove_damaged(store, all_items, scores)
    store.write_items(all_items)
    if plan.repeats is not None:
        store.write_repeats(plan.repeats.table())
    history = open_history(previous, store, all_items, "run", config.to_json(), plan.scorer_names, workers.device,
                           workers.count, scores)
    manifest = new_manifest(config, plan, previous, history[-1]["started"])
    manifest.update(folder_fields(history, all_items, history[-1]["at_start"]))  # the folder, not one command
    store.write_manifest(manifest)
    return Command(store, manifest, all_items)


def new_manifest(config: RunConfig, plan: Plan, previous: Manifest | None, started: str) -> dict[str, Any]:
    """The manifest of a run folder whose command has just started (status `running`)."""
    model, prompt_set, repeats = plan.model, plan.prompt_set, plan.repeats
    return {
        "molebench_version": __version__,
        "status": RUNNING,
        "created": (previous.created if previous is not None else None) or started,
        "updated": started,
        "identity": plan.identity,
        "identity_sha256": plan.identity_hash,
        "model": {**plan.fingerprint, "class": type(model).__name__, "description": model.description,
                  "paper_settings": model.paper_settings, "memory_options": model.memory_options()},
        "settings": plan.settings.to_json(),
        "benchmark": {"name": config.benchmark, "prompt_set_sha256": prompt_set.sha256, "n_prompts": len(prompt_set),
                      **plan.benchmark.info()},
        "prompt_set_sha256": prompt_set.sha256,
        **({"protocol": repeats.to_json()} if repeats is not None else {}),
        "seed_rule": ("gen_seed = first 63 bits of sha256('molebench:{seed}:repeat{repeat}:{prompt_index}'); CPU "
                      "torch.Generator" if repeats is not None else
                      "gen_seed = first 63 bits of sha256('molebench:{seed}:{prompt_index}'); CPU torch.Generator"),
        "scorers": {**(previous.scorers if previous is not None else {}), **plan.scorer_prints},
        "packages": package_versions(),
        "git_commit": git_commit(),
    }


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


def remove_damaged(store: RunStore, items: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
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
        return store.read_scores()
    return scores


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


def warn_thread_change(previous: Manifest, device: dict[str, Any]) -> None:
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
