"""One run folder.

    RUN/manifest.json    full config, model/scorer fingerprints, prompt-set sha256, packages, git commit, status
    RUN/items.parquet    the work items: key, prompt_index, prompt_id, prompt, seed, gen_seed, image, and the
                         sha256 and size in bytes of each image once it is made (empty for an old folder until rerun)
    RUN/images/KEY.png   one image per item; KEY = hash(model identity, prompt, seed, generation settings)
    RUN/scores.parquet   one row per image x scorer x metric (SCORE_COLUMNS), sorted, deduplicated
    RUN/set_scores.parquet  set-level metrics (FID, KID): one row per scorer x version x metric x group
                         (SET_SCORE_COLUMNS; group "all" = the whole run, "repeat-R" per repeat of a paper-protocol run)
    RUN/features/        per-image features of set-level scorers, shards keyed by image content (resume cache)
    RUN/regions/         faces and hands the detectors found (REGION_COLUMNS), in shards written as images are
                         scored; what the face/hand scorers and region crops measured, drawn by the HTML report
    RUN/summary.csv      per scorer and metric: n, mean, std, display scale, direction (molebench.store.summary)
    RUN/repeats.parquet  `--protocol paper` only: which prompts each repeat drew (repeat, sample_seed, prompt_index,
                         prompt_id); RUN/repeats.csv its per-repeat means, mean ± s.e. and bootstrap CIs
    RUN/shards/          parts written while working, folded in by the main process, then removed:
                         *.parquet score parts (into scores.parquet), images-pNNNN.jsonl image hashes (into items)
    RUN/.lock            the writer's lock (see molebench.store.lock)

Every file is written atomically, so a run killed at any point leaves only complete files, and a rerun continues.
A write the file system refuses (disk full, read-only) raises StorageError naming the file; a file that cannot be
read raises InputError naming it, and nothing is overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd
from PIL import Image, PngImagePlugin

from molebench import faults
from molebench.atomic import (atomic_path, atomic_write, atomic_write_json, clean_temporaries, sha256_file,
                              sha256_json)
from molebench.errors import InputError, StorageError
from molebench.store.manifest import FILE_NAME as MANIFEST_FILE
from molebench.store.manifest import VERSION as MANIFEST_VERSION
from molebench.store.manifest import Manifest

SCORE_COLUMNS = ["key", "prompt_index", "prompt_id", "prompt", "seed", "scorer", "scorer_version", "metric", "value"]
ITEM_COLUMNS = ["key", "prompt_index", "prompt_id", "prompt", "seed", "gen_seed", "image", "sha256", "size"]
REQUIRED_ITEM_COLUMNS = ["key", "prompt_index", "prompt_id", "prompt", "seed", "gen_seed", "image"]  # every version
RECORD_COLUMNS = ["key", "sha256", "size"]
IMAGE_LEDGER = "images-p{index:04d}.jsonl"
SORT_KEYS = ["prompt_index", "seed", "scorer", "metric"]
# value: the metric; std: its uncertainty where defined (KID over subsets), else NaN; n / n_reference: images the
# value rests on; images_sha256 / reference: hashes of the sorted content keys of the generated and reference images
SET_SCORE_COLUMNS = ["scorer", "scorer_version", "metric", "group", "value", "std", "n", "n_reference", "reference",
                     "images_sha256", "created"]
SET_KEYS = ["scorer", "scorer_version", "metric", "group"]
SET_GROUP_ALL = "all"  # the group of a whole run; a protocol with repeats writes one group per repeat
# one row per face or hand a detector found in an image: box and keypoints in the image's pixels, the detector's
# presence and landmark-quality confidences, handedness (P(right)), keypoints as a flat x, y, z list
REGION_COLUMNS = ["key", "detector", "part", "index", "x0", "y0", "x1", "y1", "presence", "quality", "handedness",
                  "keypoints"]
REGION_KEYS = ["key", "detector", "part", "index"]


class RunStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- layout ---------------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def items_path(self) -> Path:
        return self.root / "items.parquet"

    @property
    def scores_path(self) -> Path:
        return self.root / "scores.parquet"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.csv"

    @property
    def set_scores_path(self) -> Path:
        return self.root / "set_scores.parquet"

    @property
    def features_dir(self) -> Path:
        return self.root / "features"

    @property
    def regions_dir(self) -> Path:
        return self.root / "regions"

    @property
    def repeats_path(self) -> Path:
        return self.root / "repeats.parquet"

    @property
    def repeats_summary_path(self) -> Path:
        return self.root / "repeats.csv"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"

    def image_path(self, key: str) -> Path:
        return self.images_dir / f"{key}.png"

    def prepare(self) -> None:
        """Create the folder and drop temporaries left by an interrupted write."""
        with writing(self.images_dir):
            self.images_dir.mkdir(parents=True, exist_ok=True)
            clean_temporaries(self.root)

    # --- manifest -------------------------------------------------------------------------------------------
    def read_manifest(self) -> Manifest | None:
        """The folder's manifest, checked field by field (None when there is none; ManifestError names a bad field)."""
        return Manifest.read(self.manifest_path)

    def require_manifest(self) -> Manifest:
        """The manifest of a folder that must be a run folder."""
        manifest = self.read_manifest()
        if manifest is None:
            raise InputError(f"{self.root} is not a molebench run folder (no manifest.json)")
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with writing(self.manifest_path):
            atomic_write_json(self.manifest_path, {**manifest, "version": MANIFEST_VERSION})

    def contents(self, items: pd.DataFrame, scores: pd.DataFrame | None = None) -> dict[str, int]:
        """What the folder holds now: images of `items` on disk and (image, scorer) pairs with scores; the
        manifest's counts are derived from this, so they are true after any kill."""
        scores = self.read_scores() if scores is None else scores
        keys = set(items["key"])
        return {"generated": sum(1 for key in keys if self.has_image(key)),
                "scored": int(len(scores.loc[scores["key"].isin(keys), ["key", "scorer"]].drop_duplicates()))}

    # --- items and images -----------------------------------------------------------------------------------
    def write_items(self, items: pd.DataFrame) -> None:
        frame = items.reindex(columns=ITEM_COLUMNS).sort_values(["prompt_index", "seed"], kind="mergesort")
        frame["sha256"] = frame["sha256"].astype("object").where(frame["sha256"].notna(), None)
        frame["size"] = frame["size"].astype("Int64")
        self._write_parquet(self.items_path, frame)

    def read_items(self) -> pd.DataFrame:
        if not self.items_path.exists():
            raise InputError(f"{self.root} is not a molebench run folder (no items.parquet)")
        items = read_parquet(self.items_path)
        missing = [c for c in REQUIRED_ITEM_COLUMNS if c not in items.columns]
        if missing:
            raise InputError(unreadable(self.items_path, f"no column {', '.join(missing)}"))
        return items.reindex(columns=list(dict.fromkeys([*ITEM_COLUMNS, *items.columns])))

    def has_image(self, key: str) -> bool:
        return self.image_path(key).exists()

    def write_image(self, key: str, image: Image.Image, text: dict[str, str] | None = None, process: int = 0) -> None:
        """Write the PNG atomically, then note its sha256 and size in this process's hash ledger."""
        info = PngImagePlugin.PngInfo()
        for name, value in (text or {}).items():
            info.add_text(name, value)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=info)
        data = buffer.getvalue()
        path = self.image_path(key)
        with writing(path):
            atomic_write(path, lambda handle: handle.write(data))
        record = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        ledger = self.shards_dir / IMAGE_LEDGER.format(index=process)
        with writing(ledger):
            ledger.parent.mkdir(parents=True, exist_ok=True)
            # one short line per write(); O_APPEND keeps lines whole; a line cut by a crash is skipped on reading
            fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, (json.dumps(record) + "\n").encode())
            finally:
                os.close(fd)

    def image_records(self, items: pd.DataFrame | None = None) -> pd.DataFrame:
        """key -> sha256, size of every image with a record: items.parquet's columns, then unfolded ledgers."""
        items = self.read_items() if items is None else items
        frames = [items.reindex(columns=RECORD_COLUMNS).dropna(subset=["sha256"])]
        rows = []
        for path in self.ledger_paths():
            with contextlib.suppress(FileNotFoundError):
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    with contextlib.suppress(ValueError, TypeError, KeyError):
                        record = json.loads(line)
                        rows.append({"key": str(record["key"]), "sha256": str(record["sha256"]),
                                     "size": int(record["size"])})
        frames.append(pd.DataFrame(rows, columns=RECORD_COLUMNS))
        records = pd.concat([f for f in frames if len(f)] or frames[-1:], ignore_index=True)
        return records.drop_duplicates("key", keep="last").set_index("key")

    def ledger_paths(self) -> list[Path]:
        return sorted(self.shards_dir.glob("images-p*.jsonl")) if self.shards_dir.exists() else []

    def fold_image_records(self) -> int:
        """Move ledger records into items.parquet (main process, after generation); returns how many items gained one.

        Images without any record (made before molebench recorded hashes) are hashed here, once.
        """
        original = self.read_items()
        items = original.copy()
        records = self.image_records(items)
        present = [self.has_image(k) for k in items["key"]]
        for key, here in zip(items["key"], present):
            if here and key not in records.index:
                records.loc[key] = file_record(self.image_path(key))
        before = int(items["sha256"].notna().sum())
        known = [here and key in records.index for key, here in zip(items["key"], present)]
        items["sha256"] = [records.at[k, "sha256"] if ok else None for k, ok in zip(items["key"], known)]
        items["size"] = pd.array([int(records.at[k, "size"]) if ok else None for k, ok in zip(items["key"], known)],
                                 dtype="Int64")
        ledgers = self.ledger_paths()
        after = int(items["sha256"].notna().sum())
        if ledgers or not items.equals(original):
            self.write_items(items)
        for path in ledgers:
            with writing(path):
                path.unlink(missing_ok=True)
        return after - before

    # --- scores ---------------------------------------------------------------------------------------------
    def read_scores(self, include_shards: bool = True) -> pd.DataFrame:
        """scores.parquet plus every complete shard, deduplicated.

        Shards are read before scores.parquet: a merge writes scores.parquet (holding every shard's rows) before it
        removes any shard, so a shard that vanished while being listed is already in the scores.parquet read after.
        """
        frames = []
        if include_shards:
            for path in self.score_shard_paths():
                with contextlib.suppress(FileNotFoundError):
                    frames.append(read_parquet(path))
        if self.scores_path.exists():
            frames.insert(0, read_parquet(self.scores_path))
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SCORE_COLUMNS})
        missing = sorted(set(SCORE_COLUMNS) - set().union(*(f.columns for f in frames)))
        if missing:
            raise InputError(unreadable(self.scores_path, f"no column {', '.join(missing)}"))
        return normalise_scores(pd.concat(frames, ignore_index=True))

    def score_shard_paths(self) -> list[Path]:
        return sorted(self.shards_dir.rglob("*.parquet")) if self.shards_dir.exists() else []

    def write_score_shard(self, name: str, rows: pd.DataFrame) -> None:
        self._write_parquet(self.shards_dir / f"{name}.parquet", rows[SCORE_COLUMNS])

    def merge_scores(self) -> bool:
        """Fold shards into scores.parquet (atomic); returns whether scores.parquet changed."""
        shard_paths = self.score_shard_paths()
        if not shard_paths:
            return False
        self._write_parquet(self.scores_path, self.read_scores())
        faults.reached("merge")
        for path in shard_paths:
            with writing(path):
                path.unlink(missing_ok=True)
        return True

    def read_set_scores(self) -> pd.DataFrame:
        if not self.set_scores_path.exists():
            return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SET_SCORE_COLUMNS})
        return pd.read_parquet(self.set_scores_path)

    def write_set_scores(self, rows: pd.DataFrame) -> None:
        """Add or replace rows (same scorer, version, metric and group), atomically."""
        old = self.read_set_scores()
        keep = old.merge(rows[SET_KEYS], on=SET_KEYS, how="left", indicator=True)
        frames = [f for f in (old[(keep["_merge"] == "left_only").to_numpy()], rows[SET_SCORE_COLUMNS]) if len(f)]
        merged = pd.concat(frames, ignore_index=True) if frames else rows[SET_SCORE_COLUMNS]
        self._write_parquet(self.set_scores_path, merged.sort_values(SET_KEYS, kind="mergesort"))

    def drop_scores(self, keys: Iterable[str]) -> int:
        """Remove every score row of these image keys (shards merged first); returns the number of rows dropped."""
        keys = set(keys)
        scores = self.read_scores()
        keep = ~scores["key"].isin(keys)
        dropped = int((~keep).sum())
        if dropped:
            self._write_parquet(self.scores_path, scores[keep])
            for path in self.score_shard_paths():
                with writing(path):
                    path.unlink(missing_ok=True)
        return dropped

    def write_summary(self, summary: pd.DataFrame) -> None:
        """summary.csv, with higher_is_better spelt `true`/`false`/empty as in every molebench CSV."""
        if "higher_is_better" in summary:
            summary = summary.assign(higher_is_better=[
                "" if v is None or v is pd.NA or v != v else str(bool(v)).lower() for v in summary["higher_is_better"]])
        with writing(self.summary_path), atomic_path(self.summary_path) as tmp:
            summary.to_csv(tmp, index=False)

    # --- detected faces and hands ---------------------------------------------------------------------------
    def write_regions(self, name: str, rows: pd.DataFrame) -> None:
        """One shard of region rows (atomic); shards stay where they are, like feature shards (no merge step)."""
        self._write_parquet(self.regions_dir / f"{name}.parquet", rows[REGION_COLUMNS])

    def read_regions(self) -> pd.DataFrame:
        """Every region row of the folder, one per (image key, detector version, part, index)."""
        paths = sorted(self.regions_dir.glob("*.parquet")) if self.regions_dir.exists() else []
        frames = [frame for frame in (read_parquet(path) for path in paths) if len(frame)]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("x0", "y0", "x1", "y1", "presence",
                                                                       "quality", "handedness") else "object")
                                 for c in REGION_COLUMNS})
        regions = pd.concat(frames, ignore_index=True).drop_duplicates(REGION_KEYS, keep="first")
        return regions.sort_values(REGION_KEYS, kind="mergesort").reset_index(drop=True)[REGION_COLUMNS]

    # --- protocol repeats -----------------------------------------------------------------------------------
    def write_repeats(self, repeats: pd.DataFrame) -> None:
        self._write_parquet(self.repeats_path, repeats)

    def read_repeats(self) -> pd.DataFrame | None:
        """Repeat membership of a `--protocol paper` run; None for other runs."""
        return read_parquet(self.repeats_path) if self.repeats_path.exists() else None

    def write_repeats_summary(self, summary: pd.DataFrame) -> None:
        with writing(self.repeats_summary_path), atomic_path(self.repeats_summary_path) as tmp:
            summary.to_csv(tmp, index=False)

    # --- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
        with writing(path), atomic_path(path) as tmp:
            frame.reset_index(drop=True).to_parquet(tmp, index=False)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn the file system's refusal (disk full, read-only, permissions) into one clear error naming the file."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StorageError(f"cannot write {path}: {reason}. Files already finished are kept; free space or fix "
                           "permissions and rerun the same command to continue") from None


