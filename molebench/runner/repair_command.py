"""`molebench verify --repair RUN`: put a damaged run folder back the way an uninterrupted run would have left it.

Under the folder's lock: damaged images are deleted and their scores dropped, score rows of unknown images dropped,
temporaries deleted; then the run's own command (rebuilt from its manifest, with every scorer that scored it) runs
again in this process, which makes the missing images, scores what lacks a score, folds the hashes, rewrites the
summary and marks the manifest complete. Images are generated exactly as before (per-image seeds), so a repaired
folder equals an untouched one; rescored values equal the originals when scoring ran with --scorer-batch-size 1
(a different batch composition can move the last digits of a score).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from molebench import ui
from molebench.atomic import clean_temporaries
from molebench.errors import InputError
from molebench.runner.config import RunConfig
from molebench.store.lock import run_lock
from molebench.store.verify import Folder, Problem, verify


def repair(root: str | Path, wait: bool = False) -> list[str]:
    """Repair the folder; returns what was done, one line per action."""
    root = Path(root)
    with run_lock(root, wait):
        folder, problems = verify(root)
        if not problems:
            recorded = folder.store.fold_image_records() if folder.unrecorded else 0
            return [f"recorded the sha256 of {recorded} images made by an older molebench"] if recorded else []
        unfixable = [p for p in problems if p.repair.startswith("not repaired")]
        if any(p.check == "files" for p in unfixable):
            raise InputError(f"cannot repair {root}: {unfixable[0].path} is unreadable or missing; "
                             f"{unfixable[0].repair.removeprefix('not repaired: ')}")
        config = config_from_manifest(folder, root)
        actions = _clean(folder, problems)
        from molebench.runner.run_command import run

        ui.err.print(f"repair: rerunning the run's command on {root} (makes missing images, scores what lacks a "
                     "score, rewrites summary and manifest)", soft_wrap=True, markup=False)
        run(config)
        actions.append("reran the run's command: missing images made, missing scores computed, summary and "
                       "manifest rewritten")
    return actions


def _clean(folder: Folder, problems: list[Problem]) -> list[str]:
    store, actions = folder.store, []
    removed = clean_temporaries(store.root)
    if removed:
        actions.append(f"deleted {removed} temporary files of interrupted writes")
    absent = {p.key for p in problems if p.check == "images" and p.key}  # damaged or missing
    for key in sorted(p.key for p in problems if p.check == "images" and p.key and p.detail != "missing"):
        store.image_path(key).unlink(missing_ok=True)
        actions.append(f"deleted damaged images/{key}.png (to be made again)")
    unknown = set()
    if folder.scores is not None and folder.items is not None and "key" in folder.scores.columns:
        unknown = set(folder.scores["key"]) - set(folder.items["key"])
    dropped = store.drop_scores(absent | unknown)
    if dropped:
        actions.append(f"dropped {dropped} score rows of damaged, missing or unknown images (to be scored again)")
    if store.merge_scores():
        actions.append("merged leftover score shards into scores.parquet")
    return actions


def config_from_manifest(folder: Folder, root: Path) -> RunConfig:
    """The run's command as a RunConfig, writing into `root`, with every scorer that has scored the folder."""
    if folder.manifest is None:
        raise InputError(f"cannot repair {root}: its manifest.json is missing or unreadable; rerun the original "
                         "`molebench run` command instead")
    manifest = folder.manifest
    runs = [h for h in manifest.history if h.get("stage") == "run" and h.get("config")]
    # the last run command's options (batch sizes, threads: they decide bits), with the folder's seeds and limit
    stored = {**(runs[-1]["config"] if runs else {}), **manifest.config}
    if not stored.get("model") or not stored.get("benchmark"):
        raise InputError(f"cannot repair {root}: its manifest.json does not record the run's configuration; rerun "
                         "the original `molebench run` command instead")
    names = {f.name for f in dataclasses.fields(RunConfig)}
    values = {k: v for k, v in stored.items() if k in names}
    for key in ("seeds", "size"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    scorers = list(manifest.scorers)
    if folder.scores is not None and "scorer" in folder.scores.columns:
        scorers += [s for s in folder.scores["scorer"].unique() if s not in scorers]
    values["scorers"] = tuple(scorers)
    values["out"] = str(root)
    return RunConfig(**values)
