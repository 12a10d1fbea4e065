"""Human Preference Score (HPS v2 / v2.1): cosine similarity of open_clip ViT-H-14 image and text embeddings.

The score is the raw cosine (~0.2-0.35 on real images); benchmark tables show it ×100 (`display_scale`). Images are
preprocessed as `hpsv2` does (its "light augmentation" eval transform): to tensor, bicubic resize of the *longest*
side to 224, zero padding to a square, CLIP normalisation. Unlike `hpsv2`, images are scored in batches, the
checkpoint is read once per process, prompts shared within a batch are encoded once, RGBA is composited on white,
and a non-square image whose long side is already 224 is padded instead of crashing.

`hps-tiny` has the same architecture (an open_clip CLIP) at tiny width with seeded weights, saved in the HPS
checkpoint layout (`{"state_dict": ...}`) and loaded back with `torch.load(weights_only=True)` like the real files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from molebench.assets.dtypes import torch_dtype
from molebench.assets.fetch import fetch_command
from molebench.assets.materialize import materialized, offline_status
from molebench.assets.weights import WeightsStatus, lookup_description, probe_status, resolve_file
from molebench.atomic import atomic_path
from molebench.errors import InputError
from molebench.registry import register_scorer
from molebench.scoring.base import (Scorer, TinyVersion, checkpoint_fields, checkpoint_label, normalize_into,
                                    shared_model, to_unit_float)
from molebench.scoring.openai_clip import CLIP_MEAN, CLIP_STD

if TYPE_CHECKING:
    import torch

HPS_REPO = "xswu/HPSv2"

TINY_HPS_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


def load_hps_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of an HPS checkpoint (`state_dict` key, or a bare state dict), loaded without pickle code."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        if "weights_only" in str(exc) or "Weights only load failed" in str(exc):
            raise InputError(
                f"HPS checkpoint {path} holds pickled objects besides tensors, which molebench does not unpickle "
                f"(torch.load weights_only=True refuses them); extract its weights once, in a Python you trust: "
                f"python -c \"import torch; c = torch.load('{path}', map_location='cpu', weights_only=False); "
                f"torch.save({{'state_dict': c['state_dict']}}, 'hpc_weights.pt')\" and use hpc_weights.pt") from None
        raise InputError(f"cannot load HPS checkpoint {path}: {exc}") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"HPS checkpoint {path} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def hps_pixels(images: list[Image.Image], size: int) -> torch.Tensor:
    """HPS eval preprocessing of RGB images: longest side resized (bicubic, antialiased) to `size`, zero-padded to
    a centred square, CLIP-normalised — hpsv2's `ResizeMaxSize` transform wherever that one works.

    One image at a time (see `to_unit_float`); torch spreads the resize over the cores.
    """
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    out = torch.empty(len(images), 3, size, size)
    for index, image in enumerate(images):
        pixels = torch.from_numpy(to_unit_float(image))
        height, width = pixels.shape[1:]
        scale = size / float(max(height, width))
        if scale != 1.0:
            pixels = F.resize(pixels, [round(height * scale), round(width * scale)], InterpolationMode.BICUBIC)
        pad_h, pad_w = size - pixels.shape[1], size - pixels.shape[2]
        if pad_h or pad_w:
            pixels = F.pad(pixels, [pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], fill=0)
        normalize_into(pixels.numpy(), CLIP_MEAN, CLIP_STD, out[index].numpy())
    return out


class HPSScorer(Scorer):
    """Cosine of L2-normalised image and text embeddings; reports raw cosine, displayed ×100."""

    metrics: ClassVar[tuple[str, ...]] = ("hps",)
    display_scale: ClassVar[dict[str, float]] = {"hps": 100.0}
    higher_is_better: ClassVar[dict[str, bool | None]] = {"hps": True}
    default_batch_size = 16
    hps_version: ClassVar[str] = ""

    def checkpoint_path(self) -> Path:
        raise NotImplementedError

    def model_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def version(self) -> str:
        """The HPS version and the checkpoint's hash, e.g. `hps-v2.1/ckpt-<12 hex digits>`."""
        return checkpoint_label(self.hps_version, self.checkpoint_path())

    def _load(self) -> None:
        import open_clip

        path = self.checkpoint_path()
        dtype = torch_dtype(self.dtype)
        key = ("hps", self.hps_version, str(path.resolve()), str(self.device), self.dtype)
        self.model = shared_model(key, lambda: self._build(path, dtype))
        self.model_dtype = dtype
        size = self.model.visual.image_size
        self.image_size = size if isinstance(size, int) else size[0]
        self.tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=self.model.context_length)

    def _build(self, path: Path, dtype: torch.dtype) -> torch.nn.Module:
        import torch
        from open_clip.model import CLIP

        state = load_hps_checkpoint(path)
        with torch.device(self.device):  # initialise on the target device: ViT-H's random init is slow on CPU
            model = CLIP(**self.model_config())
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(f"HPS checkpoint {path} does not fit {self.registry_name}'s model: "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model.to(self.device, dtype=dtype).eval()

    def pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """The version's eval preprocessing (v2: longest side to 224 and padding)."""
        return hps_pixels(images, self.image_size)

    def _prepare(self, images, prompts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        unique = list(dict.fromkeys(prompts))  # seeds of one prompt share a batch: encode each text once
        rows = torch.tensor([unique.index(p) for p in prompts])
        return self.pixels(images), self.tokenizer(unique), rows

    def _score_prepared(self, prepared: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        pixels, tokens, rows = prepared
        pixels, tokens = pixels.to(self.device, self.model_dtype), tokens.to(self.device)
        image, text = self.model.encode_image(pixels), self.model.encode_text(tokens)[rows.to(self.device)]
        return {"hps": self.cosine(image, text).cpu().numpy().astype(np.float64)}

    def cosine(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Per-row cosine of image and text features, normalised in float32 (one rounding less than in half
        precision)."""
        import torch

        image_emb = torch.nn.functional.normalize(image.float(), dim=-1)
        text_emb = torch.nn.functional.normalize(text.float(), dim=-1)
        return (image_emb * text_emb).sum(-1)

    def fingerprint(self) -> dict[str, Any]:
        path = self.checkpoint_path()
        return {**super().fingerprint(), **checkpoint_fields(path),
                "hps_version": self.hps_version}


class RealHPS(HPSScorer):
    """An official HPS checkpoint on open_clip's ViT-H-14 (built with pretrained=None: no laion download)."""

    filename: ClassVar[str] = ""
    default_batch_size = 32

    def checkpoint_path(self) -> Path:
        return resolve_file(self.registry_name, HPS_REPO, self.filename, local_path=self.weights)

    def model_config(self) -> dict[str, Any]:
        import open_clip

        return open_clip.get_model_config("ViT-H-14")

    def weights_status(self) -> WeightsStatus:
        looked = lambda: lookup_description(self.registry_name, HPS_REPO, self.weights)  # noqa: E731
        return probe_status(self.checkpoint_path, looked, fetch_command(HPS_REPO, [self.filename]))


@register_scorer("hps-v2")
class HPSv20(RealHPS):
    description = "HPS v2.0 (xswu/HPSv2 HPS_v2_compressed.pt, open_clip ViT-H-14); hpsv2.score()'s default"
    hps_version = "hps-v2.0"
    filename = "HPS_v2_compressed.pt"


@register_scorer("hps-v2.1")
class HPSv21(RealHPS):
    description = "HPS v2.1 (xswu/HPSv2 HPS_v2.1_compressed.pt, open_clip ViT-H-14); the HPS benchmark's default"
    hps_version = "hps-v2.1"
    filename = "HPS_v2.1_compressed.pt"


def _build_tiny_hps(folder: Path) -> None:
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(20240602)
    model = CLIP(**TINY_HPS_CONFIG)
    with atomic_path(folder / "HPS_tiny.pt") as tmp:
        torch.save({"state_dict": model.state_dict()}, tmp)


@register_scorer("hps-tiny")
class TinyHPS(TinyVersion, HPSScorer):
    description = "HPS architecture (open_clip CLIP) at tiny width, seeded weights (demo and tests)"
    hps_version = "hps-tiny"

    tiny_version = "v2"  # v2: hpsv2's longest-side resize and padding

    def checkpoint_path(self) -> Path:
        if self.weights:
            return Path(self.weights)
        return materialized("hps-tiny", "v1", _build_tiny_hps) / "HPS_tiny.pt"

    def model_config(self) -> dict[str, Any]:
        return TINY_HPS_CONFIG

    def weights_status(self) -> WeightsStatus:
        return offline_status("hps-tiny", "v1")
