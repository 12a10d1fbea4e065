"""`molebench run`: prompts -> generate -> score -> store -> summary, resumable.

Everything that can fail for lack of weights or bad input is checked before the run folder is touched. Launched in
several processes (`accelerate launch -m molebench run ...`), the same steps run in each on its share of the items
(see molebench.runner.distributed); a plain run is one process doing all of it.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from molebench import __version__, ui
from molebench.atomic import sha256_json
from molebench.errors import IncompatibleRunsError
from molebench.registry import BENCHMARKS, MODELS, SCORERS
from molebench.report.summary import summarise, summary_table
from molebench.runner.config import RunConfig
from molebench.runner.distributed import Workers, join
from molebench.runner.environment import device_info, git_commit, package_versions
from molebench.runner.generate import generate_missing, throughput
from molebench.runner.plan import plan_items
from molebench.runner.protocol import PAPER_REPEATS, PAPER_SAMPLE_SIZE, draw, repeats_table, summarise_repeats
from molebench.runner.score import score_missing
from molebench.scoring.base import Scorer
from molebench.store import RunStore

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


def run(config: RunConfig) -> RunStore:
    quiet_library_progress()
    workers = join(config.device, config.threads)
    with workers.main_first():  # the main process materialises models and writes the folder before others read it
        job = prepare(config, workers)
    clock = generate_missing(job.store, job.model, workers.shard(job.items, config.batch_size), job.settings,
                             workers.device, config.batch_size, workers.tag, loaded=workers.barrier)
    job.model = None  # free generation memory before scoring
    workers.barrier()  # scoring reads images that other processes made
    scored = score_missing(job.store, job.all_items, job.scorers, workers)
    reports = workers.gather((clock, scored))
    if workers.is_main and job.manifest is not None:
        store, manifest = job.store, job.manifest
        summary = summarise(store.read_scores())
        store.write_summary(summary)
        repeats = write_repeats_summary(store)
        manifest.update(status="complete", updated=_now(),
                        counts={"items": len(job.all_items), "generated_this_run": sum(c.images for c, _ in reports),
                                "scored_this_run": sum(n for _, n in reports)},
                        timings={"generate": throughput([c for c, _ in reports])})
        store.write_manifest(manifest)
        ui.out.print(summary_table(summary, f"{config.model} on {config.benchmark} ({len(job.all_items)} images) — "
                                            f"{store.root}"))
        if repeats is not None:
            ui.out.print(repeats_table(repeats, protocol_title(manifest)))
    workers.close()
    return job.store


def prepare(config: RunConfig, workers: Workers) -> Job:
    """Resolve model, settings, scorers and work items; the main process also writes items and manifest."""
    device = workers.device
    benchmark = BENCHMARKS.get(config.benchmark)()
    prompt_set = benchmark.load()
    repeats = None
    if config.protocol == "paper":  # the run generates the union of the repeats' samples
        repeats = draw(prompt_set, config.sample_size or PAPER_SAMPLE_SIZE, PAPER_REPEATS)
        prompt_set = repeats.prompt_set
    model = MODELS.get(config.model)(weights=config.weights, **config.model_options)
    settings = model.settings(steps=config.steps, guidance=config.guidance, size=config.size,
                              scheduler=config.scheduler, dtype=config.dtype, device=device)
    fingerprint = model.fingerprint()  # raises MissingWeightsError before anything is written
    scorer_names = config.scorers if config.scorers is not None else tuple(getattr(model, "default_scorers", ()))
    scorers = [make_scorer(name, device, config.scorer_batch_size) for name in scorer_names]
    scorer_prints = {s.registry_name: s.fingerprint() for s in scorers}  # same: missing scorer weights fail here

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
    items = plan_items(prompt_set, config.seeds, config.limit, model_identity, settings.to_json())
    if not workers.is_main:  # the main process has checked and written the folder already
        return Job(store, model, settings, items, store.read_items(), scorers, None)

    previous = store.read_manifest()
    if previous is not None:
        check_same_identity(store, previous, identity, identity_hash)
        warn_thread_change(previous, device_info(device))
    store.prepare()
    all_items = _union_items(store, items)
    store.write_items(all_items)
    if repeats is not None:
        store.write_repeats(repeats.table())
    manifest = {
        "molebench_version": __version__,
        "status": "running",
        "created": (previous or {}).get("created") or _now(),
        "updated": _now(),
        "command": sys.argv,
        "config": config.to_json(),
        "identity": identity,
        "identity_sha256": identity_hash,
        "model": {**fingerprint, "class": type(model).__name__, "description": model.description,
                  "paper_settings": model.paper_settings, "memory_options": model.memory_options()},
        "settings": settings.to_json(),
        "benchmark": {"name": config.benchmark, "prompt_set_sha256": prompt_set.sha256, "n_prompts": len(prompt_set),
                      **benchmark.info()},
        "prompt_set_sha256": prompt_set.sha256,
        "seeds": list(config.seeds),
        **({"protocol": repeats.to_json()} if repeats is not None else {}),
        "seed_rule": "gen_seed = first 63 bits of sha256('molebench:{seed}:{prompt_index}'); CPU torch.Generator",
        "scorers": {**(previous or {}).get("scorers", {}), **scorer_prints},
        "device": device_info(device),
        "processes": workers.count,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "counts": {"items": len(all_items)},
    }
    store.write_manifest(manifest)
    return Job(store, model, settings, items, all_items, scorers, manifest)


def write_repeats_summary(store: RunStore) -> pd.DataFrame | None:
    """For a `--protocol paper` run: per-repeat means and mean ± s.e. into repeats.csv (None for other runs)."""
    membership = store.read_repeats()
    if membership is None:
        return None
    summary = summarise_repeats(store.read_scores(), membership)
    store.write_repeats_summary(summary)
    return summary


def protocol_title(manifest: dict[str, Any]) -> str:
    protocol = manifest.get("protocol") or {}
    seeds = ", ".join(map(str, protocol.get("sample_seeds", [])))
    return (f"paper protocol: {protocol.get('repeats')} repeats × {protocol.get('sample_size')} prompts (sample "
            f"seeds {seeds}) from a pool of {protocol.get('pool_size')}, {protocol.get('distinct_prompts')} distinct "
            "prompts generated — paper units (HPS ×100, ImageReward ×100)")


def quiet_library_progress() -> None:
    """diffusers/transformers draw their own bars while loading; molebench shows its own progress instead."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()


