"""Recall and precision of a detector on real photographs whose faces and hands were boxed by hand.

Matching rule (one rule for every detector): a detection matches an annotated part of the same kind when the centre
of the detection's box lies inside the annotated box. Centres rather than IoU because a detector's box and a hand
annotation disagree in extent by design (a hand detector boxes its 21 landmarks, wrist to fingertips; a face detector
boxes a square from brow to chin), while the centre of either lies on the part. Pairs are made one to one, closest
centres first; a second detection on an already matched part counts as a false detection.

Reported per part: recall on the clearly visible parts, recall on all annotated parts, precision over every
detection on the photographs with people, and the number of detections on the photographs without people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from PIL import Image

from molebench.scoring.detect.base import PARTS, Detector, Region
from molebench.scoring.detect.photos import (DATA_DIR, Part, Photo, PhotoSetError, load_photo, read_annotations,
                                             read_photos)

MATCH_RULE = "detection box centre inside the annotated box, one to one, closest centres first"


@dataclass
class PhotoSet:
    """The validation photographs, loaded once: images by id, annotated parts by id."""

    photos: list[Photo]
    images: dict[str, Image.Image]
    parts: dict[str, list[Part]]

    @classmethod
    def load(cls, cache_dir: Path, data_dir: Path = DATA_DIR) -> "PhotoSet":
        photos = read_photos(data_dir)
        parts = read_annotations(data_dir)
        unknown = sorted(set(parts) - {photo.image for photo in photos})
        if unknown:
            raise PhotoSetError(f"annotations for images missing from the photo table: {unknown}")
        return cls(photos, {photo.image: load_photo(photo, cache_dir) for photo in photos}, parts)

    @property
    def with_people(self) -> list[Photo]:
        return [photo for photo in self.photos if photo.people]

    @property
    def without_people(self) -> list[Photo]:
        return [photo for photo in self.photos if not photo.people]


def centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def inside(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def match(regions: list[Region], parts: list[Part]) -> dict[int, int]:
    """Detection index -> annotated part index, by the module's rule (same kind, centre inside, one to one)."""
    candidates = []
    for d, region in enumerate(regions):
        point = centre(region.box)
        for p, part in enumerate(parts):
            if part.part == region.part and inside(point, part.box):
                cx, cy = centre(part.box)
                size = max(part.box[2] - part.box[0], part.box[3] - part.box[1])
                candidates.append((((point[0] - cx) ** 2 + (point[1] - cy) ** 2) ** 0.5 / size, d, p))
    pairs: dict[int, int] = {}
    for _, d, p in sorted(candidates):
        if d not in pairs and p not in pairs.values():
            pairs[d] = p
    return pairs


@dataclass
class PartScore:
    """Counts for one part kind (face or hand) on the whole photo set."""

    clear_found: int = 0
    clear_total: int = 0
    found: int = 0
    total: int = 0
    detections: int = 0  # on photographs with people
    true_detections: int = 0
    on_empty: int = 0  # detections on photographs without people
    missed: list[str] = field(default_factory=list)  # "image: note" of the clear parts not found

    @staticmethod
    def _ratio(num: int, den: int) -> float:
        return num / den if den else float("nan")

    @property
    def clear_recall(self) -> float:
        return self._ratio(self.clear_found, self.clear_total)

    @property
    def recall(self) -> float:
        return self._ratio(self.found, self.total)

    @property
    def precision(self) -> float:
        return self._ratio(self.true_detections, self.detections)


def score(photo_set: PhotoSet, found: dict[str, list[Region]]) -> dict[str, PartScore]:
    """Counts per part kind from the detections of every photograph (image id -> regions)."""
    scores = {part: PartScore() for part in PARTS}
    for photo in photo_set.photos:
        regions = found[photo.image]
        if not photo.people:
            for region in regions:
                scores[region.part].on_empty += 1
            continue
        parts = photo_set.parts.get(photo.image, [])
        pairs = match(regions, parts)
        matched = set(pairs.values())
        for index, part in enumerate(parts):
            entry = scores[part.part]
            hit = index in matched
            entry.total += 1
            entry.found += hit
            if part.clear:
                entry.clear_total += 1
                entry.clear_found += hit
                if not hit:
                    entry.missed.append(f"{photo.image}: {part.note or 'no note'}")
        for d, region in enumerate(regions):
            scores[region.part].detections += 1
            scores[region.part].true_detections += d in pairs
    return scores


def detect_all(detector: Detector, photo_set: PhotoSet) -> dict[str, list[Region]]:
    """The detector's regions on every photograph (one call, so a batched detector batches), by image id."""
    regions = detector.detect([photo_set.images[photo.image] for photo in photo_set.photos])
    return {photo.image: found for photo, found in zip(photo_set.photos, regions)}


def validate(detector: Detector, photo_set: PhotoSet) -> dict[str, PartScore]:
    return score(photo_set, detect_all(detector, photo_set))


def _percent(value: float, num: int, den: int) -> str:
    return f"{100 * value:.0f} % ({num}/{den})" if den else "n/a"


def table(results: dict[str, dict[str, PartScore]], when: date | None = None) -> str:
    """A Markdown table: one row per detector and part."""
    lines = [f"Measured {(when or date.today()).isoformat()}; match rule: {MATCH_RULE}.", "",
             "| detector | part | recall, clear | recall, all | precision | detections without people |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, scores in results.items():
        for part, s in scores.items():
            lines.append(f"| {name} | {part} | {_percent(s.clear_recall, s.clear_found, s.clear_total)} | "
                         f"{_percent(s.recall, s.found, s.total)} | "
                         f"{_percent(s.precision, s.true_detections, s.detections)} | {s.on_empty} |")
    return "\n".join(lines)
