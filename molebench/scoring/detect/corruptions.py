"""Image corruptions for the metamorphic tests of the detectors' quality scores: small pure functions, each taking an
RGB uint8 array and a box (x0, y0, x1, y1 in pixels) and returning a new array that differs from the input inside the
box only. `CORRUPTIONS` damage the part in the box (what a generator gets wrong: scrambled parts, bent geometry, an
extra finger, smeared detail); `BENIGN` change the whole image in ways that should not change any score (a
high-quality JPEG re-encode, a shift by one or two pixels), and so measure the scores' noise.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

Box = tuple[float, float, float, float]
Corruption = Callable[[np.ndarray, Box], np.ndarray]


def _pixels(image: np.ndarray, box: Box) -> tuple[int, int, int, int]:
    """The box rounded to whole pixels and clipped to the image."""
    height, width = image.shape[:2]
    x0, y0 = max(0, int(round(box[0]))), max(0, int(round(box[1])))
    x1, y1 = min(width, int(round(box[2]))), min(height, int(round(box[3])))
    return x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)


def patch_shuffle(image: np.ndarray, box: Box, tiles: int = 4, seed: int = 0) -> np.ndarray:
    """The box cut into tiles x tiles patches, put back in a fixed random order (a scrambled part)."""
    x0, y0, x1, y1 = _pixels(image, box)
    w, h = (x1 - x0) // tiles, (y1 - y0) // tiles
    out = image.copy()
    if w < 1 or h < 1:
        return out
    cells = [(x0 + i * w, y0 + j * h) for j in range(tiles) for i in range(tiles)]
    order = np.random.default_rng(seed).permutation(len(cells))
    if (order == np.arange(len(cells))).all():
        order = np.roll(order, 1)
    for (tx, ty), source in zip(cells, order):
        sx, sy = cells[source]
        out[ty : ty + h, tx : tx + w] = image[sy : sy + h, sx : sx + w]
    return out


def warp(image: np.ndarray, box: Box, amplitude: float = 0.08, waves: float = 1.5) -> np.ndarray:
    """A sinusoidal displacement inside the box (bent geometry), `amplitude` a fraction of the box size; the
    displacement fades to zero at the box border so no seam is cut."""
    x0, y0, x1, y1 = _pixels(image, box)
    h, w = y1 - y0, x1 - x0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    fade = np.sin(np.pi * (ys + 0.5) / h) * np.sin(np.pi * (xs + 0.5) / w)
    size = max(h, w)
    dx = amplitude * size * fade * np.sin(2 * np.pi * waves * ys / h)
    dy = amplitude * size * fade * np.sin(2 * np.pi * waves * xs / w)
    sx = np.clip(np.rint(xs + dx), 0, w - 1).astype(int)
    sy = np.clip(np.rint(ys + dy), 0, h - 1).astype(int)
    out = image.copy()
    out[y0:y1, x0:x1] = image[y0:y1, x0:x1][sy, sx]
    return out


def duplicate_strip(image: np.ndarray, box: Box, start: float = 0.35, width: float = 0.25) -> np.ndarray:
    """A vertical strip of the box (from `start`, `width` of the box wide) repeated right after itself, the rest of
    the box pushed right and cut at the box border: an extra finger in a hand, a doubled eye or nose in a face."""
    x0, y0, x1, y1 = _pixels(image, box)
    w = x1 - x0
    a = x0 + int(start * w)
    b = min(x1, a + max(1, int(width * w)))
    part = image[y0:y1, x0:x1]
    doubled = np.concatenate([image[y0:y1, x0:b], image[y0:y1, a:b], image[y0:y1, b:x1]], axis=1)
    out = image.copy()
    out[y0:y1, x0:x1] = doubled[:, : part.shape[1]]
    return out


def blur(image: np.ndarray, box: Box, fraction: float = 0.05) -> np.ndarray:
    """A Gaussian blur inside the box, radius `fraction` of the box size (smeared detail)."""
    x0, y0, x1, y1 = _pixels(image, box)
    radius = max(1.0, fraction * max(x1 - x0, y1 - y0))
    crop = Image.fromarray(image[y0:y1, x0:x1]).filter(ImageFilter.GaussianBlur(radius))
    out = image.copy()
    out[y0:y1, x0:x1] = np.asarray(crop)
    return out


def jpeg(image: np.ndarray, quality: int = 95) -> np.ndarray:
    """Re-encoded as JPEG at `quality` (benign: every score should stay within its noise)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def shift(image: np.ndarray, dx: int = 1, dy: int = 0) -> np.ndarray:
    """The whole image moved by (dx, dy) pixels, the uncovered border repeating the edge pixels (benign)."""
    height, width = image.shape[:2]
    ys = np.clip(np.arange(height) - dy, 0, height - 1)
    xs = np.clip(np.arange(width) - dx, 0, width - 1)
    return image[ys][:, xs]


CORRUPTIONS: dict[str, Corruption] = {
    "patch-shuffle": patch_shuffle,
    "warp": warp,
    "duplicate-strip": duplicate_strip,
    "blur": blur,
}
BENIGN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg-q95": jpeg,
    "shift-1px": lambda image: shift(image, 1, 0),
    "shift-2px": lambda image: shift(image, 2, 2),
}
