"""Human Preference Score (HPS v2 family): cosine similarity of open_clip image and text embeddings.

`hps-tiny` has the HPS architecture (an open_clip CLIP model) at tiny width with seeded weights, saved in the HPS
checkpoint layout (`{"state_dict": ...}`) and loaded back with `torch.load(weights_only=True)` like the real files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from molebench.atomic import atomic_path
from molebench.errors import InputError
from molebench.models.materialize import materialized
from molebench.models.weights import file_sha256
from molebench.registry import register_scorer
from molebench.scoring.base import Scorer

TINY_HPS_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


def load_hps_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of an HPS checkpoint (`state_dict` key, or a bare state dict), loaded without pickle code."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        raise InputError(f"cannot load HPS checkpoint {path}: {exc}") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"HPS checkpoint {path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


class HPSScorer(Scorer):
    """Cosine of L2-normalised image and text embeddings; reports raw cosine, displayed ×100."""

    metrics: ClassVar[tuple[str, ...]] = ("hps",)
    display_scale: ClassVar[dict[str, float]] = {"hps": 100.0}
    default_batch_size = 16

    def checkpoint_path(self) -> Path:
        raise NotImplementedError

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def _load(self) -> None:
        import open_clip
        from open_clip.transform import image_transform

        model = self.build_model()
        state = load_hps_checkpoint(self.checkpoint_path())
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(
                f"HPS checkpoint {self.checkpoint_path()} does not fit the model: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self.dtype]
        self.model = model.to(self.device, dtype=dtype).eval()
        self.model_dtype = dtype
        size = model.visual.image_size
        self.preprocess = image_transform(size if isinstance(size, int) else size[0], is_train=False)
        self.tokenizer = open_clip.get_tokenizer("ViT-B-32")

    def _score_batch(self, images, prompts) -> dict[str, Any]:
        pixels = torch.stack([self.preprocess(im) for im in images]).to(self.device, self.model_dtype)
        tokens = self.tokenizer(prompts).to(self.device)
        image_emb = torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1)
        text_emb = torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)
        return {"hps": (image_emb * text_emb).sum(-1).cpu().numpy().astype(np.float64)}

    def fingerprint(self) -> dict[str, Any]:
        path = self.checkpoint_path()
        return {"name": self.registry_name, "version": self.version, "checkpoint": str(path),
                "checkpoint_sha256": file_sha256(path)}


def _build_tiny_hps(folder: Path) -> None:
    from open_clip.model import CLIP

    torch.manual_seed(20240602)
    model = CLIP(**TINY_HPS_CONFIG)
    with atomic_path(folder / "HPS_tiny.pt") as tmp:
        torch.save({"state_dict": model.state_dict()}, tmp)


@register_scorer("hps-tiny")
class TinyHPS(HPSScorer):
    description = "HPS architecture (open_clip CLIP) at tiny width, seeded weights (demo and tests)"

    def checkpoint_path(self) -> Path:
        if self.weights:
            return Path(self.weights)
        return materialized("hps-tiny", "v1", _build_tiny_hps) / "HPS_tiny.pt"

    def build_model(self) -> torch.nn.Module:
        from open_clip.model import CLIP

        return CLIP(**TINY_HPS_CONFIG)
