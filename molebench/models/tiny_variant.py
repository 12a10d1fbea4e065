"""The tiny offline variant of a registered model: the same class, weights built from small configs.

A tiny variant subclasses the real model (same pipeline class, same `from_pretrained` loading, same call code) and
only swaps where the weights come from: a folder materialised once from seeded tiny components with
`save_pretrained`, in the layout of the hub repository. Tests and demos run every family this way, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from molebench.assets.materialize import materialized, offline_status
from molebench.assets.weights import WeightsStatus


class TinyVariant:
    """Mixin placed before the real model class: `class TinyX(TinyVariant, X)`."""

    registry_name: ClassVar[str]
    weights: object
    hub_id: ClassVar[str | None] = None
    tiny_version: ClassVar[str] = "v1"
    default_dtype_gpu: ClassVar[str] = "float32"
    default_scorers: ClassVar[tuple[str, ...]] = ("hps-tiny",)
    paper_settings: ClassVar[str] = "not in the paper: the family's pipeline and call code at tiny size"

    @staticmethod
    def build(folder: Path) -> None:
        """Write the tiny pipeline into `folder` with `save_pretrained` (hub layout)."""
        raise NotImplementedError

    def weights_path(self) -> Path:
        if self.weights:
            return Path(str(self.weights))
        return materialized(self.registry_name, self.tiny_version, self.build)

    def weights_status(self) -> WeightsStatus:
        return offline_status(self.registry_name, self.tiny_version)
