"""Configuration files of the PixArt-α repositories and of the scorers' hub repositories (values as published).

Sources (docs/replicas.md):
- PixArt-α (`PixArt-alpha/PixArt-XL-2-512x512`, `PixArt-alpha/PixArt-XL-2-1024-MS`): the hub repositories' files as
  diffusers' conversion script (scripts/convert_pixart_alpha_to_diffusers.py) writes them: a `Transformer2DModel`
  with `norm_type: ada_norm_single`, 28 layers, 16 heads of 72, caption_channels 4096, out_channels 8 (learned
  sigma), sample_size 64 (512) or 128 (1024-MS, which turns on the size/aspect-ratio conditioning); DPM-Solver++
  scheduler over linear betas 0.0001-0.02; the text encoder is DeepFloyd's `t5-v1_1-xxl` encoder config (d_model
  4096, 24 layers, 64 heads, d_ff 10240, gated-gelu, vocabulary 32128), stored in two shards; the VAE is
  `sd-vae-ft-ema`'s config;
- `openai/clip-vit-large-patch14` and `openai/clip-vit-base-patch32` (clip-t, clip-t-b32): the CLIPModel configs
  (ViT-L/14: text 768 wide × 12 layers, vision 1024 × 24, patch 14, projection 768; ViT-B/32: text 512 × 12, vision
  768 × 12, patch 32, projection 512; quick_gelu; logit scale 2.6592) and the CLIP image processor config;
- `THUDM/ImageReward`: med_config.json (BERT-base with cross-attention, vocabulary 30524 = BERT's 30522 + BLIP's
  [DEC] and [ENC]); molebench.perf.scorers_full holds the same values;
- `bert-base-uncased`: tokenizer_config.json `{"do_lower_case": true, "model_max_length": 512}` and vocab.txt (see
  molebench/data/replicas/).
"""

from __future__ import annotations

from typing import Any

from molebench.replicas.configs_sd import CLIP_MEAN, CLIP_STD, vae_config

PIXART_INDEX = {"_class_name": "PixArtAlphaPipeline", "_diffusers_version": "0.22.0.dev0",
                "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
                "text_encoder": ["transformers", "T5EncoderModel"], "tokenizer": ["transformers", "T5Tokenizer"],
                "transformer": ["diffusers", "Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}

PIXART_SCHEDULER = {"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver++", "beta_end": 0.02,
                    "beta_schedule": "linear", "beta_start": 0.0001, "dynamic_thresholding_ratio": 0.995,
                    "lower_order_final": True, "num_train_timesteps": 1000, "prediction_type": "epsilon",
                    "sample_max_value": 1.0, "solver_order": 2, "solver_type": "midpoint", "steps_offset": 0,
                    "thresholding": False, "timestep_spacing": "linspace", "trained_betas": None,
                    "use_karras_sigmas": False}

T5_XXL_ENCODER = {"_name_or_path": "DeepFloyd/t5-v1_1-xxl", "architectures": ["T5EncoderModel"], "d_ff": 10240,
                  "d_kv": 64, "d_model": 4096, "decoder_start_token_id": 0, "dense_act_fn": "gelu_new",
                  "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0,
                  "is_encoder_decoder": True, "is_gated_act": True, "layer_norm_epsilon": 1e-06, "model_type": "t5",
                  "num_decoder_layers": 24, "num_heads": 64, "num_layers": 24, "output_past": True,
                  "pad_token_id": 0, "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
                  "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True, "vocab_size": 32128}
T5_SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
T5_EXTRA_IDS = 100
T5_PIECES = 32000  # sentencepiece pieces (<pad>, </s>, <unk> first); + 100 <extra_id_N> = 32100 <= 32128


def pixart_transformer(sample_size: int) -> dict[str, Any]:
    return {"_class_name": "Transformer2DModel", "_diffusers_version": "0.22.0.dev0",
            "activation_fn": "gelu-approximate", "attention_bias": True, "attention_head_dim": 72,
            "attention_type": "default", "caption_channels": 4096, "cross_attention_dim": 1152,
            "double_self_attention": False, "dropout": 0.0, "in_channels": 4, "norm_elementwise_affine": False,
            "norm_eps": 1e-06, "norm_num_groups": 32, "norm_type": "ada_norm_single", "num_attention_heads": 16,
            "num_embeds_ada_norm": 1000, "num_layers": 28, "num_vector_embeds": None, "only_cross_attention": False,
            "out_channels": 8, "patch_size": 2, "sample_size": sample_size, "upcast_attention": False,
            "use_linear_projection": False}


def pixart(sample_size: int) -> dict[str, Any]:
    return {"model_index.json": PIXART_INDEX, "scheduler/scheduler_config.json": PIXART_SCHEDULER,
            "text_encoder/config.json": T5_XXL_ENCODER, "transformer/config.json": pixart_transformer(sample_size),
            "vae/config.json": vae_config(512)}


def clip_model_config(text: tuple[int, int, int], vision: tuple[int, int, int, int], projection: int) -> dict:
    """A transformers CLIPModel config.json: text (width, layers, heads), vision (width, layers, heads, patch)."""
    (t_width, t_layers, t_heads), (v_width, v_layers, v_heads, patch) = text, vision
    return {"architectures": ["CLIPModel"], "initializer_factor": 1.0, "logit_scale_init_value": 2.6592,
            "model_type": "clip", "projection_dim": projection, "torch_dtype": "float32",
            "text_config": {"bos_token_id": 0, "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": t_width,
                            "intermediate_size": 4 * t_width, "max_position_embeddings": 77,
                            "model_type": "clip_text_model", "num_attention_heads": t_heads,
                            "num_hidden_layers": t_layers, "pad_token_id": 1, "projection_dim": projection,
                            "vocab_size": 49408},
            "vision_config": {"hidden_act": "quick_gelu", "hidden_size": v_width, "image_size": 224,
                              "intermediate_size": 4 * v_width, "model_type": "clip_vision_model",
                              "num_attention_heads": v_heads, "num_hidden_layers": v_layers, "patch_size": patch,
                              "projection_dim": projection}}


CLIP_PREPROCESSOR = {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True,
                     "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
                     "resample": 3, "size": 224}
CLIP_L14 = clip_model_config((768, 12, 12), (1024, 24, 16, 14), 768)
CLIP_B32 = clip_model_config((512, 12, 8), (768, 12, 12, 32), 512)
BERT_TOKENIZER_CONFIG = {"do_lower_case": True, "model_max_length": 512}
