"""Tiny offline pipelines for the Stable Diffusion 2.1 and SDXL families, in their hub repositories' layouts.

Built the way diffusers' own tests build dummy components (tiny widths, two blocks, seeded weights) but keeping what
makes each family different: SD2.1's v-prediction, linear-projection attention with fp32 upcast and "!" padding;
SDXL's two CLIP text encoders, pooled-text + size conditioning ("text_time"), Euler scheduler and fp16-unsafe VAE;
the refiner's text_encoder_2-only conditioning with an aesthetic score, sharing the base's text_encoder_2 and VAE.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from molebench.models.tiny_sd import (TINY_SEED, save_tiny_pipeline, tiny_clip_text_encoder, tiny_clip_tokenizer,
                                      tiny_unet, tiny_vae)

if TYPE_CHECKING:
    import torch

SDXL_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                      timestep_spacing="leading", interpolation_type="linear", use_karras_sigmas=False)
TIME_EMBED_DIM = 8


def build_tiny_sd21(folder: Path) -> None:
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    torch.manual_seed(TINY_SEED + 21)
    unet = tiny_unet(attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True)
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=tiny_vae(),
        text_encoder=tiny_clip_text_encoder(hidden_act="gelu"),
        tokenizer=tiny_clip_tokenizer(folder, pad_token="!"),
        scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                                set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    save_tiny_pipeline(pipe, folder)


def _sdxl_unet(cross_attention_dim: int, n_time_ids: int, pooled_dim: int):
    return tiny_unet(
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=n_time_ids * TIME_EMBED_DIM + pooled_dim,
    )


def build_tiny_sdxl(folder: Path) -> None:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    torch.manual_seed(TINY_SEED + 1024)
    text_encoder = tiny_clip_text_encoder(hidden_act="quick_gelu")
    text_encoder_2 = tiny_clip_text_encoder(projection_dim=32, hidden_act="gelu")
    pipe = StableDiffusionXLPipeline(
        vae=tiny_vae(scaling_factor=0.13025, force_upcast=True),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tiny_clip_tokenizer(folder),
        tokenizer_2=tiny_clip_tokenizer(folder, pad_token="!"),
        unet=_sdxl_unet(cross_attention_dim=64, n_time_ids=6, pooled_dim=32),
        scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    save_tiny_pipeline(pipe, folder)


def build_tiny_sdxl_refiner(folder: Path, base: Path) -> None:
    """The refiner shares the base's text_encoder_2 and VAE (as SDXL 1.0's refiner does), read from `base`."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(TINY_SEED + 2048)
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=AutoencoderKL.from_pretrained(str(base / "vae")),
        text_encoder=None,
        text_encoder_2=CLIPTextModelWithProjection.from_pretrained(str(base / "text_encoder_2")),
        tokenizer=None,
        tokenizer_2=CLIPTokenizer.from_pretrained(str(base / "tokenizer_2")),
        unet=_sdxl_unet(cross_attention_dim=32, n_time_ids=5, pooled_dim=32),
        scheduler=EulerDiscreteScheduler(**SDXL_SCHEDULER),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )
    save_tiny_pipeline(pipe, folder)
