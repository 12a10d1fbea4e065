"""COCO Captions reader (`captions_val2014.json`, `captions_val2017.json`: the same format) via pycocotools.

Each caption becomes a candidate whose source id is its annotation id and whose group is its image, so the builder
can keep one caption per image; the smallest annotation id wins ties, which makes the choice independent of order.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from molebench.benchmarks.source import Candidate, SourceRead
from molebench.benchmarks.definition import Definition
from molebench.benchmarks.download import file_digests
from molebench.errors import InputError


def resolve(definition: Definition, paths: list[Path]) -> list[Path]:
    """One caption file; a folder is searched (also its `annotations/`) for the accepted file names."""
    if len(paths) != 1:
        raise InputError(f"{definition.name}: give one COCO captions file with --source, got {len(paths)}")
    path = paths[0]
    accepted = list(definition.source.get("accepted_files", [definition.source.get("default_file")]))
    if path.is_dir():
        for name in accepted:
            for candidate in (path / name, path / "annotations" / name):
                if candidate.is_file():
                    return [candidate]
        raise InputError(f"{path}: no COCO captions file in this folder (looked for {', '.join(accepted)})")
    if not path.is_file():
        raise InputError(f"COCO captions file not found: {path}")
    return [path]


def read(definition: Definition, paths: list[Path]) -> SourceRead:
    (path,) = paths
    coco = load_coco(path)
    dataset = coco.dataset
    candidates = []
    for ann_id in sorted(coco.anns, key=_order):
        ann = coco.anns[ann_id]
        caption = ann.get("caption")
        if not isinstance(caption, str):
            raise InputError(f"{path}: annotation {ann_id} has no text 'caption' (is this a captions_*.json file? "
                             "instances_* and person_keypoints_* files hold no captions)")
        image_id = ann["image_id"]
        candidates.append(Candidate(str(ann_id), caption, _order(ann_id), image_id, {"image_id": image_id}))
    description = str(dataset.get("info", {}).get("description", "")) if isinstance(dataset.get("info"), dict) else ""
    digests = file_digests(path)
    official = definition.source.get("official_md5", {}).get(path.name)
    record = {"name": path.name, "path": str(path), **digests, "split": _split(path, description),
              "description": description, "images": len(coco.imgs) or len(coco.imgToAnns),
              "official_md5": official, "matches_official": None if official is None else digests["md5"] == official}
    notes = []
    if official is not None and digests["md5"] != official:
        notes.append(f"{path.name}: md5 {digests['md5']} differs from the official file's {official}")
    return SourceRead(candidates, [record], {"source_captions": len(candidates)}, notes)


def load_coco(path: Path):
    """Parse the JSON (UTF-8) and index it with pycocotools; every failure names the file and the problem."""
    from pycocotools.coco import COCO

    try:
        dataset = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read COCO captions file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("annotations"), list):
        raise InputError(f"{path}: not a COCO annotation file (expected an object with an 'annotations' list)")
    for index, ann in enumerate(dataset["annotations"]):
        if not isinstance(ann, dict) or "id" not in ann or "image_id" not in ann:
            raise InputError(f"{path}: annotations[{index}] lacks 'id' or 'image_id'")
    coco = COCO()
    coco.dataset = dataset
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: malformed COCO annotations ({type(exc).__name__}: {exc})") from None
    if len(coco.anns) != len(dataset["annotations"]):
        raise InputError(f"{path}: annotation ids are not unique")
    return coco


def _order(value: Any) -> tuple:
    """Integer ids (all official files) sort numerically; anything else after them, as text."""
    return (0, value, "") if isinstance(value, int) and not isinstance(value, bool) else (1, 0, str(value))


def _split(path: Path, description: str) -> str:
    for split in ("val2014", "val2017", "train2014", "train2017"):
        if split in path.name:
            return split
    year = "2014" if "2014" in description else "2017" if "2017" in description else "?"
    return f"unknown ({year})"
