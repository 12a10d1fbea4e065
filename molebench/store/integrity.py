"""Is each image of a run folder the file that was written? Cheap checks for every rerun, full ones for `verify`.

A rerun compares each image's size with the size recorded when it was written (a stat call per image), which finds
truncated and replaced files; an image with no record (a folder from before hashes were recorded, or a run killed
between writing an image and recording it) is decoded instead, once, and recorded at the end of the run. `verify`
also decodes every image and compares its sha256.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from PIL import Image

from molebench.atomic import sha256_file
from molebench.store.run_store import RunStore


@dataclass(frozen=True)
class Damage:
    key: str
    reason: str


def damaged_images(store: RunStore, items: pd.DataFrame, full: bool = False) -> list[Damage]:
    """Present images that are not what was written (missing images are not damage: generation makes them)."""
    records = store.image_records(items)
    damage = []
    for key in items["key"]:
        path = store.image_path(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        reason = None
        if key in records.index:
            want_size, want_sha = int(records.at[key, "size"]), str(records.at[key, "sha256"])
            if size != want_size:
                reason = f"{size} bytes, {want_size} were written (truncated or replaced)"
            elif full and sha256_file(path) != want_sha:
                reason = "sha256 differs from the one recorded when it was written"
        if reason is None and (full or key not in records.index):
            reason = decode_problem(path)
        if reason:
            damage.append(Damage(key, reason))
    return damage


def decode_problem(path) -> str | None:
    """Why the PNG cannot be decoded whole, or None."""
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for damaged files
        return f"does not decode: {type(exc).__name__}: {exc}"
    return None
