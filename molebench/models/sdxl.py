"""SDXL 1.0 baselines: the base model alone, and base + refiner as an ensemble of expert denoisers.

The ensemble follows diffusers' documented recipe: the base denoises the high-noise part of the schedule
(`denoising_end = high_noise_frac`, latents out), the refiner the rest (`denoising_start = high_noise_frac`);
the refiner shares the base's second text encoder and VAE, as SDXL 1.0's refiner was trained with them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from molebench.assets.dtypes import torch_dtype
from molebench.assets.fetch import pipeline_fetch_command
from molebench.assets.materialize import materialized
from molebench.assets.weights import resolve_snapshot, weight_hashes
from molebench.errors import MissingWeightsError
from molebench.models.base import DiffusersModel, GenerationSettings, set_scheduler
from molebench.models.options import number, option, path
from molebench.models.tiny_builders import build_tiny_sdxl, build_tiny_sdxl_refiner
from molebench.models.tiny_variant import TinyVariant
from molebench.paths import weights_env_var
from molebench.registry import register_model

if TYPE_CHECKING:
    import torch


@register_model("sdxl")
class StableDiffusionXL(DiffusersModel):
    family = "sdxl"
    description = "Stable Diffusion XL 1.0 base (MoLE is also applied to it)"
    hub_id = "stabilityai/stable-diffusion-xl-base-1.0"
    pipeline_class = "StableDiffusionXLPipeline"
    default_steps = 50
    default_guidance = 7.5
    default_size = (1024, 1024)
    default_scheduler = "DDIMScheduler"
    default_dtype_gpu = "bfloat16"
    memory_defaults = {"vae_fp32": True}
    paper_settings = ("MoLE's SDXL generation script: DDIM, 50 steps, scale 7.5, bf16 UNet with fp32 VAE "
                      "(--bf16 --no_half_vae), 1024x1024 (the script's default size); no invisible watermark")

    def load_kwargs(self) -> dict[str, Any]:
        return {"add_watermarker": False}


@dataclass(frozen=True)
class RefinerOptions:
    # the share of the schedule the base denoises before the refiner takes over (diffusers' recipe: 0.8)
    high_noise_frac: float = option(0.8, number(0, 1))
    # a local refiner pipeline; a path, not a setting: the weights' hashes identify the refiner
    refiner_weights: str | None = option(None, path(), recorded=False)


@register_model("sdxl-refiner")
class StableDiffusionXLRefiner(StableDiffusionXL):
    family = "sdxl-refiner"
    description = "SDXL 1.0 base + refiner as an ensemble of expert denoisers (split at high_noise_frac)"
    refiner_hub_id = "stabilityai/stable-diffusion-xl-refiner-1.0"
    refiner_pipeline_class = "StableDiffusionXLImg2ImgPipeline"
    options_class = RefinerOptions
    weights_prompts = False  # the refiner is called with the prompt text: prompt weighting is refused
    paper_settings = ("the paper does not run the refiner; molebench uses the SDXL protocol above for both experts, "
                      "split at 0.8 of the schedule (diffusers' ensemble-of-experts recipe)")

    # --- weights: two repositories -------------------------------------------------------------------------
    def refiner_path(self) -> Path:
        what = f"{self.registry_name}-refiner"
        try:
            return resolve_snapshot(what, self.refiner_hub_id, local_path=self.options.refiner_weights,
                                    required=("model_index.json",), components=True, fetch=self.refiner_fetch())
        except MissingWeightsError as exc:
            if self.options.refiner_weights:
                raise
            raise MissingWeightsError(what, exc.repo_id, exc.files, hint=f"set {weights_env_var(what)}=/path/to/copy "
                                      "or pass --option refiner_weights=/path/to/copy", fetch=exc.fetch) from None

    def refiner_fetch(self) -> str:
        return pipeline_fetch_command(self.refiner_hub_id, self.fetch_excludes)

    def weights_path(self) -> Path:
        try:
            base = super().weights_path()
        except MissingWeightsError as exc:
            try:
                self.refiner_path()
            except MissingWeightsError:
                raise MissingWeightsError(
                    self.registry_name, exc.repo_id, exc.files,
                    hint=f"the refiner repository '{self.refiner_hub_id}' is missing too "
                         f"({self.refiner_fetch()})", fetch=exc.fetch) from None
            raise
        self.refiner_path()
        return base

    def fetch_command(self) -> str:
        return f"{super().fetch_command()} && {self.refiner_fetch()}"

    def fingerprint(self) -> dict[str, Any]:
        fingerprint = super().fingerprint()
        refiner = self.refiner_path()
        fingerprint.update(
            refiner_hub_id=self.refiner_hub_id,
            refiner_path=str(refiner),
            weights_sha256={**{f"base/{k}": v for k, v in fingerprint["weights_sha256"].items()},
                            **{f"refiner/{k}": v for k, v in weight_hashes(refiner).items()}},
        )
        return fingerprint

    # --- running ---------------------------------------------------------------------------------------------
    def load(self, device: torch.device, settings: GenerationSettings) -> None:
        super().load(device, settings)
        refiner_cls = getattr(importlib.import_module("diffusers"), self.refiner_pipeline_class)
        refiner = refiner_cls.from_pretrained(
            str(self.refiner_path()), text_encoder_2=self.pipe.text_encoder_2, vae=self.pipe.vae,
            dtype=torch_dtype(self.memory.load_dtype(settings.dtype)), local_files_only=True, add_watermarker=False)
        set_scheduler(refiner, settings.scheduler)
        self.sampler.apply(refiner)
        self.refiner = self.place(refiner, device)
        self.memory.compute_in(self.refiner, settings.dtype)
        self.refiner.set_progress_bar_config(disable=True)

    def run_pipeline(
        self, prompts: list[str], generators: list[torch.Generator], settings: GenerationSettings
    ) -> list[Image.Image]:
        split = self.options.high_noise_frac
        negative = self.prompt_text.negative_kwargs(len(prompts))
        latents = self.pipe(prompt=prompts, generator=generators, output_type="latent", denoising_end=split,
                            **negative, **self.call_kwargs(settings)).images
        out = self.refiner(prompt=prompts, image=latents, generator=generators, denoising_start=split,
                           num_inference_steps=settings.steps, guidance_scale=settings.guidance, output_type="pil",
                           **negative)
        return list(out.images)


@register_model("tiny-sdxl")
class TinySDXL(TinyVariant, StableDiffusionXL):
    description = "SDXL base pipeline at tiny width (two text encoders, text_time conditioning), built offline"
    default_steps = 10
    default_size = (64, 64)
    build = staticmethod(build_tiny_sdxl)


@register_model("tiny-sdxl-refiner")
class TinySDXLRefiner(TinyVariant, StableDiffusionXLRefiner):
    description = "SDXL base + refiner ensemble at tiny width, built offline (the refiner shares tiny-sdxl's parts)"
    default_steps = 10
    default_size = (64, 64)

    def weights_path(self) -> Path:
        self.refiner_path()
        return Path(str(self.weights)) if self.weights else materialized("tiny-sdxl", TinySDXL.tiny_version,
                                                                          build_tiny_sdxl)

    def refiner_path(self) -> Path:
        if self.options.refiner_weights:
            return Path(self.options.refiner_weights)
        base = materialized("tiny-sdxl", TinySDXL.tiny_version, build_tiny_sdxl)
        return materialized("tiny-sdxl-refiner", self.tiny_version, lambda folder: build_tiny_sdxl_refiner(folder, base))

    def fetch_command(self) -> str:
        return "built offline on first use"
