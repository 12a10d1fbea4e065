"""Run folders with face and hand detections for report tests: regions stored as the runner stores them
(molebench.runner.score_step.region_rows' columns), scores computed from them by the real `faces` / `hands` scorers'
rule (`measure`), and the scorers' real fingerprints (directions: counts have none) in the manifest.

`photo_run` puts real photographs of people in a run folder (scikit-image's astronaut and camera man, matplotlib's
Grace Hopper: public domain / CC0, shipped inside installed packages) and searches them with the real detector.
None of the photographs reachable offline has a hand the detector finds, so `open_hand` places a hand region (21
keypoints of an open hand, in MediaPipe's order) where a test needs one; it says so wherever it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.cbook
import numpy as np
import pandas as pd
from PIL import Image
from skimage import data

from molebench.scoring.detect.base import Region
from molebench.scoring.detect.found import shared_detector
from molebench.scoring.people import Faces, Hands
from molebench.store import RunStore
from molebench.store.run_store import REGION_COLUMNS, score_rows
from molebench.store.summary import summarise
from report_runs import make_run

LEGACY = "mediapipe-legacy"

PHOTO_SIZE = 256  # px: photographs are stored this size, so pages and detections stay fast


def photos() -> list[Image.Image]:
    """Three real photographs of one person each, RGB, longer side PHOTO_SIZE."""
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as hopper:
        images = [Image.fromarray(data.astronaut()), hopper.convert("RGB"), Image.fromarray(data.camera())]
    out = []
    for image in images:
        scale = PHOTO_SIZE / max(image.size)
        out.append(image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)),
                                               Image.Resampling.BICUBIC))
    return out


def open_hand(box: tuple[float, float, float, float], presence: float = 0.9, quality: float = 0.9) -> Region:
    """A hand region with the 21 keypoints of an open hand, fingers up, inside `box` (wrist at the bottom)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    relative = [(0.5, 1.0), (0.3, 0.85), (0.18, 0.7), (0.1, 0.57), (0.04, 0.45)]  # wrist, thumb
    for x, tip in ((0.34, 0.05), (0.5, 0.0), (0.66, 0.05), (0.8, 0.2)):  # index, middle, ring, little
        relative += [(x, 0.55 - (0.55 - tip) * t) for t in (0.0, 0.45, 0.75, 1.0)]
    points = np.array([[x0 + rx * w, y0 + ry * h, 0.0] for rx, ry in relative], np.float32)
    return Region("hand", box, presence, quality, points, 0.5)


def people_run(root: Path, found: Sequence[list[Region]], model: str = "model-a",
               images: Sequence[Image.Image] | None = None, hps: np.ndarray | None = None,
               detector: str | None = None) -> Path:
    """A complete run folder of len(found) prompts (one seed) whose image i holds the regions found[i]: regions in
    RUN/regions/, `faces` and `hands` scores from them, and `images` as the run's images when given."""
    n = len(found)
    hps = np.linspace(0.2, 0.3, n) if hps is None else hps
    make_run(root, hps, model=model)
    store = RunStore(root)
    items = store.read_items()
    for key, image in zip(items["key"], images or []):
        store.write_image(key, image)
    faces, hands = Faces(), Hands()
    if detector is not None:  # the regions came from this detector: the scorers' versions name it
        faces.detector = hands.detector = shared_detector(detector)
    detector = faces.detector.version
    rows = []
    for key, regions in zip(items["key"], found):
        counters: dict[str, int] = {}
        for region in regions:
            index = counters[region.part] = counters.get(region.part, -1) + 1
            rows.append({"key": key, "detector": detector, "index": index, **region.as_row()})
    store.write_regions("people-0", pd.DataFrame(rows, columns=REGION_COLUMNS))
    manifest = store.read_manifest().to_json()
    for scorer in (faces, hands):
        measured = [scorer.measure([r for r in regions if r.part == scorer.part], prompt)
                    for regions, prompt in zip(found, items["prompt"])]
        metrics = {m: [row[m] for row in measured] for m in scorer.metrics}
        store.write_score_shard(f"{scorer.registry_name}-0", score_rows(items, scorer.registry_name, scorer.version,
                                                                        metrics))
        manifest["scorers"][scorer.registry_name] = scorer.fingerprint()
    store.merge_scores()
    store.write_summary(summarise(store.read_scores(), manifest["scorers"]))
    store.write_manifest(manifest)
    return root


def photo_run(root: Path, model: str = "photos") -> Path:
    """The photographs as a run, searched by mediapipe's own legacy graphs (the reference detector: 6 face keypoints,
    no hand found in any of them); the camera man also gets an `open_hand` on his gloved hand."""
    images = photos()
    found = [list(regions) for regions in shared_detector(LEGACY).detect(images)]
    found[2].append(open_hand((150, 80, 172, 108)))
    return people_run(root, found, model=model, images=images, detector=LEGACY)
