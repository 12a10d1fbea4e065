"""The detector interface: images in, faces and hands out, each with the detector's own confidences.

Two confidences are kept apart on purpose. `presence` is the detector's belief that the part is there (a face or
palm detector's score, a probability); `quality` is the landmark network's belief that its landmarks sit on a real
face or hand (MediaPipe's "face flag" / "hand flag") as log-odds, the closest thing to "is this a well-formed part" a
detector gives: log-odds because the flag's probability rounds to 1 on clear faces and then no longer moves when the
face is damaged (docs/scorers.md, Detector validation). A handedness score (left vs right) is neither, and is kept
in its own field.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from molebench.assets.weights import file_sha256
from molebench.parts import PARTS
from molebench.scoring.base import LoadsOnce

HAND_KEYPOINTS = 21  # MediaPipe's hand model order: wrist, then 4 points per finger from thumb to little finger


@dataclass
class Region:
    """One face or hand found in an image. Coordinates are pixels of the image that was searched."""

    part: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1: the part's extent (landmarks' box when there are any)
    presence: float  # detector confidence that the part is there, in [0, 1]
    quality: float = math.nan  # landmark network's confidence as log-odds (0: even); NaN when it has no such output
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))  # (K, 3): x, y px, z
    handedness: float = math.nan  # P(right hand) for hands; NaN otherwise

    @property
    def size(self) -> float:
        """The longer side of the box in pixels (small parts are where detectors fail first)."""
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0))

    def as_row(self) -> dict:
        """A flat record (for a parquet row or JSON): floats and lists only."""
        return {"part": self.part, "x0": float(self.box[0]), "y0": float(self.box[1]), "x1": float(self.box[2]),
                "y1": float(self.box[3]), "presence": float(self.presence), "quality": float(self.quality),
                "handedness": float(self.handedness),
                "keypoints": np.asarray(self.keypoints, np.float32).reshape(-1).round(2).tolist()}

    @classmethod
    def from_row(cls, row) -> "Region":
        points = np.asarray(row["keypoints"], np.float32).reshape(-1, 3)
        return cls(str(row["part"]), (float(row["x0"]), float(row["y0"]), float(row["x1"]), float(row["y1"])),
                   float(row["presence"]), float(row["quality"]), points, float(row["handedness"]))


class Detector(LoadsOnce):
    """Finds faces and/or hands. Subclasses set `parts`, `implementation` (bumped when the rule that turns network
    outputs into regions changes) and implement `weight_files` and `_detect_batch`; `detect` batches.

    The version names the weights (`name/implementation/w-<12 hex of the files' hashes>`): scores computed from one
    detector's regions never mix with another's in a run folder.
    """

    registry_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parts: ClassVar[tuple[str, ...]] = PARTS
    implementation: ClassVar[str] = "v1"
    default_batch_size: ClassVar[int] = 16

    def __init__(self, device: str = "cpu", batch_size: int | None = None) -> None:
        self.device = device
        self.batch_size = batch_size or self.default_batch_size
        self._version: str | None = None

    def weight_files(self) -> dict[str, Path]:
        """The files whose bytes define the detector (inside an installed package), by short name."""
        raise NotImplementedError

    @property
    def version(self) -> str:
        if self._version is None:
            files = self.weight_files()
            digest = "".join(f"{name}:{file_sha256(path)}" for name, path in sorted(files.items()))
            self._version = (f"{self.registry_name}/{self.implementation}/"
                             f"w-{hashlib.sha256(digest.encode()).hexdigest()[:12]}")
        return self._version

    def fingerprint(self) -> dict:
        return {"name": self.registry_name, "version": self.version,
                "weights": {name: {"file": path.name, "sha256": file_sha256(path)}
                            for name, path in sorted(self.weight_files().items())}}

    def detect(self, images: list[Image.Image]) -> list[list[Region]]:
        """Every face and hand in each RGB image, in batches of `batch_size`."""
        self.load()
        found: list[list[Region]] = []
        for start in range(0, len(images), self.batch_size):
            found.extend(self._detect_batch(images[start : start + self.batch_size]))
        return found

    def _detect_batch(self, images: list[Image.Image]) -> list[list[Region]]:
        raise NotImplementedError
