"""The pre/post-processing around MediaPipe's BlazeFace / BlazePalm networks, as MediaPipe's graphs define it, in
torch (batched crops) and numpy (per-image suppression). Sources (github.com/google-ai-edge/mediapipe):
- SSD anchors: calculators/tflite/ssd_anchors_calculator.cc; per-model options in
  modules/palm_detection/palm_detection_cpu.pbtxt and modules/face_detection/face_detection*.pbtxt.
- Box/keypoint decoding, score clipping + sigmoid: calculators/tensor/tensors_to_detections_calculator.cc.
- Weighted NMS: calculators/util/non_max_suppression_calculator.cc (IoU > threshold joins a cluster; box and
  keypoints become the score-weighted mean of the cluster; the score stays the best one's).
- Detection -> rotated ROI: calculators/util/detections_to_rects_calculator.cc (rotation from two keypoints) and
  rect_transformation_calculator.cc (shift along the rotated axes, square on the long side, scale).
- Crops: calculators/tensor/image_to_tensor_calculator (rotated sub-rect, bilinear, zero border) -> here
  torch.nn.functional.affine_grid + grid_sample (align_corners=False: pixel centres, as OpenCV's warpAffine).
- Landmarks back to the image: calculators/util/landmark_projection_calculator.cc (done in pixels here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a tensor is made, so building a detector (and listing it) stays light
    import torch


@dataclass(frozen=True)
class SsdSpec:
    """One SSD detector's input size and anchor/decoding options (the graph's option values)."""

    size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]  # per distinct stride: layers sharing it x (aspect ratios + interpolated)
    keypoints: int
    min_score: float
    value_range: tuple[float, float]


def ssd_anchor_centres(spec: SsdSpec) -> np.ndarray:
    """(A, 2) anchor centres in [0, 1]. Every model here uses fixed_anchor_size (w = h = 1), so only centres matter;
    layers with the same stride are merged, cells are row-major, offset 0.5."""
    centres = []
    for stride, per_cell in zip(_distinct(spec.strides), spec.anchors_per_cell):
        cells = math.ceil(spec.size / stride)
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _distinct(values: tuple[int, ...]) -> list[int]:
    out: list[int] = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def decode(raw: torch.Tensor, logits: torch.Tensor, anchors: torch.Tensor, spec: SsdSpec,
           min_score: float | None = None) -> list[np.ndarray]:
    """Per window, the detections above the score threshold as rows [x0, y0, x1, y1, kx, ky..., score] in [0, 1]
    window coordinates (reverse_output_order: x before y; scales = input size; score clipped to +-100)."""
    import torch

    scores = torch.sigmoid(logits[..., 0].clamp(-100.0, 100.0))
    centre = raw[..., 0:2] / spec.size + anchors
    half = raw[..., 2:4] / spec.size / 2
    points = raw[..., 4 : 4 + 2 * spec.keypoints].reshape(*raw.shape[:2], spec.keypoints, 2) / spec.size
    points = (points + anchors[:, None, :]).flatten(2)
    rows = torch.cat([centre - half, centre + half, points, scores[..., None]], dim=-1)
    keep = scores >= (spec.min_score if min_score is None else min_score)
    return [rows[i][keep[i]].cpu().numpy() for i in range(rows.shape[0])]


def weighted_nms(rows: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """MediaPipe's WEIGHTED non-max suppression over rows [x0, y0, x1, y1, keypoints..., score]."""
    order = np.argsort(-rows[:, -1], kind="stable")
    remaining = rows[order]
    kept = []
    while len(remaining):
        overlap = box_iou(remaining[:1, :4], remaining[:, :4])[0]
        cluster = overlap > threshold
        cluster[0] = True
        weights = remaining[cluster, -1:]
        merged = (remaining[cluster, :-1] * weights).sum(0) / weights.sum()
        kept.append(np.append(merged, remaining[0, -1]))
        remaining = remaining[~cluster]
    return np.array(kept, np.float32).reshape(-1, rows.shape[1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x0, y0, x1, y1 boxes."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda boxes: (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def detection_roi(row: np.ndarray, start: int, end: int, target_degrees: float, scale: float,
                  shift_y: float = 0.0) -> np.ndarray:
    """A detection (pixels) -> the rotated square ROI [cx, cy, side, rotation] its landmark model is run on."""
    x0, y0, x1, y1 = row[:4]
    (sx, sy), (ex, ey) = row[4 + 2 * start : 6 + 2 * start], row[4 + 2 * end : 6 + 2 * end]
    rotation = math.radians(target_degrees) - math.atan2(-(ey - sy), ex - sx)
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    width, height = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2 - height * shift_y * math.sin(rotation)
    cy = (y0 + y1) / 2 + height * shift_y * math.cos(rotation)
    return np.array([cx, cy, max(width, height) * scale, rotation], np.float32)


def crop(image: torch.Tensor, rois: torch.Tensor, size: int, replicate: bool = False) -> torch.Tensor:
    """Bilinear crops (N, C, size, size) of one (C, H, W) image at rotated squares [cx, cy, side, rotation] in
    pixels. Outside the image is black (BORDER_ZERO, what the detection graphs ask for) or, with `replicate`, the
    nearest edge pixel (BORDER_REPLICATE, ImageToTensorCalculator's default, which the landmark graphs use).

    MediaPipe maps the ROI's corners onto the crop's corner pixel *indices* (cv::getPerspectiveTransform, then
    warpPerspective), so crop pixel i samples the image at corner + i * step in index coordinates, half a step
    before the pixel-centre rule of grid_sample; the centre is moved by that much so that the crops are MediaPipe's.
    """
    import torch
    import torch.nn.functional as F

    height, width = image.shape[-2:]
    cx, cy, side, rotation = rois.unbind(-1)
    cos, sin = torch.cos(rotation), torch.sin(rotation)
    half_step = side / size / 2
    cx = cx + 0.5 - half_step * (cos - sin)
    cy = cy + 0.5 - half_step * (sin + cos)
    theta = torch.stack([torch.stack([cos * side / width, -sin * side / width, 2 * cx / width - 1], -1),
                         torch.stack([sin * side / height, cos * side / height, 2 * cy / height - 1], -1)], 1)
    grid = F.affine_grid(theta.to(image.dtype), [len(rois), image.shape[0], size, size], align_corners=False)
    crops = F.grid_sample(image.expand(len(rois), -1, -1, -1), grid, mode="bilinear",
                          padding_mode="border" if replicate else "zeros", align_corners=False)
    return crops.mul_(255.0).round_().div_(255.0)  # MediaPipe warps the 8-bit image into an 8-bit crop


def project(points: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Landmarks (K, 3) in [0, 1] crop coordinates (z in crop widths) -> image pixels (z scaled like x)."""
    cx, cy, side, rotation = roi
    u, v = points[:, 0] - 0.5, points[:, 1] - 0.5
    cos, sin = math.cos(rotation), math.sin(rotation)
    x = cx + (cos * u - sin * v) * side
    y = cy + (sin * u + cos * v) * side
    return np.stack([x, y, points[:, 2] * side], axis=1).astype(np.float32)


def windows(width: int, height: int, tiles: tuple[int, ...], overlap: float) -> np.ndarray:
    """Axis-aligned square search windows [cx, cy, side, 0] in pixels: the whole image letterboxed (centred
    square on the long side), then for each n in `tiles` squares of side long/n * (1 + overlap) (at most the
    short side) laid evenly over the image, so that parts n times smaller reach the detector at full-image size."""
    long_side = max(width, height)
    out = [[width / 2, height / 2, long_side, 0.0]]
    for n in tiles:
        side = min(long_side / n * (1 + overlap), min(width, height))
        xs = _positions(width, side, overlap)
        ys = _positions(height, side, overlap)
        out.extend([x, y, side, 0.0] for y in ys for x in xs)
    return np.array(out, np.float32)


def _positions(length: float, side: float, overlap: float) -> np.ndarray:
    """Centres of windows of `side` covering `length`, consecutive ones overlapping by about `overlap`."""
    if length <= side + 1:
        return np.array([length / 2])
    count = math.ceil((length - side) / (side / (1 + overlap))) + 1
    return np.linspace(side / 2, length - side / 2, count)


def hand_landmarks_roi(points: np.ndarray, scale: float = 2.0, shift_y: float = -0.1) -> np.ndarray:
    """The ROI MediaPipe tracks a hand with from its 21 landmarks (pixels): rotation from the wrist to the mean of
    the middle-finger PIP and the index/ring PIPs' midpoint, at 90 degrees; the landmarks' box in that rotated frame,
    shifted 0.1 up, squared and doubled (modules/hand_landmark/calculators/hand_landmarks_to_rect_calculator.cc,
    hand_landmark_landmarks_to_roi.pbtxt)."""
    wrist = points[0, :2]
    tip = ((points[6, :2] + points[14, :2]) / 2 + points[10, :2]) / 2
    rotation = math.pi / 2 - math.atan2(-(tip[1] - wrist[1]), tip[0] - wrist[0])
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    centre = (points[:, :2].min(0) + points[:, :2].max(0)) / 2
    cos, sin = math.cos(rotation), math.sin(rotation)
    offsets = points[:, :2] - centre
    rotated = np.stack([offsets[:, 0] * cos + offsets[:, 1] * sin, -offsets[:, 0] * sin + offsets[:, 1] * cos], 1)
    low, high = rotated.min(0), rotated.max(0)
    middle = (low + high) / 2
    width, height = high - low
    cx = centre[0] + middle[0] * cos - middle[1] * sin - height * shift_y * sin
    cy = centre[1] + middle[0] * sin + middle[1] * cos + height * shift_y * cos
    return np.array([cx, cy, max(width, height) * scale, rotation], np.float32)