def make_scorer(name: str, device, batch_size: int | None) -> Scorer:
    return SCORERS.get(name)(device=device, batch_size=batch_size)


def check_same_identity(store: RunStore, previous: dict[str, Any], identity: dict[str, Any], identity_hash: str) -> None:
    """A run folder holds one model/prompt-set/settings combination; refuse to mix another into it."""
    if previous.get("identity_sha256") == identity_hash:
        return
    old = previous.get("identity", {})
    differences = [k for k in sorted(set(old) | set(identity)) if old.get(k) != identity.get(k)]
    raise IncompatibleRunsError(
        f"{store.root} holds a run with a different {', '.join(differences) or 'identity'} "
        f"(prompt set {str(old.get('prompt_set_sha256', '?'))[:12]} vs {identity['prompt_set_sha256'][:12]}); "
        "results would be mixed. Use another --out folder."
    )


def warn_thread_change(previous: dict[str, Any], device: dict[str, Any]) -> None:
    """On CPU the thread count picks kernels (and so can flip pixels); say so when a resumed run changes it."""
    before, now = (previous.get("device") or {}).get("torch_threads"), device.get("torch_threads")
    if device.get("type") == "cpu" and before and before != now:
        ui.err.print(f"note: earlier images in this folder were made with {before} CPU threads per process, this run "
                     f"uses {now}; on CPU that can change pixels (pass --threads {before} to match)")


def _union_items(store: RunStore, items: pd.DataFrame) -> pd.DataFrame:
    """Items already in the folder plus this command's, in (prompt, seed) order: the order every process uses."""
    if not store.items_path.exists():
        return items.sort_values(["prompt_index", "seed"]).reset_index(drop=True)
    merged = pd.concat([store.read_items(), items], ignore_index=True).drop_duplicates("key", keep="first")
    return merged.sort_values(["prompt_index", "seed"]).reset_index(drop=True)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
