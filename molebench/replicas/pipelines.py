"""Replicas of the diffusers pipeline repositories: SD v1.5, SD v2.1, SDXL base and refiner, PixArt-α 512 and 1024,
VQ-Diffusion (ITHQ) and Versatile Diffusion.

Each builder writes what `hf download REPO` leaves in the cache for molebench's fetch command (model_index.json and
every component folder: configs, scheduler, tokenizer files, weights under their hub file names). Components that
two repositories share in reality (the refiner's second text encoder and VAE are the base's; both PixArt-α
checkpoints use the same T5-XXL encoder) share one blob through a hard link, so they cost disk once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from molebench.replicas.components import (add_clip_tokenizer, add_component, add_configs, add_t5_tokenizer,
                                           safety_checker)
from molebench.replicas.configs_legacy import VERSATILE_DIFFUSION, VQ_DIFFUSION
from molebench.replicas.configs_other import T5_SHARDS, pixart
from molebench.replicas.configs_sd import SD15, SD21, SDXL, SDXL_REFINER
from molebench.replicas.hubcache import RepoWriter

UNET_FILE = "diffusion_pytorch_model.safetensors"
TEXT_FILE = "model.safetensors"
Build = Callable[[RepoWriter, Path, torch.dtype, int], None]


def _sd(files: dict, pad_token: str, clip_name: str, with_safety: bool) -> Build:
    def build(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
        add_configs(writer, {k: v for k, v in files.items() if k in ("model_index.json",
                                                                       "scheduler/scheduler_config.json",
                                                                       "feature_extractor/preprocessor_config.json")})
        add_clip_tokenizer(writer, "tokenizer", pad_token, clip_name)
        add_component(writer, "text_encoder", files["text_encoder/config.json"], TEXT_FILE, dtype, seed, scratch)
        add_component(writer, "vae", files["vae/config.json"], UNET_FILE, dtype, seed, scratch)
        if with_safety:
            add_component(writer, "safety_checker", files["safety_checker/config.json"], TEXT_FILE, dtype, seed,
                          scratch, build=safety_checker)
        add_component(writer, "unet", files["unet/config.json"], UNET_FILE, dtype, seed, scratch)
    return build


build_sd15 = _sd(SD15, "<|endoftext|>", "openai/clip-vit-large-patch14", with_safety=True)
build_sd21 = _sd(SD21, "!", "hf-models/clip-vit-large-patch14", with_safety=False)


def build_sdxl(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
    add_configs(writer, {k: SDXL[k] for k in ("model_index.json", "scheduler/scheduler_config.json")})
    add_clip_tokenizer(writer, "tokenizer", "<|endoftext|>", "openai/clip-vit-large-patch14")
    add_clip_tokenizer(writer, "tokenizer_2", "!", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k")
    add_component(writer, "text_encoder", SDXL["text_encoder/config.json"], TEXT_FILE, dtype, seed, scratch)
    shared_seed = seed_of("stabilityai/stable-diffusion-xl-base-1.0 shared")
    add_component(writer, "text_encoder_2", SDXL["text_encoder_2/config.json"], TEXT_FILE, dtype, shared_seed, scratch)
    add_component(writer, "vae", SDXL["vae/config.json"], UNET_FILE, dtype, shared_seed, scratch)
    add_component(writer, "unet", SDXL["unet/config.json"], UNET_FILE, dtype, seed, scratch)


def build_sdxl_refiner(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int,
                       base: Path | None = None) -> None:
    """The refiner; its text_encoder_2 and VAE hard-link the base replica's files (`base`: its snapshot)."""
    add_configs(writer, {k: SDXL_REFINER[k] for k in ("model_index.json", "scheduler/scheduler_config.json",
                                                      "text_encoder_2/config.json", "vae/config.json")})
    add_clip_tokenizer(writer, "tokenizer_2", "!", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k")
    assert base is not None, "the refiner replica shares the base replica's files"
    for path in ("text_encoder_2/" + TEXT_FILE, "vae/" + UNET_FILE):
        writer.link_blob(path, (base / path).resolve())
    add_component(writer, "unet", SDXL_REFINER["unet/config.json"], UNET_FILE, dtype, seed, scratch)


def build_pixart(sample_size: int) -> Callable[..., None]:
    def build(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int, base: Path | None = None) -> None:
        files = pixart(sample_size)
        add_configs(writer, {k: files[k] for k in ("model_index.json", "scheduler/scheduler_config.json")})
        if base is None:  # the 512 checkpoint: T5-XXL in bfloat16 (float32 does not fit in memory here)
            add_t5_tokenizer(writer, "tokenizer", scratch)
            shared = seed_of("PixArt-alpha shared")
            add_component(writer, "text_encoder", files["text_encoder/config.json"], T5_SHARDS, torch.bfloat16,
                          shared, scratch)
            add_component(writer, "vae", files["vae/config.json"], UNET_FILE, dtype, shared, scratch)
        else:  # the 1024 checkpoint shares the 512 replica's tokenizer, T5 encoder and VAE
            for path in sorted(p for p in base.rglob("*") if not p.is_dir()):
                relative = str(path.relative_to(base))
                if relative.startswith(("tokenizer/", "text_encoder/", "vae/")):
                    writer.link_blob(relative, path.resolve())
        add_component(writer, "transformer", files["transformer/config.json"], UNET_FILE, dtype, seed, scratch)
    return build


def seed_of(text: str) -> int:
    import hashlib

    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


build_pixart_512 = build_pixart(64)
build_pixart_1024 = build_pixart(128)


def _legacy_model(config: dict) -> torch.nn.Module:
    """The two networks diffusers keeps only in the deprecated pipelines' packages (not importable from `diffusers`)."""
    from diffusers.pipelines.deprecated.versatile_diffusion import UNetFlatConditionModel
    from diffusers.pipelines.deprecated.vq_diffusion.pipeline_vq_diffusion import (
        LearnedClassifierFreeSamplingEmbeddings,
    )

    classes = {cls.__name__: cls for cls in (UNetFlatConditionModel, LearnedClassifierFreeSamplingEmbeddings)}
    return classes[config["_class_name"]].from_config(config)


def _pre_norm_type_transformer(config: dict) -> torch.nn.Module:
    """The ITHQ transformer, whose exported config predates `norm_type`: built with the value the model infers from
    `num_embeds_ada_norm` (what molebench.models.legacy.with_norm_type loads it with); the file keeps no such key."""
    from diffusers import Transformer2DModel

    return Transformer2DModel.from_config({**config, "norm_type": "ada_norm"})


def build_vq_diffusion(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
    files = VQ_DIFFUSION
    add_configs(writer, {k: files[k] for k in ("model_index.json", "scheduler/scheduler_config.json")})
    add_clip_tokenizer(writer, "tokenizer", "!", "openai/clip-vit-base-patch32")
    add_component(writer, "text_encoder", files["text_encoder/config.json"], TEXT_FILE, dtype, seed, scratch)
    add_component(writer, "vqvae", files["vqvae/config.json"], UNET_FILE, dtype, seed, scratch)
    add_component(writer, "learned_classifier_free_sampling_embeddings",
                  files["learned_classifier_free_sampling_embeddings/config.json"], UNET_FILE, dtype, seed, scratch,
                  build=_legacy_model)
    add_component(writer, "transformer", files["transformer/config.json"], UNET_FILE, dtype, seed, scratch,
                  build=_pre_norm_type_transformer)


def build_versatile_diffusion(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
    files = VERSATILE_DIFFUSION
    add_configs(writer, {k: files[k] for k in ("model_index.json", "scheduler/scheduler_config.json",
                                               "image_feature_extractor/preprocessor_config.json")})
    add_clip_tokenizer(writer, "tokenizer", "<|endoftext|>", "openai/clip-vit-large-patch14")
    for name in ("text_encoder", "image_encoder"):
        add_component(writer, name, files[f"{name}/config.json"], TEXT_FILE, dtype, seed, scratch)
    add_component(writer, "vae", files["vae/config.json"], UNET_FILE, dtype, seed, scratch)
    add_component(writer, "image_unet", files["image_unet/config.json"], UNET_FILE, dtype, seed, scratch)
    add_component(writer, "text_unet", files["text_unet/config.json"], UNET_FILE, dtype, seed, scratch,
                  build=_legacy_model)
