"""Configuration files of the two deprecated-pipeline baselines: VQ-Diffusion (ITHQ) and Versatile Diffusion.

No public copy of their hub files was found, so each value is derived the way diffusers' own conversion scripts
derive it (docs/replicas.md has the sources and what could not be checked):
- `microsoft/vq-diffusion-ithq`: scripts/convert_vq_diffusion_to_diffusers.py applied to microsoft/VQ-Diffusion's
  configs/ithq.yaml (36 layers, n_embd 1408, 16 heads, condition_dim 512, 32×32 tokens, 4096 codes + the mask
  token, diffusion_step 100, learnable_cf true) and OUTPUT/pretrained_model/taming_dvae/config.yaml (PatchVQGAN:
  ch 64 × [1, 2, 4, 8], 2 res blocks, attention at 32×32, z 256, n_embed 4096, embed_dim 128); CLIP ViT-B/32's text
  encoder with the pad token "!". The transformer config has no `norm_type` (exported before that argument existed:
  microsoft/VQ-Diffusion#47), and the embeddings are declared under the old library name `vq_diffusion`.
- `shi-labs/versatile-diffusion`: scripts/convert_versatile_diffusion_to_diffusers.py (IMAGE_UNET_CONFIG,
  TEXT_UNET_CONFIG, AUTOENCODER_CONFIG, the `ddim` scheduler branch) with CLIP ViT-L/14's text and vision encoders,
  tokenizer and feature extractor; the text UNet declared under the old library name `versatile_diffusion`.
  image_unet's `sample_size` is 64, not the script's None: the model card calls the pipeline without a size, which
  reads `image_unet.config.sample_size`.
Keys are those the diffusers of the export (0.9-0.10) wrote; a newer diffusers fills the rest with its defaults.
"""

from __future__ import annotations

from typing import Any

from molebench.replicas.configs_other import CLIP_PREPROCESSOR
from molebench.replicas.configs_sd import SD_BETAS, clip_text_config, vae_config

EXPORT_VERSION = "0.10.0.dev0"

VQ_DIFFUSION: dict[str, Any] = {
    "model_index.json": {
        "_class_name": "VQDiffusionPipeline", "_diffusers_version": EXPORT_VERSION,
        "learned_classifier_free_sampling_embeddings": ["vq_diffusion", "LearnedClassifierFreeSamplingEmbeddings"],
        "scheduler": ["diffusers", "VQDiffusionScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "transformer": ["diffusers", "Transformer2DModel"],
        "vqvae": ["diffusers", "VQModel"]},
    "scheduler/scheduler_config.json": {
        "_class_name": "VQDiffusionScheduler", "_diffusers_version": EXPORT_VERSION, "alpha_cum_end": 9e-06,
        "alpha_cum_start": 0.99999, "gamma_cum_end": 0.99999, "gamma_cum_start": 9e-06, "num_train_timesteps": 100,
        "num_vec_classes": 4097},
    "learned_classifier_free_sampling_embeddings/config.json": {
        "_class_name": "LearnedClassifierFreeSamplingEmbeddings", "_diffusers_version": EXPORT_VERSION,
        "hidden_size": 512, "learnable": True, "length": 77},
    "text_encoder/config.json": clip_text_config(512, 12, 8, "quick_gelu", 512, "CLIPTextModel"),
    "transformer/config.json": {
        "_class_name": "Transformer2DModel", "_diffusers_version": EXPORT_VERSION,
        "activation_fn": "geglu-approximate", "attention_bias": True, "attention_head_dim": 88,
        "cross_attention_dim": 512, "dropout": 0.0, "in_channels": None, "norm_num_groups": 32,
        "num_attention_heads": 16, "num_embeds_ada_norm": 100, "num_layers": 36, "num_vector_embeds": 4097,
        "sample_size": 32},
    "vqvae/config.json": {
        "_class_name": "VQModel", "_diffusers_version": EXPORT_VERSION, "act_fn": "silu",
        "block_out_channels": [64, 128, 256, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"], "in_channels": 3,
        "latent_channels": 256, "layers_per_block": 2, "norm_num_groups": 32, "num_vq_embeddings": 4096,
        "out_channels": 3, "sample_size": 32, "up_block_types": ["AttnUpDecoderBlock2D"] + ["UpDecoderBlock2D"] * 3,
        "vq_embed_dim": 128},
}

_VD_UNET = {"_diffusers_version": EXPORT_VERSION, "act_fn": "silu", "attention_head_dim": 8,
            "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False, "cross_attention_dim": 768,
            "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "layers_per_block": 2,
            "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32}

VERSATILE_DIFFUSION: dict[str, Any] = {
    "model_index.json": {
        "_class_name": "VersatileDiffusionPipeline", "_diffusers_version": EXPORT_VERSION,
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "image_feature_extractor": ["transformers", "CLIPFeatureExtractor"],
        "image_unet": ["diffusers", "UNet2DConditionModel"], "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
        "text_unet": ["versatile_diffusion", "UNetFlatConditionModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "vae": ["diffusers", "AutoencoderKL"]},
    "scheduler/scheduler_config.json": {"_class_name": "DDIMScheduler", "_diffusers_version": EXPORT_VERSION,
                                        **SD_BETAS, "clip_sample": False, "set_alpha_to_one": False,
                                        "steps_offset": 1},
    "image_feature_extractor/preprocessor_config.json": CLIP_PREPROCESSOR,
    "text_encoder/config.json": clip_text_config(768, 12, 12, "quick_gelu", 768, "CLIPTextModelWithProjection"),
    "image_encoder/config.json": {
        "architectures": ["CLIPVisionModelWithProjection"], "attention_dropout": 0.0, "dropout": 0.0,
        "hidden_act": "quick_gelu", "hidden_size": 1024, "image_size": 224, "initializer_factor": 1.0,
        "initializer_range": 0.02, "intermediate_size": 4096, "layer_norm_eps": 1e-05,
        "model_type": "clip_vision_model", "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 24,
        "patch_size": 14, "projection_dim": 768, "torch_dtype": "float32"},
    "image_unet/config.json": {
        "_class_name": "UNet2DConditionModel", **_VD_UNET, "in_channels": 4, "out_channels": 4, "sample_size": 64,
        "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3},
    "text_unet/config.json": {
        "_class_name": "UNetFlatConditionModel", **_VD_UNET, "in_channels": [768, 1, 1],
        "out_channels": [768, 1, 1], "sample_size": None,
        "down_block_types": ["CrossAttnDownBlockFlat"] * 3 + ["DownBlockFlat"],
        "up_block_types": ["UpBlockFlat"] + ["CrossAttnUpBlockFlat"] * 3},
    # the export predates the VAE's `scaling_factor` key (0.18215, the default, either way)
    "vae/config.json": {**{k: v for k, v in vae_config(256).items() if k != "scaling_factor"},
                        "_diffusers_version": EXPORT_VERSION},
}
