"""One run folder.

    RUN/manifest.json    full config, model/scorer fingerprints, prompt-set sha256, packages, git commit, status
    RUN/items.parquet    the work items: key, prompt_index, prompt_id, prompt, seed, gen_seed, image
    RUN/images/KEY.png   one image per item; KEY = hash(model identity, prompt, seed, generation settings)
    RUN/scores.parquet   one row per image x scorer x metric (SCORE_COLUMNS), sorted, deduplicated
    RUN/summary.csv      per scorer and metric: n, mean, std, display scale, direction (molebench.store.summary)
    RUN/repeats.parquet  `--protocol paper` only: which prompts each repeat drew (repeat, sample_seed, prompt_index,
                         prompt_id); RUN/repeats.csv its per-repeat means, mean ± s.e. and bootstrap CIs
    RUN/shards/          score parts written while scoring; merged into scores.parquet, then removed

Every file is written atomically, so a run killed at any point leaves only complete files, and a rerun continues.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from PIL import Image, PngImagePlugin

from molebench.atomic import atomic_path, atomic_write, atomic_write_json, clean_temporaries
from molebench.errors import InputError

SCORE_COLUMNS = ["key", "prompt_index", "prompt_id", "prompt", "seed", "scorer", "scorer_version", "metric", "value"]
ITEM_COLUMNS = ["key", "prompt_index", "prompt_id", "prompt", "seed", "gen_seed", "image"]
SORT_KEYS = ["prompt_index", "seed", "scorer", "metric"]


class RunStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- layout ---------------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

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
        self.images_dir.mkdir(parents=True, exist_ok=True)
        clean_temporaries(self.root)

    # --- manifest -------------------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.exists():
            return None
        try:
            return json.loads(self.manifest_path.read_text())
        except (json.JSONDecodeError, OSError) as exc:
            raise InputError(f"corrupt run manifest {self.manifest_path}: {exc}") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    # --- items and images -----------------------------------------------------------------------------------
    def write_items(self, items: pd.DataFrame) -> None:
        self._write_parquet(self.items_path, items[ITEM_COLUMNS].sort_values(["prompt_index", "seed"]))

    def read_items(self) -> pd.DataFrame:
        if not self.items_path.exists():
            raise InputError(f"{self.root} is not a molebench run folder (no items.parquet)")
        return pd.read_parquet(self.items_path)

    def has_image(self, key: str) -> bool:
        return self.image_path(key).exists()

    def write_image(self, key: str, image: Image.Image, text: dict[str, str] | None = None) -> None:
        info = PngImagePlugin.PngInfo()
        for name, value in (text or {}).items():
            info.add_text(name, value)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=info)
        atomic_write(self.image_path(key), lambda handle: handle.write(buffer.getvalue()))

    # --- scores ---------------------------------------------------------------------------------------------
    def read_scores(self, include_shards: bool = True) -> pd.DataFrame:
        frames = []
        if self.scores_path.exists():
            frames.append(pd.read_parquet(self.scores_path))
        if include_shards and self.shards_dir.exists():
            frames += [pd.read_parquet(p) for p in sorted(self.shards_dir.rglob("*.parquet"))]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in SCORE_COLUMNS})
        return normalise_scores(pd.concat(frames, ignore_index=True))

    def write_score_shard(self, name: str, rows: pd.DataFrame) -> None:
        self._write_parquet(self.shards_dir / f"{name}.parquet", rows[SCORE_COLUMNS])

    def merge_scores(self) -> bool:
        """Fold shards into scores.parquet (atomic); returns whether scores.parquet changed."""
        shard_paths = sorted(self.shards_dir.rglob("*.parquet")) if self.shards_dir.exists() else []
        if not shard_paths:
            return False
        self._write_parquet(self.scores_path, self.read_scores())
        for path in shard_paths:
            path.unlink()
        return True

    def write_summary(self, summary: pd.DataFrame) -> None:
        with atomic_path(self.summary_path) as tmp:
            summary.to_csv(tmp, index=False)

    # --- protocol repeats -----------------------------------------------------------------------------------
    def write_repeats(self, repeats: pd.DataFrame) -> None:
        self._write_parquet(self.repeats_path, repeats)

    def read_repeats(self) -> pd.DataFrame | None:
        """Repeat membership of a `--protocol paper` run; None for other runs."""
        return pd.read_parquet(self.repeats_path) if self.repeats_path.exists() else None

    def write_repeats_summary(self, summary: pd.DataFrame) -> None:
        with atomic_path(self.repeats_summary_path) as tmp:
            summary.to_csv(tmp, index=False)

    # --- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
        with atomic_path(path) as tmp:
            frame.reset_index(drop=True).to_parquet(tmp, index=False)


def normalise_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted, one row per (key, scorer, scorer_version, metric): the canonical form of scores.parquet."""
    frame = frame.drop_duplicates(["key", "scorer", "scorer_version", "metric"], keep="first")
    return frame.sort_values(SORT_KEYS + ["key", "scorer_version"], kind="mergesort").reset_index(drop=True)[SCORE_COLUMNS]


def _dtype(column: str) -> str:
    return {"prompt_index": "int64", "seed": "int64", "value": "float64"}.get(column, "object")


def score_rows(items: pd.DataFrame, scorer: str, version: str, metrics: dict[str, Iterable[float]]) -> pd.DataFrame:
    """Long-format rows for `items` (aligned with each metric's values)."""
    frames = []
    for metric, values in metrics.items():
        frame = items[["key", "prompt_index", "prompt_id", "prompt", "seed"]].copy()
        frame["scorer"], frame["scorer_version"], frame["metric"] = scorer, version, metric
        frame["value"] = list(values)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[SCORE_COLUMNS]
