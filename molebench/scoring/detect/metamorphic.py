"""Metamorphic checks of a detector's per-region score on real photographs: corrupting a face or hand must lower
that region's score by more than its noise, and the same corruption placed beside the region must not move it by
more than its noise.

The score of a region is the detector's landmark `quality`, falling back to `presence` where the detector has no
quality for that part; a region the detector no longer finds scores 0 (not found is never good; for
`mediapipe-torch`, whose quality is the landmark flag's log-odds, 0 is even odds, its default gate). Its noise is
the largest change under the benign perturbations (JPEG q95 re-encode, 1 and 2 px shifts), and never less than
`RESOLUTION` (changes below the third decimal are not read as anything). Each case runs the detector
on a context window around the annotated part (four times the part's size, the part in the middle, at most
`WINDOW_PIXELS` on its longer side), so a case costs a dozen small detections instead of a dozen full photographs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from molebench.scoring.detect.base import Detector, Region
from molebench.scoring.detect.corruptions import BENIGN, CORRUPTIONS
from molebench.scoring.detect.photos import Part
from molebench.scoring.detect.validation import PhotoSet, centre, inside

WINDOW_SCALE = 4.0
WINDOW_PIXELS = 256
RESOLUTION = 1e-3
Box = tuple[float, float, float, float]


@dataclass
class Case:
    image: str
    part: str
    corruption: str
    before: float
    noise: float
    inside: float  # the score with the part corrupted
    outside: float | None  # the score with the same corruption beside the part (None: no room in the window)

    @property
    def tolerance(self) -> float:
        return max(self.noise, RESOLUTION)

    @property
    def lowered(self) -> bool:
        return self.before - self.inside > self.tolerance

    @property
    def steady_outside(self) -> bool | None:
        return None if self.outside is None else abs(self.outside - self.before) <= self.tolerance


def score_field(regions: list[Region], part: str) -> str | None:
    """'quality' or 'presence': the score the detector reports for this kind of part (None: neither)."""
    kind = [region for region in regions if region.part == part]
    if any(math.isfinite(region.quality) for region in kind):
        return "quality"
    if any(math.isfinite(region.presence) for region in kind):
        return "presence"
    return None


def region_score(regions: list[Region], part: str, box: Box, field: str) -> float:
    """The best score among detections of this part whose centre lies in the box; 0 when none does."""
    values = [getattr(region, field) for region in regions if region.part == part and inside(centre(region.box), box)]
    values = [value for value in values if math.isfinite(value)]
    return max(values) if values else 0.0


def _window(size: tuple[int, int], box: Box) -> tuple[int, int, int, int]:
    cx, cy = centre(box)
    half = WINDOW_SCALE * max(box[2] - box[0], box[3] - box[1]) / 2
    return (max(0, int(cx - half)), max(0, int(cy - half)), min(size[0], int(cx + half)), min(size[1], int(cy + half)))


def _to_window(box: Box, window: tuple[int, int, int, int], scale: float) -> Box:
    return ((box[0] - window[0]) * scale, (box[1] - window[1]) * scale, (box[2] - window[0]) * scale,
            (box[3] - window[1]) * scale)


def _overlaps(a: Box, b: Box, gap: float) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def beside(box: Box, avoid: list[Box], size: tuple[int, int]) -> Box | None:
    """A box of the same size inside the window that keeps clear of the part and of every other annotated part (by
    a tenth of the part's size), the farthest such place from the part; None when there is no room."""
    w, h = box[2] - box[0], box[3] - box[1]
    gap = 0.1 * max(w, h)
    spots = [(x, y) for y in np.linspace(0, size[1] - h, 9) for x in np.linspace(0, size[0] - w, 9)]
    spots.sort(key=lambda p: -((p[0] - box[0]) ** 2 + (p[1] - box[1]) ** 2))
    for x, y in spots:
        spot = (float(x), float(y), float(x + w), float(y + h))
        if x >= 0 and y >= 0 and not any(_overlaps(spot, other, gap) for other in [box, *avoid]):
            return spot
    return None


def part_cases(detector: Detector, image: Image.Image, target: Part, others: list[Part], field: str) -> list[Case]:
    """Every corruption applied inside and beside one annotated part, scored against its noise."""
    window = _window(image.size, target.box)
    scale = min(1.0, WINDOW_PIXELS / max(window[2] - window[0], window[3] - window[1]))
    crop = image.crop(window)
    if scale < 1.0:
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BILINEAR)
    base = np.asarray(crop)
    box = _to_window(target.box, window, scale)
    spot = beside(box, [_to_window(other.box, window, scale) for other in others], crop.size)
    variants = [base] + [perturb(base) for perturb in BENIGN.values()]
    for corrupt in CORRUPTIONS.values():
        variants.append(corrupt(base, box))
        if spot is not None:
            variants.append(corrupt(base, spot))
    found = detector.detect([Image.fromarray(np.ascontiguousarray(v)) for v in variants])
    scores = [region_score(regions, target.part, box, field) for regions in found]
    before = scores[0]
    if before <= 0.0:
        return []  # not found in its window: there is nothing to lower
    noise = max(abs(value - before) for value in scores[1 : 1 + len(BENIGN)])
    rest = iter(scores[1 + len(BENIGN) :])
    cases = []
    for name in CORRUPTIONS:
        corrupted = next(rest)
        outside = next(rest) if spot is not None else None
        cases.append(Case(target.image, target.part, name, before, noise, corrupted, outside))
    return cases


