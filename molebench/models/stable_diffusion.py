"""Stable Diffusion baselines loaded from the Hugging Face cache or a local folder."""

from __future__ import annotations

from molebench.models.base import DiffusersModel
from molebench.registry import register_model


@register_model("sd15")
class StableDiffusion15(DiffusersModel):
    family = "sd15"
    description = "Stable Diffusion v1.5 (the MoLE paper's main baseline)"
    hub_id = "runwayml/stable-diffusion-v1-5"
    pipeline_class = "StableDiffusionPipeline"
    default_steps = 50
    default_guidance = 7.5
    default_size = (512, 512)
    default_scheduler = "DDIMScheduler"
    default_dtype_gpu = "float16"
    paper_settings = "DDIM, 50 steps, guidance 7.5, 512x512, fp16 (MoLE generation scripts)"

    def load_kwargs(self) -> dict:
        return {"safety_checker": None, "requires_safety_checker": False}
