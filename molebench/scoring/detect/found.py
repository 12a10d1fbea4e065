"""Detections shared by every scorer of a process, and the crop rule of region-aware scoring.

`faces`, `hands` and region scorers (`hps-v2.1@face`) look at the same images: each image is searched once per
detector and process (a memo keyed by the detector's version and the image's pixels), so adding a region scorer
costs its network only.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from PIL import Image

from molebench.registry import DETECTORS
from molebench.scoring.detect.base import Detector, Region

DEFAULT_DETECTOR = "mediapipe-torch"  # measured recall on real photographs: docs/scorers.md
MEMO_SIZE = 4096
CROP_PADDING = 0.25  # each side, as a share of the box's longer side (HandRefiner crops hands with a margin too)
CROP_RULE = f"square-pad{CROP_PADDING:g}"

_DETECTORS: dict[tuple[str, str], Detector] = {}
_MEMO: OrderedDict[tuple[str, str], list[Region]] = OrderedDict()


def shared_detector(name: str = DEFAULT_DETECTOR, device: str = "cpu") -> Detector:
    """One detector object per (name, device) and process: its networks are loaded once."""
    key = (name, str(device))
    if key not in _DETECTORS:
        _DETECTORS[key] = DETECTORS.get(name)(device=str(device))
    return _DETECTORS[key]


def image_digest(image: Image.Image) -> str:
    return hashlib.blake2b(image.tobytes(), digest_size=16, person=f"{image.size}{image.mode}"[:16].encode()
                           ).hexdigest()


def regions_of(detector: Detector, images: list[Image.Image]) -> list[list[Region]]:
    """The regions of each image, detecting (in one batched call) only the images this process has not seen."""
    keys = [(detector.version, image_digest(image)) for image in images]
    todo = {key: image for key, image in zip(keys, images) if key not in _MEMO}
    if todo:
        for key, found in zip(todo, detector.detect(list(todo.values()))):
            _MEMO[key] = found
    out = []
    for key in keys:
        _MEMO.move_to_end(key)
        out.append(_MEMO[key])
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
    return out


def forget_detections() -> None:
    """Empty the process memo (timing a detector, or checking that cached detections are reused, needs it empty)."""
    _MEMO.clear()


def crop_box(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """A square around the part, padded by CROP_PADDING of its longer side on each side, moved inside the image
    where it fits (a part at the border keeps its context on the inner side) and clipped where it does not."""
    x0, y0, x1, y1 = region.box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * CROP_PADDING)
    side = max(side, 8.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(cx - side / 2, 0.0), max(width - side, 0.0))
    top = min(max(cy - side / 2, 0.0), max(height - side, 0.0))
    box = (round(left), round(top), round(min(left + side, width)), round(min(top + side, height)))
    return box


def crop(image: Image.Image, region: Region) -> Image.Image:
    return image.crop(crop_box(region, *image.size))