def chosen_parts(photo_set: PhotoSet, part: str, limit: int | None = None) -> list[Part]:
    """The clearly visible parts of this kind, at most `limit`, taken one per photograph in turn (varied cases
    first when a test can afford only a few)."""
    queues = [[p for p in photo_set.parts.get(photo.image, []) if p.part == part and p.clear]
              for photo in photo_set.with_people]
    ordered = [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
    return ordered[:limit]


def metamorphic_cases(detector: Detector, photo_set: PhotoSet, part: str, found: dict[str, list[Region]] | None = None,
                      limit: int | None = None) -> tuple[str | None, list[Case]]:
    """The score field the detector reports for this part and the cases over the clearly visible annotated parts of
    that kind (`limit`: at most that many parts); (None, []) when the detector gives this part no score at all.
    `found`: the detector's regions on the whole photographs by image id, when the caller has them already."""
    people = photo_set.with_people
    if found is None:
        found = dict(zip([p.image for p in people], detector.detect([photo_set.images[p.image] for p in people])))
    field = score_field([region for photo in people for region in found[photo.image]], part)
    if field is None:
        return None, []
    cases: list[Case] = []
    for target in chosen_parts(photo_set, part, limit):
        others = [other for other in photo_set.parts[target.image] if other is not target]
        cases.extend(part_cases(detector, photo_set.images[target.image], target, others, field))
    return field, cases


def summary(cases: list[Case]) -> dict[str, int]:
    """Counts for a table: cases, how many lowered the score, how many had room beside the part, how many of those
    left it steady."""
    beside = [case for case in cases if case.outside is not None]
    return {"cases": len(cases), "lowered": sum(case.lowered for case in cases), "beside": len(beside),
            "steady": sum(bool(case.steady_outside) for case in beside)}


def _share(num: int, den: int) -> str:
    return f"{100 * num / den:.0f} % ({num}/{den})" if den else "n/a"


def table(results: dict[str, dict[str, tuple[str | None, list[Case]]]]) -> str:
    """A Markdown table: per detector and part, the score used, how often corrupting the part lowered it by more
    than its noise (in all and per corruption), and how often the same corruption beside the part left it within
    its noise."""
    names = list(CORRUPTIONS)
    lines = ["| detector | part | score | corrupted part: score lowered | " + " | ".join(names)
             + " | corrupted beside: score steady |", "| --- " * (5 + len(names)) + "|"]
    for name, parts in results.items():
        for part, (field, cases) in parts.items():
            if field is None:
                lines.append(f"| {name} | {part} | none reported | n/a | " + "n/a | " * len(names) + "n/a |")
                continue
            c = summary(cases)
            each = [summary([case for case in cases if case.corruption == corruption]) for corruption in names]
            lines.append(f"| {name} | {part} | {field} | {_share(c['lowered'], c['cases'])} | "
                         + " | ".join(f"{e['lowered']}/{e['cases']}" for e in each)
                         + f" | {_share(c['steady'], c['beside'])} |")
    return "\n".join(lines)
