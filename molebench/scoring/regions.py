"""Region-aware scoring: any per-image scorer on the faces or hands of an image (`hps-v2.1@face`, `clip-t@hand`).

A whole-image score can rise while every hand in the image gets worse. `NAME@face` / `NAME@hand` runs scorer NAME
on square crops around each face / hand the detector found (padded by a quarter of the part's size on each side,
molebench.scoring.detect.found.crop_box), with a fixed prompt describing the part ("a close-up photo of a person's
face"): the MoLE experts were trained on close-up faces and hands, and the scene's prompt does not describe a crop.
An image's value is the mean over its crops, NaN when the part was not found (never "good"); the rate of finding it
is the `faces` / `hands` scorers' business, shown beside it.

The name is the scorer's registry name plus `@part`, its version the inner version plus the part, the crop rule
and the detector's version: scores stay keyed by content, so resume and rescoring are exact.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from molebench.errors import InputError
from molebench.parts import SEPARATOR
from molebench.scoring.base import Scorer
from molebench.scoring.detect.found import CROP_RULE, DEFAULT_DETECTOR, crop, shared_detector
from molebench.scoring.people import Detecting

PART_PROMPTS = {"face": "a close-up photo of a person's face", "hand": "a close-up photo of a person's hand"}


def wrap_inner(wrapper: Scorer, inner: Scorer, part: str, detector: str) -> None:
    """What a crop scorer takes over from the scorer it runs on crops: name `NAME@part`, metrics, scales, directions,
    and the shared detector on the inner scorer's device."""
    wrapper.inner, wrapper.part = inner, part
    wrapper.registry_name = f"{inner.registry_name}{SEPARATOR}{part}"
    wrapper.metrics = inner.metrics
    wrapper.display_scale, wrapper.paper_scale = inner.display_scale, inner.paper_scale
    wrapper.higher_is_better = inner.higher_is_better
    wrapper.detector = shared_detector(detector, str(inner.device))


class RegionScorer(Detecting, Scorer):
    """`inner` scored on the crops of one part; same metrics, scales and directions as `inner`."""

    def __init__(self, inner: Scorer, part: str, detector: str = DEFAULT_DETECTOR) -> None:
        super().__init__(device=inner.device, dtype=inner.dtype, batch_size=inner.batch_size, weights=inner.weights)
        if inner.kind != "image":
            raise InputError(f"{inner.registry_name}{SEPARATOR}{part}: only per-image scorers run on crops here")
        wrap_inner(self, inner, part, detector)
        self.description = f"{inner.registry_name} on {part} crops"

    @property
    def version(self) -> str:
        return f"{self.inner.version}{SEPARATOR}{self.part}/{CROP_RULE}/{self.detector.version}"

    def weights_status(self):
        return self.inner.weights_status()

    def fingerprint(self) -> dict[str, Any]:
        return {**self.inner.fingerprint(), **super().fingerprint(), "detector": self.detector.fingerprint(),
                "region": {"part": self.part, "crop": CROP_RULE, "prompt": PART_PROMPTS[self.part],
                           "inner": self.inner.registry_name}}

    def _load(self) -> None:
        self.inner.load()
        self.detector.load()

    def score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, np.ndarray]:
        """Per image: the mean of the inner scorer over the crops of this part; NaN where none was found."""
        self.check_pairs(images, prompts)
        self.load()
        crops, owners = [], []
        for index, (image, found) in enumerate(zip(images, self.found(images))):
            for region in found:
                if region.part == self.part:
                    crops.append(crop(image, region))
                    owners.append(index)
        values = self.inner.score(crops, [PART_PROMPTS[self.part]] * len(crops)) if crops else {}
        out = {}
        owners_array = np.asarray(owners, dtype=np.int64)
        for metric in self.metrics:
            column = np.full(len(images), math.nan)
            if crops:
                sums = np.bincount(owners_array, weights=values[metric], minlength=len(images))
                counts = np.bincount(owners_array, minlength=len(images))
                column = np.where(counts > 0, sums / np.maximum(counts, 1), math.nan)
            out[metric] = column
        return out
