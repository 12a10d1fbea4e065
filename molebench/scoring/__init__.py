"""Scorers: one metric family = one small class (torchmetrics style), registered by name."""

from molebench.scoring.base import Scorer, load_image_rgb

__all__ = ["Scorer", "load_image_rgb"]
