"""`tiny-sd15`: a Stable Diffusion 1.5-architecture pipeline small enough for CPU tests and the offline demo.

Same component classes as SD1.5 (UNet2DConditionModel with cross-attention, AutoencoderKL, CLIPTextModel, the real
CLIP BPE tokenizer), tiny widths, weights from a fixed seed. Images are noise-like: the point is the code path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molebench.assets.clip_tokenizer import CLIP_VOCAB_SIZE, write_clip_tokenizer, write_vocab_and_merges
from molebench.models.base import DiffusersModel
from molebench.models.tiny_variant import TinyVariant
from molebench.registry import register_model

if TYPE_CHECKING:
    import torch

TINY_SEED = 20240601


def tiny_unet(cross_attention_dim: int = 32, **overrides):
    from diffusers import UNet2DConditionModel

    config = dict(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    config.update(overrides)
    return UNet2DConditionModel(**config)


def tiny_vae(**overrides):
    from diffusers import AutoencoderKL

    config = dict(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    )
    config.update(overrides)
    return AutoencoderKL(**config)


def tiny_clip_text_encoder(hidden_size: int = 32, projection_dim: int | None = None, **overrides):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
        projection_dim=projection_dim or hidden_size,
        **overrides,
    )
    return CLIPTextModelWithProjection(config) if projection_dim else CLIPTextModel(config)


def build_tiny_sd15(folder: Path) -> None:
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    torch.manual_seed(TINY_SEED)
    unet = tiny_unet()
    vae = tiny_vae()
    text_encoder = tiny_clip_text_encoder()
    tokenizer = tiny_clip_tokenizer(folder)
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    save_tiny_pipeline(pipe, folder)


def save_tiny_pipeline(pipe: Any, folder: Path) -> None:
    """`save_pretrained` in safetensors, then every CLIP tokenizer as the hub repositories hold it (vocab.json and
    merges.txt, see `write_vocab_and_merges`): the same tokens, loaded several times faster on every run."""
    pipe.save_pretrained(str(folder), safe_serialization=True)
    for config in folder.glob("*/tokenizer_config.json"):
        if json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class") == "CLIPTokenizer":
            write_vocab_and_merges(config.parent)


def tiny_clip_tokenizer(scratch: Path, pad_token: str = "<|endoftext|>"):
    """The real CLIP BPE tokenizer, written offline into a scratch folder under `scratch` and loaded back."""
    import shutil

    from transformers import CLIPTokenizer

    tokenizer_dir = write_clip_tokenizer(scratch / "_tokenizer_build")
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), pad_token=pad_token)
    shutil.rmtree(tokenizer_dir)
    return tokenizer


@register_model("tiny-sd15")
class TinySD15(TinyVariant, DiffusersModel):
    family = "sd15"
    description = "SD1.5 architecture at tiny width, seeded weights, built offline (demo and tests)"
    pipeline_class = "StableDiffusionPipeline"
    default_steps = 10
    default_guidance = 7.5
    default_size = (64, 64)
    default_scheduler = "DDIMScheduler"
    paper_settings = "not in the paper; mirrors SD1.5's pipeline at tiny size"
    build = staticmethod(build_tiny_sd15)