def unreadable(path: Path, reason: Any) -> str:
    return (f"{path} is unreadable ({reason}); it was left as it is. Restore it from a copy, or delete it and rerun "
            "the same `molebench run` command to rebuild it")


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a parquet file of a run folder, naming the file on any problem (a vanished file stays FileNotFoundError)."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for damaged files
        raise InputError(unreadable(path, f"{type(exc).__name__}: {exc}")) from None


def file_record(path: Path) -> tuple[str, int]:
    """(sha256, size in bytes) of a file."""
    return sha256_file(path), path.stat().st_size


def set_images_hash(image_sha256s: Iterable[str]) -> str:
    """The identity of the images a set-level value rests on: 16 hex digits of the hash of their sorted file sha256s
    (the same images in any order give the same hash; one changed byte in one image changes it)."""
    return sha256_json(sorted(image_sha256s))[:16]


def normalise_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted, one row per (key, scorer, scorer_version, metric): the canonical form of scores.parquet."""
    frame = frame.drop_duplicates(["key", "scorer", "scorer_version", "metric"], keep="first")
    return frame.sort_values(SORT_KEYS + ["key", "scorer_version"], kind="mergesort").reset_index(drop=True)[SCORE_COLUMNS]


def _dtype(column: str) -> str:
    return {"prompt_index": "int64", "seed": "int64", "value": "float64", "std": "float64", "n": "int64",
            "n_reference": "int64"}.get(column, "object")


def score_rows(items: pd.DataFrame, scorer: str, version: str, metrics: dict[str, Iterable[float]]) -> pd.DataFrame:
    """Long-format rows for `items` (aligned with each metric's values)."""
    frames = []
    for metric, values in metrics.items():
        frame = items[["key", "prompt_index", "prompt_id", "prompt", "seed"]].copy()
        frame["scorer"], frame["scorer_version"], frame["metric"] = scorer, version, metric
        frame["value"] = list(values)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[SCORE_COLUMNS]
