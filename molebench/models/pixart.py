"""PixArt-α baselines (512 and 1024 checkpoints) and the tiny variant: a DiT denoiser over T5 text embeddings."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from molebench.errors import MolebenchError
from molebench.models.base import DiffusersModel, GenerationSettings
from molebench.models.options import flag, option, whole
from molebench.models.tiny_legacy_builders import build_tiny_pixart
from molebench.models.tiny_variant import TinyVariant
from molebench.registry import register_model


@dataclass(frozen=True)
class PixArtOptions:
    # the release defaults of PixArtAlphaPipeline: captions cleaned (needs bs4 and ftfy), sizes snapped to the
    # aspect-ratio bins the model was trained on, 120 T5 tokens
    clean_caption: bool = option(True, flag())
    resolution_binning: bool = option(True, flag())
    max_sequence_length: int = option(120, whole(1))


@dataclass(frozen=True)
class TinyPixArtOptions(PixArtOptions):
    # the tiny transformer's 32x32 latent grid matches none of PixArt's aspect-ratio bins
    resolution_binning: bool = option(False, flag())


@register_model("pixart-alpha")
class PixArtAlpha(DiffusersModel):
    family = "pixart-alpha"
    description = "PixArt-α XL-2 at 512x512 (MoLE is also applied to PixArt-α)"
    hub_id = "PixArt-alpha/PixArt-XL-2-512x512"
    pipeline_class = "PixArtAlphaPipeline"
    default_steps = 20
    default_guidance = 4.5
    default_size = (512, 512)
    default_scheduler = "DPMSolverMultistepScheduler"
    default_dtype_gpu = "float16"
    options_class = PixArtOptions
    paper_settings = ("the paper gives no PixArt-α sampling settings; molebench uses PixArt-α's release defaults: "
                      "DPM-Solver++ 20 steps, guidance 4.5, captions cleaned, 120 T5 tokens, fp16")

    def load(self, device, settings: GenerationSettings) -> None:
        if self.options.clean_caption:
            missing = [m for m in ("bs4", "ftfy") if importlib.util.find_spec(m) is None]
            if missing:  # diffusers would silently skip caption cleaning and the manifest would be wrong
                raise MolebenchError(f"{self.registry_name}: clean_caption needs {', '.join(missing)} "
                                     "(pip install beautifulsoup4 ftfy) or --option clean_caption=false")
        super().load(device, settings)

    def call_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        return {**super().call_kwargs(settings), "clean_caption": self.options.clean_caption,
                "use_resolution_binning": self.options.resolution_binning,
                "max_sequence_length": self.options.max_sequence_length}


@register_model("pixart-alpha-1024")
class PixArtAlpha1024(PixArtAlpha):
    description = "PixArt-α XL-2 at 1024x1024, multi-scale (size and aspect-ratio conditioned)"
    hub_id = "PixArt-alpha/PixArt-XL-2-1024-MS"
    default_size = (1024, 1024)


@register_model("tiny-pixart-alpha")
class TinyPixArtAlpha(TinyVariant, PixArtAlpha):
    description = "PixArt-α pipeline at tiny size (T5 encoder with an offline T5 tokenizer), built offline"
    default_steps = 10
    default_size = (64, 64)
    options_class = TinyPixArtOptions
    build = staticmethod(build_tiny_pixart)
