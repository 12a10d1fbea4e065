"""`mediapipe-torch`: MediaPipe's own face and hand networks (the .tflite files inside the mediapipe wheel, Apache-2.0)
run as batched torch modules (molebench's TFLite interpreter), with each network's own confidence kept:

- hand: presence = palm detector score (BlazePalm, palm_detection_full), quality = log-odds of the hand landmark
  model's hand flag (hand_landmark_full: the input of its final sigmoid), handedness = P(right hand) for an
  unmirrored photograph (the model's output; MediaPipe labels it "Left" because it assumes selfie images), 21
  keypoints in MediaPipe's order.
- face: presence = face detector score (BlazeFace full range by default; short range on request), quality = the
  face landmark model's face flag as log-odds (face_landmark's raw output, which MediaPipe's graph passes through a
  sigmoid), the mean over the crop and its mirror image, 468 face-mesh keypoints (of the crop itself). Log-odds
  because the flag's probability reads ~1 on every clear face and then reacts to nothing (docs/scorers.md).

The pipeline follows MediaPipe's graphs (constants and sources in blaze_ops and below): palm/face detection on
192x192 / 128x128 letterboxed inputs, weighted NMS (IoU 0.3), rotated ROI (palm: wrist -> middle-finger MCP at 90
degrees, x2.6, shifted 0.5 up (modules/hand_landmark/palm_detection_detection_to_roi.pbtxt); face: eye -> eye at 0
degrees, x1.5 (modules/face_landmark/face_detection_front_detection_to_roi.pbtxt)), 224 / 192 landmark crops,
projection back. Unlike MediaPipe, the detectors also run on overlapping tiles (`tiles`) so that faces and hands
that are small in a large image are found, and all crops of a batch of images go through one forward pass.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from molebench.registry import register_detector
from molebench.scoring.detect.base import Detector, Region
from molebench.scoring.detect.blaze_ops import (SsdSpec, box_iou, crop, decode, detection_roi, hand_landmarks_roi,
                                                project, ssd_anchor_centres, weighted_nms, windows)
from molebench.scoring.detect.mediapipe_legacy import mediapipe_module_file

# Anchor/decoding options of modules/palm_detection/palm_detection_cpu.pbtxt and modules/face_detection/
# face_detection_{short,full}_range.pbtxt: strides 8,16,16,16 with an interpolated anchor (2 and 3x2 per cell),
# or one stride-4 layer without (full range); min_score_thresh 0.5 (palm, short range) and 0.6 (full range; mediapipe's
# FaceDetection solution, i.e. mediapipe-legacy, lowers it to its min_detection_confidence 0.5).
PALM = SsdSpec(192, (8, 16, 16, 16), (2, 6), keypoints=7, min_score=0.5, value_range=(0.0, 1.0))
FACE_SPECS = {"full": SsdSpec(192, (4,), (1,), keypoints=6, min_score=0.6, value_range=(-1.0, 1.0)),
              "short": SsdSpec(128, (8, 16, 16, 16), (2, 6), keypoints=6, min_score=0.5, value_range=(-1.0, 1.0))}
FACE_FILES = {"full": "face_detection/face_detection_full_range_sparse.tflite",
              "short": "face_detection/face_detection_short_range.tflite"}
HAND_CROP, FACE_CROP = 224, 192  # landmark model inputs (hand_landmark_cpu.pbtxt, face_landmark_cpu.pbtxt)
HAND_Z_NORMALISATION = 0.4  # TensorsToLandmarksCalculator normalize_z in hand_landmark_cpu.pbtxt
NMS_IOU = 0.3
CPU_CROPS_PER_PASS = 8
DUPLICATE_IOU = 0.5  # two landmark sets from different detections of one part (MediaPipe's hand ROI association)
DEFAULTS = {"tiles": (2,), "overlap": 0.25, "face_model": "full", "min_presence": None, "min_quality": 0.5,
            "max_per_image": 16, "refine": True}


@register_detector("mediapipe-torch")
class MediaPipeTorch(Detector):
    description = ("MediaPipe's palm + hand landmark and face detection + face mesh networks in torch: batched, any "
                   "device, multi-scale tiles; presence and landmark quality kept apart")
    implementation = "v2"  # v2: quality as log-odds; a face's, the mean over its crop and the crop's mirror image
    default_batch_size = 16

    def __init__(self, device: str = "cpu", batch_size: int | None = None, *, tiles: tuple[int, ...] = (2,),
                 overlap: float = 0.25, face_model: str = "full", min_presence: float | None = None,
                 min_quality: float = 0.5, max_per_image: int = 16, refine: bool = True) -> None:
        """tiles: besides the whole image, the detectors also search an n x n grid of overlapping squares for
        each n (e.g. (2,) finds parts about half the size the whole-image pass can; () is MediaPipe's single pass).
        overlap: fraction by which neighbouring tiles overlap. face_model: "full" (BlazeFace full range, what
        mediapipe-legacy uses) or "short" (short range, large faces). min_presence: detector score threshold for
        palms and faces (None: each graph's own, 0.5 palm / 0.6 full-range face / 0.5 short-range face).
        min_quality: a part is reported when its landmark network's flag (a probability: the sigmoid of `quality`;
        for a face, of the flag on the crop itself, not its mirror image) is at least this (0.5, MediaPipe's gate).
        max_per_image: at most this many faces and this many hands per image, best first. refine: look at each
        hand a second time through the ROI of its own landmarks and report that look (what MediaPipe's tracking
        does on the next video frame; on the validation photographs it found 11 of 13 clear hands, 10 without)."""
        # On the CPU these small networks are memory bound: one image at a time ran 1.3-1.5x faster than 16
        # (CPU time, 1 thread, 512 px photographs); a GPU gets whole batches.
        super().__init__(device, batch_size or (1 if device == "cpu" else self.default_batch_size))
        if face_model not in FACE_SPECS:
            raise ValueError(f"face_model must be one of {sorted(FACE_SPECS)}, not {face_model!r}")
        if any(int(n) < 2 for n in tiles) or not 0.0 <= overlap < 1.0:
            raise ValueError(f"tiles must be integers >= 2 and overlap in [0, 1); got {tiles!r}, {overlap!r}")
        self.settings = {"tiles": tuple(int(n) for n in tiles), "overlap": float(overlap), "face_model": face_model,
                         "min_presence": None if min_presence is None else float(min_presence),
                         "min_quality": float(min_quality), "max_per_image": int(max_per_image), "refine": bool(refine)}

    def weight_files(self) -> dict[str, Path]:
        return {"palm_detection": mediapipe_module_file("palm_detection/palm_detection_full.tflite"),
                "hand_landmark": mediapipe_module_file("hand_landmark/hand_landmark_full.tflite"),
                "face_detection": mediapipe_module_file(FACE_FILES[self.settings["face_model"]]),
                "face_landmark": mediapipe_module_file("face_landmark/face_landmark.tflite")}

    @property
    def version(self) -> str:
        """The base version, plus a hash of the settings when they are not the defaults (they change results)."""
        base = super().version
        if self.settings == DEFAULTS:
            return base
        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:8]
        return f"{base}/s-{digest}"

    def _load(self) -> None:
        import torch

        from molebench.scoring.detect.tflite_torch import TFLiteModel

        self._torch = torch
        files = self.weight_files()
        # log_odds: the hand flag and handedness come out before the model's final sigmoid (quality is log-odds)
        self.networks = {name: TFLiteModel(path, log_odds=name == "hand_landmark").eval().to(self.device)
                         for name, path in files.items()}
        face_spec = FACE_SPECS[self.settings["face_model"]]
        self.anchors = {"palm": torch.from_numpy(ssd_anchor_centres(PALM)).to(self.device),
                        "face": torch.from_numpy(ssd_anchor_centres(face_spec)).to(self.device)}

    def _detect_batch(self, images: list[Image.Image]) -> list[list[Region]]:
        torch = self._torch
        with torch.inference_mode():
            pixels = [torch.from_numpy(np.asarray(image.convert("RGB"), np.uint8).copy()).to(self.device)
                      .permute(2, 0, 1).float().div_(255.0) for image in images]
            hands = self._hands(pixels)
            faces = self._faces(pixels)
        return [face + hand for face, hand in zip(faces, hands)]

    def _search(self, pixels: list, network: str, spec: SsdSpec, anchors) -> list[np.ndarray]:
        """Run one SSD detector over every image's windows in one batch; per image, the NMS-merged detections
        in image pixels, best first."""
        torch = self._torch
        boxes = [windows(p.shape[2], p.shape[1], self.settings["tiles"], self.settings["overlap"]) for p in pixels]
        crops = torch.cat([crop(p, torch.from_numpy(b).to(self.device), spec.size) for p, b in zip(pixels, boxes)])
        low, high = spec.value_range
        raw, logits = self._forward(network, crops * (high - low) + low)
        found = decode(raw, logits, anchors, spec, self.settings["min_presence"])
        merged, start = [], 0
        for window_boxes in boxes:
            rows = [_to_image(found[start + i], window) for i, window in enumerate(window_boxes)]
            start += len(window_boxes)
            merged.append(weighted_nms(np.concatenate(rows), NMS_IOU)[: self.settings["max_per_image"] * 2])
        return merged

    def _forward(self, network: str, batch) -> list:
        """One network over a batch of crops, in chunks: `crops_per_pass` on the CPU, where small passes stay in
        cache (8 crops per pass ran 1.6-2x faster than 128, 1 thread), `batch_size` x 8 on a GPU."""
        torch = self._torch
        chunk = getattr(self, "crops_per_pass", None) or (CPU_CROPS_PER_PASS if self.device == "cpu"
                                                          else self.batch_size * 8)
        parts = [self.networks[network](batch[i : i + chunk]) for i in range(0, len(batch), chunk)]
        if not parts:
            return [batch.new_zeros(0)] * 4
        return [torch.cat(outputs) for outputs in zip(*parts)]

    def _landmarks(self, pixels: list, rois: list[np.ndarray], network: str, size: int,
                   mirror: bool = False) -> list[list[list]]:
        """Crop every ROI from its image and run the landmark network on all of them at once; per image, per ROI,
        the network's outputs (numpy). `mirror`: the mirror images of the crops go through the same pass, and their
        outputs follow the crop's own (per ROI: outputs, then the mirror image's outputs)."""
        torch = self._torch
        crops = [crop(p, torch.from_numpy(r).to(self.device), size, replicate=True)
                 for p, r in zip(pixels, rois) if len(r)]
        if not crops:
            return [[] for _ in rois]
        batch = torch.cat(crops)
        count = len(batch)
        if mirror:
            batch = torch.cat([batch, batch.flip(-1)])
        outputs = [o.float().cpu().numpy().reshape(len(o), -1) for o in self._forward(network, batch)]
        found, start = [], 0
        for image_rois in rois:
            found.append([[o[start + j] for o in outputs] + ([o[count + start + j] for o in outputs] if mirror else [])
                          for j in range(len(image_rois))])
            start += len(image_rois)
        return found

    def _hands(self, pixels: list) -> list[list[Region]]:
        palms = self._search(pixels, "palm_detection", PALM, self.anchors["palm"])
        rois = [np.array([detection_roi(row, 0, 2, 90.0, 2.6, -0.5) for row in rows], np.float32).reshape(-1, 4)
                for rows in palms]
        hands = [[self._hand(out, roi) for out, roi in zip(outs, image_rois)]
                 for outs, image_rois in zip(self._landmarks(pixels, rois, "hand_landmark", HAND_CROP), rois)]
        if self.settings["refine"]:  # MediaPipe's tracking step: the landmarks' own ROI, looked at again
            again = [np.array([hand_landmarks_roi(points) for points, *_ in image], np.float32).reshape(-1, 4)
                     for image in hands]
            second = self._landmarks(pixels, again, "hand_landmark", HAND_CROP)
            hands = [[self._hand(out, roi) for out, roi in zip(outs, image_rois)]
                     for outs, image_rois in zip(second, again)]
        return [self._keep([_region("hand", points, row[-1], flag, handedness)
                            for (points, flag, handedness), row in zip(image, rows) if flag >= self._gate])
                for image, rows in zip(hands, palms)]

    @property
    def _gate(self) -> float:
        """`min_quality` (a probability) as log-odds, the scale of `quality`."""
        q = self.settings["min_quality"]
        return -np.inf if q <= 0 else np.inf if q >= 1 else float(np.log(q / (1 - q)))

    @staticmethod
    def _hand(outputs: list, roi: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Hand landmark outputs (21 x/y/z in crop pixels, hand flag and handedness as log-odds, world) -> image
        keypoints, hand flag log-odds, P(right hand)."""
        points = outputs[0].reshape(21, 3) / HAND_CROP
        points[:, 2] /= HAND_Z_NORMALISATION
        return project(points, roi), float(outputs[1][0]), float(1.0 / (1.0 + np.exp(-float(outputs[2][0]))))

    def _faces(self, pixels: list) -> list[list[Region]]:
        spec = FACE_SPECS[self.settings["face_model"]]
        detections = self._search(pixels, "face_detection", spec, self.anchors["face"])
        rois = [np.array([detection_roi(row, 0, 1, 0.0, 1.5) for row in rows], np.float32).reshape(-1, 4)
                for rows in detections]
        found = []  # quality: the mean of the face flag's log-odds on the crop and on its mirror image
        looks = self._landmarks(pixels, rois, "face_landmark", FACE_CROP, mirror=True)
        for outs, image_rois, rows in zip(looks, rois, detections):
            found.append(self._keep([_region("face", project(points.reshape(468, 3) / FACE_CROP, roi), row[-1],
                                             (float(flag[0]) + float(mirrored[0])) / 2)
                                     for (points, flag, _, mirrored), roi, row in zip(outs, image_rois, rows)
                                     if float(flag[0]) >= self._gate]))
        return found

    def _keep(self, regions: list[Region]) -> list[Region]:
        """One region per part (the same hand or face found from two detections keeps its best landmarks), at
        most `max_per_image`, by presence; the callers have applied the `min_quality` gate."""
        regions = sorted(regions, key=lambda r: -r.quality)
        kept: list[Region] = []
        for region in regions:
            if not kept or box_iou(np.array([region.box]), np.array([r.box for r in kept])).max() <= DUPLICATE_IOU:
                kept.append(region)
        return sorted(kept, key=lambda r: -r.presence)[: self.settings["max_per_image"]]


def _to_image(rows: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Detections in [0, 1] window coordinates -> image pixels (boxes and keypoints; the score column stays)."""
    cx, cy, side, _ = window
    out = rows.copy()
    out[:, :-1:2] = cx - side / 2 + rows[:, :-1:2] * side
    out[:, 1:-1:2] = cy - side / 2 + rows[:, 1:-1:2] * side
    return out


def _region(part: str, points: np.ndarray, presence: float, quality: float, handedness: float = np.nan) -> Region:
    box = (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max()))
    return Region(part, box, float(presence), float(quality), points, float(handedness))
