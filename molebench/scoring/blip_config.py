"""The ImageReward network's configuration (text and vision widths): plain data, kept apart from the torch modules
in molebench.scoring.blip so that the scorer's module, and so its weights lookup, imports no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TextConfig:
    """The fields of `med_config.json` the forward pass needs (`encoder_width` is set to the ViT width)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float
    hidden_act: str
    pad_token_id: int
    encoder_width: int

    @classmethod
    def from_med_config(cls, med: dict[str, Any], encoder_width: int) -> "TextConfig":
        fields = {name: med[name] for name in cls.__dataclass_fields__ if name not in ("encoder_width", "pad_token_id")}
        return cls(**fields, pad_token_id=med.get("pad_token_id", 0), encoder_width=encoder_width)


@dataclass(frozen=True)
class VisionConfig:
    """BLIP's ViT: ImageReward uses ViT-L/16 at 224 px (width 1024, depth 24, 16 heads)."""

    image_size: int = 224
    patch_size: int = 16
    width: int = 1024
    depth: int = 24
    heads: int = 16
