"""PixArt-α baselines (512 and 1024 checkpoints) and the tiny variant: a DiT denoiser over T5 text embeddings."""

from __future__ import annotations

import importlib.util
from typing import Any

from molebench.errors import MolebenchError
from molebench.models.base import DiffusersModel, GenerationSettings
from molebench.models.tiny_legacy_builders import build_tiny_pixart
from molebench.models.tiny_variant import TinyVariant
from molebench.registry import register_model


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
    option_defaults = {"clean_caption": True, "resolution_binning": True, "max_sequence_length": 120}
    paper_settings = ("the paper gives no PixArt-α sampling settings; molebench uses PixArt-α's release defaults: "
                      "DPM-Solver++ 20 steps, guidance 4.5, captions cleaned, 120 T5 tokens, fp16")

    def load(self, device, settings: GenerationSettings) -> None:
        if self.options["clean_caption"]:
            missing = [m for m in ("bs4", "ftfy") if importlib.util.find_spec(m) is None]
            if missing:  # diffusers would silently skip caption cleaning and the manifest would be wrong
                raise MolebenchError(f"{self.registry_name}: clean_caption needs {', '.join(missing)} "
                                     "(pip install beautifulsoup4 ftfy) or --option clean_caption=false")
        super().load(device, settings)

    def call_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        return {**super().call_kwargs(settings), "clean_caption": bool(self.options["clean_caption"]),
                "use_resolution_binning": bool(self.options["resolution_binning"]),
                "max_sequence_length": int(self.options["max_sequence_length"])}


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
    # the tiny transformer's 32x32 latent grid matches none of PixArt's aspect-ratio bins
    option_defaults = {**PixArtAlpha.option_defaults, "resolution_binning": False}
    build = staticmethod(build_tiny_pixart)
