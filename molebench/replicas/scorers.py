"""Replicas of the full-size scorers' files, in the formats their loaders read from a real download.

- `hps-v2`, `hps-v2.1`: `xswu/HPSv2`'s `HPS_v2_compressed.pt` and `HPS_v2.1_compressed.pt` (a `{"state_dict": ...}`
  torch file of open_clip's ViT-H-14 in float16, the "compressed" release); the two replicas share one blob (the same
  architecture; random weights either way), so they cost disk once;
- `imagereward`: `THUDM/ImageReward`'s `ImageReward.pt` (the BLIP ViT-L/16 + BERT-base state dict under the
  package's names) and `med_config.json`, plus `bert-base-uncased`'s vocab.txt and tokenizer_config.json;
- `clip-t`, `clip-t-b32`: `openai/clip-vit-large-patch14` and `openai/clip-vit-base-patch32` (config, image
  processor config, CLIP tokenizer files, model.safetensors);
- `hps-v1`: `hpc.pt` (`{"state_dict": ...}` of OpenAI CLIP ViT-L/14), and `aesthetic`: OpenAI's TorchScript
  `ViT-L-14.pt` (float16, as OpenAI ships it) and the LAION head `sac+logos+ava1-l14-linearMSE.pth`. Neither is on
  the hub: their replicas are plain folders that `MOLEBENCH_WEIGHTS_HPS_V1` / `MOLEBENCH_WEIGHTS_AESTHETIC` name,
  which is where a user puts the real files.
- `fid`, `kid`: torch-fidelity's FID Inception file, in a plain folder that `MOLEBENCH_WEIGHTS_INCEPTION` names. Its
  loader checks the release's sha256, which random weights cannot have; it takes a file that fails the check only
  from a replica folder, and such scores are marked `replica: true` like every replica's (docs/replicas.md).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch

from molebench.atomic import atomic_path
from molebench.replicas.components import add_clip_tokenizer, add_component, add_configs, bert_vocab, config_text
from molebench.replicas.configs_other import BERT_TOKENIZER_CONFIG, CLIP_B32, CLIP_L14, CLIP_PREPROCESSOR
from molebench.replicas.hubcache import RepoWriter
from molebench.replicas.tensors import on_meta, random_state, shapes


def _torch_file(writer: RepoWriter, name: str, model: torch.nn.Module, dtype: torch.dtype, seed: int,
                scratch: Path, wrap: bool) -> str:
    state = random_state(shapes(model), dtype, seed)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        path = Path(tmp) / name
        torch.save({"state_dict": state} if wrap else state, path)
        del state
        return writer.add_file(name, path)


def build_hps(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
    import open_clip
    from open_clip.model import CLIP

    model = on_meta(lambda: CLIP(**open_clip.get_model_config("ViT-H-14")))
    blob = _torch_file(writer, "HPS_v2.1_compressed.pt", model, torch.float16, seed, scratch, wrap=True)
    writer.link_blob("HPS_v2_compressed.pt", Path(blob))


def build_imagereward(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
    from molebench.scoring.blip_config import BERT_BASE_MED_CONFIG
    from molebench.scoring.blip import VisionConfig
    from molebench.scoring.imagereward import build_net

    add_configs(writer, {"med_config.json": BERT_BASE_MED_CONFIG})
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        med = Path(tmp) / "med_config.json"
        med.write_text(config_text(BERT_BASE_MED_CONFIG))
        model = on_meta(lambda: build_net(med, VisionConfig()))
    _torch_file(writer, "ImageReward.pt", model, dtype, seed, scratch, wrap=False)


def build_bert_tokenizer(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
    writer.add_bytes("vocab.txt", bert_vocab())
    writer.add_text("tokenizer_config.json", config_text(BERT_TOKENIZER_CONFIG))


def _clip(config: dict, name_or_path: str):
    def build(writer: RepoWriter, scratch: Path, dtype: torch.dtype, seed: int) -> None:
        add_configs(writer, {"preprocessor_config.json": CLIP_PREPROCESSOR})
        add_clip_tokenizer(writer, "", "<|endoftext|>", name_or_path)
        add_component(writer, "", config, "model.safetensors", dtype, seed, scratch)
    return build


build_clip_l14 = _clip(CLIP_L14, "openai/clip-vit-large-patch14")
build_clip_b32 = _clip(CLIP_B32, "openai/clip-vit-base-patch32")


def build_hps_v1(folder: Path, dtype: torch.dtype, seed: int) -> None:
    from open_clip.model import CLIP

    from molebench.scoring.hps_v1 import HPS_V1_FILE
    from molebench.scoring.openai_clip import openai_clip_config

    state = random_state(shapes(on_meta(lambda: CLIP(**openai_clip_config()))), dtype, seed)
    with atomic_path(folder / HPS_V1_FILE) as tmp:
        torch.save({"state_dict": state}, tmp)


def build_aesthetic(folder: Path, dtype: torch.dtype, seed: int) -> None:
    """OpenAI's ViT-L/14 as a TorchScript archive of float16 weights (traced `encode_image`, as the tiny variant's
    builder makes its archive) and a random head state dict."""
    from open_clip.model import CLIP

    from molebench.scoring.aesthetic import CLIP_FILE, HEAD_FILE
    from molebench.scoring.aesthetic_head import AestheticHead
    from molebench.scoring.openai_clip import openai_clip_config

    clip = on_meta(lambda: CLIP(**openai_clip_config()))
    clip.load_state_dict(random_state(shapes(clip), torch.float32, seed), assign=True)
    del clip.attn_mask  # a constant buffer, not a weight: OpenAI's archives hold parameters only
    clip.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace_module(clip, {"encode_image": torch.zeros(1, 3, 224, 224)}, check_trace=False)
        del clip
        scripted.half()
        with atomic_path(folder / CLIP_FILE) as tmp:
            torch.jit.save(scripted, str(tmp))
    head = AestheticHead()
    head.load_state_dict(random_state(shapes(head), torch.float32, seed + 1))
    with atomic_path(folder / HEAD_FILE) as tmp:
        torch.save(head.state_dict(), tmp)


def inception_net() -> torch.nn.Module:
    """torch-fidelity's FID Inception on the meta device. Its constructor always loads weights (from a path or its
    release URL), so that loading is switched off here: the architecture is torch-fidelity's own, not a copy."""
    from unittest import mock

    from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

    with mock.patch.object(tf_inception, "load_state_dict_from_url", return_value={}), \
            mock.patch.object(tf_inception.FeatureExtractorInceptionV3, "load_state_dict"):
        return on_meta(lambda: tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]))


def calibrate_batch_norms(net: torch.nn.Module, seed: int) -> None:
    """Batch norms as in a trained network: scales about 1 (`random_value` draws 1-d tensors near 0, which would
    wash the input out layer by layer) and running statistics those of one batch of random images, so that each
    layer's output has unit variance and the 2048 features depend on the image."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.add_(1.0)
            module.reset_running_stats()
            module.momentum = None  # the running statistics become the batch's exactly
    images = torch.randint(0, 256, (4, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    net.train()
    with torch.no_grad():
        net(images)
    net.eval()


def build_inception(folder: Path, dtype: torch.dtype, seed: int) -> None:
    """`fid`/`kid`: torch-fidelity's `weights-inception-2015-12-05-6726825d.pth` (a float32 state dict, as released)
    with random weights. Its sha256 is not the release's: molebench.scoring.fid accepts it only because it lies in a
    replica folder, and marks every score made with it (docs/replicas.md)."""
    from molebench.scoring.fid import INCEPTION_FILE

    net = inception_net()
    net.load_state_dict(random_state(shapes(net), torch.float32, seed), assign=True)
    calibrate_batch_norms(net, seed)
    with atomic_path(folder / INCEPTION_FILE) as tmp:
        torch.save(net.state_dict(), tmp)
