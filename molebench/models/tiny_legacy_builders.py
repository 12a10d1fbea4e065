"""Tiny offline pipelines for PixArt-α, VQ-Diffusion and Versatile Diffusion, in their hub repositories' layouts.

Each is saved with `save_pretrained`; then the folder is put in the form the hub snapshot has, because that form is
what the loader must cope with (see docs/models.md for the evidence):
- PixArt-α: the transformer is declared as `Transformer2DModel` (diffusers remaps it to `PixArtTransformer2DModel`
  from `norm_type`), the text encoder is T5 with a T5 (Unigram) tokenizer.
- VQ-Diffusion (`microsoft/vq-diffusion-ithq`, exported with diffusers 0.9): the learned classifier-free embeddings
  are declared under the library name `vq_diffusion`, and the transformer config has no `norm_type`.
- Versatile Diffusion (`shi-labs/versatile-diffusion`): the four-mode `VersatileDiffusionPipeline` layout (image
  encoder and feature extractor included), the text UNet declared under the library name `versatile_diffusion`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import string
from pathlib import Path

from molebench.models.tiny_sd import (TINY_SEED, save_tiny_pipeline, tiny_clip_text_encoder, tiny_clip_tokenizer,
                                      tiny_unet, tiny_vae)

if TYPE_CHECKING:
    import torch


def tiny_t5_tokenizer():
    """A real `T5Tokenizer` (Unigram model, T5's special-token layout) over a character-level vocabulary.

    Built offline from a fixed piece list: words split into characters, each with a word-start ("▁x")
    and an inner ("x") piece; a few common words get their own piece so the Unigram model has something to choose.
    """
    from transformers import T5Tokenizer

    characters = string.ascii_letters + string.digits + string.punctuation
    words = ("a", "the", "man", "woman", "person", "hand", "hands", "face", "with", "and", "of", "in", "on")
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{w}", -3.0) for w in words]
    vocab += [(f"▁{c}", -6.0) for c in characters] + [(c, -7.0) for c in characters]
    return T5Tokenizer(vocab=vocab, extra_ids=8, model_max_length=512)


def tiny_t5_encoder(vocab_size: int, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", is_encoder_decoder=False,
                      dropout_rate=0.0)
    return T5EncoderModel(config)


def build_tiny_pixart(folder: Path) -> None:
    import torch
    from diffusers import DPMSolverMultistepScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel

    torch.manual_seed(TINY_SEED + 300)
    tokenizer = tiny_t5_tokenizer()
    transformer = PixArtTransformer2DModel(
        sample_size=32, num_layers=2, patch_size=2, attention_head_dim=8, num_attention_heads=3, caption_channels=32,
        in_channels=4, cross_attention_dim=24, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
    )
    pipe = PixArtAlphaPipeline(
        tokenizer=tokenizer,
        text_encoder=tiny_t5_encoder(len(tokenizer)),
        vae=tiny_vae(),
        transformer=transformer,
        scheduler=DPMSolverMultistepScheduler(beta_start=0.0001, beta_end=0.02, beta_schedule="linear",
                                              algorithm_type="dpmsolver++", solver_order=2, prediction_type="epsilon"),
    )
    save_tiny_pipeline(pipe, folder)
    _declare(folder, "transformer", "diffusers", "Transformer2DModel")
    _edit_config(folder / "transformer" / "config.json", _class_name="Transformer2DModel")


def build_tiny_vq_diffusion(folder: Path) -> None:
    import torch
    from diffusers import Transformer2DModel, VQDiffusionPipeline, VQDiffusionScheduler, VQModel
    from diffusers.pipelines.deprecated.vq_diffusion.pipeline_vq_diffusion import (
        LearnedClassifierFreeSamplingEmbeddings,
    )

    torch.manual_seed(TINY_SEED + 400)
    n_codes, grid = 12, 16
    vqvae = VQModel(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                    down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                    latent_channels=3, num_vq_embeddings=n_codes, vq_embed_dim=3, norm_num_groups=32)
    transformer = Transformer2DModel(num_attention_heads=2, attention_head_dim=16, num_vector_embeds=n_codes + 1,
                                     sample_size=grid, num_layers=1, cross_attention_dim=32, attention_bias=True,
                                     activation_fn="geglu-approximate", num_embeds_ada_norm=100, norm_type="ada_norm")
    embeddings = LearnedClassifierFreeSamplingEmbeddings(learnable=True, hidden_size=32, length=77)
    torch.nn.init.normal_(embeddings.embeddings, std=0.02)
    pipe = VQDiffusionPipeline(
        vqvae=vqvae,
        text_encoder=tiny_clip_text_encoder(),
        tokenizer=tiny_clip_tokenizer(folder),
        transformer=transformer,
        scheduler=VQDiffusionScheduler(num_vec_classes=n_codes + 1, num_train_timesteps=100),
        learned_classifier_free_sampling_embeddings=embeddings,
    )
    save_tiny_pipeline(pipe, folder)
    _declare(folder, "learned_classifier_free_sampling_embeddings", "vq_diffusion",
             "LearnedClassifierFreeSamplingEmbeddings")
    _edit_config(folder / "transformer" / "config.json", norm_type=None)


def build_tiny_versatile_diffusion(folder: Path) -> None:
    import torch
    from diffusers import DDIMScheduler, VersatileDiffusionPipeline
    from diffusers.pipelines.deprecated.versatile_diffusion import UNetFlatConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(TINY_SEED + 500)
    flat_blocks = dict(down_block_types=("DownBlockFlat", "CrossAttnDownBlockFlat"),
                       up_block_types=("CrossAttnUpBlockFlat", "UpBlockFlat"),
                       mid_block_type="UNetMidBlockFlatCrossAttn")
    text_unet = UNetFlatConditionModel(sample_size=32, in_channels=(8, 1, 1), out_channels=(8, 1, 1),
                                       block_out_channels=(32, 64), layers_per_block=2, cross_attention_dim=32,
                                       attention_head_dim=8, norm_num_groups=32, **flat_blocks)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=32,
        patch_size=8, projection_dim=32))
    pipe = VersatileDiffusionPipeline(
        tokenizer=tiny_clip_tokenizer(folder),
        image_feature_extractor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        text_encoder=tiny_clip_text_encoder(projection_dim=32),
        image_encoder=image_encoder,
        image_unet=tiny_unet(cross_attention_dim=32),
        text_unet=text_unet,
        vae=tiny_vae(),
        scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                                set_alpha_to_one=False, steps_offset=1),
    )
    save_tiny_pipeline(pipe, folder)
    _declare(folder, "text_unet", "versatile_diffusion", "UNetFlatConditionModel")


def _declare(folder: Path, component: str, library: str, class_name: str) -> None:
    """Rewrite one component's (library, class) entry of model_index.json."""
    _edit_config(folder / "model_index.json", **{component: [library, class_name]})


def _edit_config(path: Path, **changes) -> None:
    """Set keys of a JSON config (a value of None removes the key)."""
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
