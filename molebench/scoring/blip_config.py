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


BERT_BASE_MED_CONFIG: dict[str, Any] = {  # THUDM/ImageReward's med_config.json (BERT-base + cross-attention)
    "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
    "num_hidden_layers": 12, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": 30524, "encoder_width": 768,
    "add_cross_attention": True,
}
