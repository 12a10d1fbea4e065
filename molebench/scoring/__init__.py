"""Scorers: one metric family = one small class (torchmetrics style), registered by name."""

from __future__ import annotations

from typing import Any

__all__ = ["Scorer", "load_image_rgb"]


def __getattr__(name: str) -> Any:
    """`Scorer` and `load_image_rgb` on first use: the base imports torch, which the torch-free parts of scoring
    (the anatomy rule, the crop rule that reports reuse) must not pay for."""
    if name in __all__:
        from molebench.scoring import base

        return getattr(base, name)
    raise AttributeError(f"module 'molebench.scoring' has no attribute {name!r}")
