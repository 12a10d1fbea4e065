"""`molebench verify RUN`: every file of a run folder checked against what was written, as a table of problems.

Checks are a table (CHECKS): each takes the folder, read once, and yields Problems. A new file kind adds one
function to the table. Reading takes no lock; while a command holds the folder's lock, what it is still making
(missing images and scores, unmerged shards, a 'running' manifest) is not reported as a problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from molebench.atomic import TMP_PREFIX
from molebench.errors import InputError
from molebench.store import lock
from molebench.store.integrity import damaged_images
from molebench.store.manifest import Manifest, ManifestError
from molebench.store.run_store import (SCORE_COLUMNS, SET_GROUP_ALL, SET_SCORE_COLUMNS, RunStore, read_parquet,
                                       set_images_hash)


@dataclass(frozen=True)
class Problem:
    check: str
    path: str  # relative to the run folder
    detail: str
    repair: str  # what `verify --repair` does about it
    unfinished: bool = False  # expected while a command is still writing the folder
    key: str | None = None  # the image it concerns


@dataclass
class Folder:
    """A run folder read once for all checks (None where a file is absent or unreadable)."""

    store: RunStore
    manifest: Manifest | None = None
    items: pd.DataFrame | None = None
    scores: pd.DataFrame | None = None
    repeats: pd.DataFrame | None = None  # `--protocol paper` runs only
    set_scores: pd.DataFrame | None = None  # runs with set-level scorers (FID, KID) only
    unreadable: list[Problem] = field(default_factory=list)
    unrecorded: int = 0  # images without a recorded sha256 (older folders): decoded, not hash-checked


def read_folder(root: str | Path) -> Folder:
    store = RunStore(root)
    if not store.root.is_dir():
        raise InputError(f"run folder not found: {store.root}")
    folder = Folder(store)
    for name, read in (("manifest.json", store.read_manifest), ("items.parquet", store.read_items),
                       ("scores.parquet", lambda: read_parquet(store.scores_path) if store.scores_path.exists()
                        else None), ("repeats.parquet", store.read_repeats),
                       ("set_scores.parquet", lambda: read_parquet(store.set_scores_path)
                        if store.set_scores_path.exists() else None)):
        try:
            value = read()
        except ManifestError as exc:
            if exc.field:  # a manifest with a missing or garbled field: nothing else can be checked against it
                raise
            folder.unreadable.append(Problem("files", name, str(exc).split(" is unreadable ")[-1],
                                             "not repaired: restore it from a copy, or delete it and rerun"))
            continue
        except InputError as exc:
            folder.unreadable.append(Problem("files", name, str(exc).split(" is unreadable ")[-1],
                                             "not repaired: restore it from a copy, or delete it and rerun"))
            continue
        setattr(folder, name.split(".")[0], value)
    if folder.manifest is None and not folder.unreadable:
        raise InputError(f"{store.root} is not a molebench run folder (no manifest.json)")
    return folder


def check_files(folder: Folder) -> Iterable[Problem]:
    yield from folder.unreadable
    if folder.items is None and not any(p.path == "items.parquet" for p in folder.unreadable):
        yield Problem("files", "items.parquet", "missing", "not repaired: rerun the run's command")


def check_manifest(folder: Folder) -> Iterable[Problem]:
    manifest = folder.manifest
    if manifest is None:
        return
    if not manifest.is_complete:
        yield Problem("manifest", "manifest.json", f"status is '{manifest.status}': the run did not finish",
                      "finished by rerunning the run's command", unfinished=True)
    counted = manifest.counts.get("items")
    if folder.items is not None and counted is not None and counted != len(folder.items):
        yield Problem("manifest", "manifest.json", f"counts {counted} items, items.parquet holds {len(folder.items)}",
                      "rewritten by rerunning the run's command", unfinished=True)


def check_images(folder: Folder) -> Iterable[Problem]:
    if folder.items is None:
        return
    store, items = folder.store, folder.items
    for key in items["key"]:
        if not store.has_image(key):
            yield Problem("images", f"images/{key}.png", "missing", "made by rerunning the run's command",
                          unfinished=True, key=key)
    for damage in damaged_images(store, items, full=True):
        yield Problem("images", f"images/{damage.key}.png", damage.reason,
                      "deleted, made again, its scores dropped and scored again", key=damage.key)
    records = store.image_records(items)
    folder.unrecorded = sum(1 for k in items["key"] if store.has_image(k) and k not in records.index)


def check_strays(folder: Folder) -> Iterable[Problem]:
    store = folder.store
    for path in sorted(store.root.rglob(TMP_PREFIX + "*")):
        yield Problem("strays", _rel(store, path), "temporary file of an interrupted write", "deleted",
                      unfinished=True)
    for path in store.score_shard_paths():
        yield Problem("strays", _rel(store, path), "score shard not merged into scores.parquet", "merged",
                      unfinished=True)
    for path in store.ledger_paths():
        yield Problem("strays", _rel(store, path), "image hashes not folded into items.parquet", "folded",
                      unfinished=True)
    if folder.items is not None and store.images_dir.is_dir():
        known = set(folder.items["image"])
        for path in sorted(store.images_dir.iterdir()):
            if path.is_file() and not path.name.startswith(TMP_PREFIX) and _rel(store, path) not in known:
                yield Problem("strays", _rel(store, path), "not an image of this run (not in items.parquet)",
                              "not repaired: delete it by hand if it is not yours")


def check_scores(folder: Folder) -> Iterable[Problem]:
    if folder.scores is None or folder.items is None:
        return
    scores, items = folder.scores, folder.items
    missing_columns = sorted(set(SCORE_COLUMNS) - set(scores.columns))
    if missing_columns:
        yield Problem("scores", "scores.parquet", f"no column {', '.join(missing_columns)}",
                      "not repaired: restore it, or delete it and rerun")
        return
    unknown = scores[~scores["key"].isin(set(items["key"]))]
    if len(unknown):
        yield Problem("scores", "scores.parquet", f"{len(unknown)} rows score images not in items.parquet "
                      f"(first key {unknown['key'].iloc[0]})", "dropped")
    duplicated = scores.duplicated(["key", "scorer", "scorer_version", "metric"]).sum()
    if duplicated:
        yield Problem("scores", "scores.parquet", f"{duplicated} duplicate rows (image x scorer x metric)",
                      "rewritten without them")
    for (scorer, version, metric), rows in scores.groupby(["scorer", "scorer_version", "metric"], sort=True):
        lacking = len(set(items["key"]) - set(rows["key"]))
        if lacking:
            yield Problem("scores", "scores.parquet", f"{lacking} of {len(items)} images have no {scorer}/{metric} "
                          f"score ({version})", "scored by rerunning the run's command", unfinished=True)


def check_summary(folder: Folder) -> Iterable[Problem]:
    store = folder.store
    if folder.scores is None or folder.scores.empty or "scorer" not in folder.scores.columns:
        return
    if not store.summary_path.exists():
        yield Problem("summary", "summary.csv", "missing", "rewritten", unfinished=True)
        return
    try:
        summary = pd.read_csv(store.summary_path)
        if "level" in summary.columns:  # set-level rows (one value per run) are checked by check_set_scores
            summary = summary[summary["level"] != "set"]
        stated = {(r.scorer, r.scorer_version, r.metric): int(r.n) for r in summary.itertuples()}
    except Exception as exc:  # noqa: BLE001 - any unreadable CSV
        yield Problem("summary", "summary.csv", f"unreadable ({type(exc).__name__}: {exc})", "rewritten")
        return
    scores = folder.scores.drop_duplicates(["key", "scorer", "scorer_version", "metric"])
    counted = scores.groupby(["scorer", "scorer_version", "metric"])["value"].count().to_dict()
    if stated != counted:
        yield Problem("summary", "summary.csv", "its counts differ from scores.parquet", "rewritten",
                      unfinished=True)


def check_set_scores(folder: Folder) -> Iterable[Problem]:
    """Set-level values (FID, KID) belong to the images the folder holds now: each row of the whole run (group
    `all`) records the hash of its images' sha256s, which must be the hash of items.parquet's recorded sha256s."""
    rows, items = folder.set_scores, folder.items
    if rows is None or items is None:
        return
    missing_columns = sorted(set(SET_SCORE_COLUMNS) - set(rows.columns))
    if missing_columns:
        yield Problem("set scores", "set_scores.parquet", f"no column {', '.join(missing_columns)}",
                      "not repaired: restore it, or delete it and rerun")
        return
    recorded = folder.store.image_records(items)
    if not set(items["key"]) <= set(recorded.index):
        return  # an older folder (or one being written): the hashes to compare with are not all known yet
    images_hash = set_images_hash(recorded.loc[list(items["key"]), "sha256"])
    scorers = folder.manifest.scorers if folder.manifest is not None else {}
    for (scorer, metric), group in rows[rows["group"] == SET_GROUP_ALL].groupby(["scorer", "metric"], sort=True):
        if scorer not in scorers:
            yield Problem("set scores", "set_scores.parquet", f"{scorer}/{metric} is not a scorer of the manifest",
                          "not repaired: restore the manifest, or delete set_scores.parquet and rerun")
        if not (group["images_sha256"] == images_hash).any():
            yield Problem("set scores", "set_scores.parquet", f"{scorer}/{metric} was computed on other images than "
                          "the folder holds now", "recomputed by rerunning the run's command", unfinished=True)


CHECKS: list[tuple[str, Callable[[Folder], Iterable[Problem]]]] = [
    ("files", check_files),
    ("manifest", check_manifest),
    ("images", check_images),
    ("strays", check_strays),
    ("scores", check_scores),
    ("summary", check_summary),
    ("set scores", check_set_scores),
]


def verify(root: str | Path) -> tuple[Folder, list[Problem]]:
    """Run every check; problems a command still writing the folder will fix itself are left out while it does."""
    folder = read_folder(root)
    problems = [p for _, check in CHECKS for p in check(folder)]
    if lock.is_locked(folder.store.root):
        problems = [p for p in problems if not p.unfinished]
    return folder, problems


def _rel(store: RunStore, path: Path) -> str:
    return path.relative_to(store.root).as_posix()
