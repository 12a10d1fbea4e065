"""Scorer throughput on the full-size networks: the ratio a user sees with the real checkpoints.

The `scorers` section uses tiny weights, where the networks cost little and the harness around them is measured.
Here each scorer runs its real architecture — HPS v2's open_clip ViT-H-14, HPS v1's OpenAI CLIP ViT-L/14 and
ImageReward's BLIP ViT-L/16 + BERT-base — with seeded random weights written to temporary files in the real files'
layouts (HPS checkpoints in float16, as `HPS_v2*_compressed.pt` is). Random weights cost the same arithmetic as the
real ones, so the times are those of the real scorers; the scores themselves mean nothing, but both sides must
still agree (the table's last column).

molebench scores each set as one batch through its registered scorer classes (`hps-v2.1`, `hps-v1`, `imagereward`
pointed at the files); the references are the packages' per-image calls: `hpsv2.img_score.score` per (image,
prompt) — which re-reads its 2 GB checkpoint on every call, as the package does — ImageReward's `RM.score` per
image, and HPS v1's `evaluate_hps.py` steps (OpenAI `clip`) called per image. ImageReward runs with a small
WordPiece vocabulary (the `bert-base-uncased` files are not needed offline); its embedding table has BERT's size.

One model pair in memory at a time (ViT-H in float32 is about 4 GB per side); 8 images (2 prompts × 4 seeds) and
best of 3 keep the section to minutes on a CPU.
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from molebench.perf.oracles import reference_module
from molebench.perf.scorers import (TARGET, PairTiming, bench_inputs, load_average, throughput_table, time_pair,
                                    verdict)
from molebench.scoring.blip_config import BERT_BASE_MED_CONFIG

N_PROMPTS, N_SEEDS, REPEATS = 2, 4, 3
SEED = 20240602



def random_state(model: torch.nn.Module, dtype: torch.dtype, seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights for every entry of `model`'s state dict (built on the meta device: no init cost), scaled so
    activations stay O(1): norms about 1, matrices N(0, 1/fan-in), other vectors small."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, meta in model.state_dict().items():
        owner = name.rsplit(".", 2)[-2].lower() if name.count(".") else ""
        if not meta.is_floating_point():
            state[name] = torch.zeros(meta.shape, dtype=meta.dtype)
            continue
        value = torch.empty(meta.shape)
        if ("norm" in owner or owner.startswith("ln")) and name.endswith("weight"):
            value.normal_(1.0, 0.1, generator=generator)
        elif value.dim() >= 2:
            value.normal_(0.0, value[0].numel() ** -0.5, generator=generator)
        else:
            value.normal_(0.0, 0.02, generator=generator)
        state[name] = value.to(dtype)
    return state


def _on_meta(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    with torch.device("meta"):
        return build()


def _pair(name: str, images: list, prompts: list[str], ours: Any, theirs: Callable[[Any, str], Any]) -> PairTiming:
    """Time molebench's scorer `ours` on the whole set (one batch) against `theirs` per image; both warm up on one
    image first (weights loaded, first-call allocations, the reference's checkpoint in the page cache)."""
    metric = ours.metrics[0]
    return time_pair(name, len(images), lambda: ours.score(images, prompts)[metric],
                     lambda: [theirs(im, p) for im, p in zip(images, prompts)], REPEATS,
                     warm_up=(lambda: ours.score(images[:1], prompts[:1]), lambda: theirs(images[0], prompts[0])))


def imagereward_files(folder: Path) -> Path:
    """ImageReward's folder at full size (BLIP ViT-L/16 + BERT-base, seeded random weights, small WordPiece
    vocabulary); returns the folder."""
    from molebench.scoring.blip import VisionConfig
    from molebench.scoring.imagereward import TinyImageReward, build_net

    folder.mkdir()
    tiny = TinyImageReward().folder()
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(tiny / name, folder / name)
    (folder / "med_config.json").write_text(json.dumps(BERT_BASE_MED_CONFIG))
    net = _on_meta(lambda: build_net(folder / "med_config.json", VisionConfig()))
    torch.save(random_state(net, torch.float32, SEED), folder / "ImageReward.pt")
    return folder


def imagereward_pair(folder: Path, images: list, prompts: list[str]) -> PairTiming:
    reference = reference_module("scorers-full")
    from molebench.scoring.imagereward import ImageRewardV1

    imagereward_files(folder)
    ours = ImageRewardV1(weights=folder, batch_size=len(images))
    theirs = reference.imagereward_reference(folder)
    return _pair("imagereward (BLIP ViT-L/16 + BERT-base)", images, prompts, ours, lambda im, p: theirs.score(p, im))


def hps_v1_files(folder: Path, base: bool = True) -> Path:
    """HPS v1's `hpc.pt` at full size (OpenAI CLIP ViT-L/14) with seeded random weights in float16, and with `base`
    the `ViT-L-14.pt` that `clip.load` builds from before hpc.pt replaces all of it (the reference needs it); returns
    the hpc.pt path."""
    from open_clip.model import CLIP

    from molebench.scoring.openai_clip import openai_clip_config

    folder.mkdir()
    state = random_state(_on_meta(lambda: CLIP(**openai_clip_config())), torch.float16, SEED + 1)
    if base:
        torch.save(state, folder / "ViT-L-14.pt")
    torch.save({"state_dict": state}, folder / "hpc.pt")
    return folder / "hpc.pt"


def hps_v1_pair(folder: Path, images: list, prompts: list[str]) -> PairTiming:
    from molebench.scoring.hps_v1 import HPSv1

    reference = reference_module("scorers-full")
    ours = HPSv1(weights=hps_v1_files(folder), batch_size=len(images))
    theirs = reference.hps_v1_reference(folder / "ViT-L-14.pt", folder / "hpc.pt")
    return _pair("hps-v1 (OpenAI CLIP ViT-L/14)", images, prompts, ours, lambda im, p: theirs([im], [p]))


def hps_v21_file(folder: Path) -> Path:
    """HPS v2.1's `HPS_v2.1_compressed.pt` at full size (open_clip ViT-H-14, seeded random weights in float16)."""
    import open_clip
    from open_clip.model import CLIP

    folder.mkdir()
    config = open_clip.get_model_config("ViT-H-14")
    checkpoint = folder / "HPS_v2.1_compressed.pt"
    torch.save({"state_dict": random_state(_on_meta(lambda: CLIP(**config)), torch.float16, SEED + 2)}, checkpoint)
    return checkpoint


def hps_pair(folder: Path, images: list, prompts: list[str]) -> tuple[PairTiming, float]:
    """The HPS v2 pair, and the seconds one `hpsv2` call spends re-reading and loading its checkpoint."""
    import open_clip

    reference = reference_module("scorers-full")
    from molebench.scoring.hps import HPSv21

    config = open_clip.get_model_config("ViT-H-14")
    checkpoint = hps_v21_file(folder)
    ours = HPSv21(weights=checkpoint, batch_size=len(images))
    ours.load()  # one ViT-H built and loaded before the reference builds the other
    theirs = reference.hps_reference(checkpoint, config)
    from hpsv2 import img_score

    try:
        timing = _pair("hps-v2.1 (open_clip ViT-H-14)", images, prompts, ours, theirs)
        start = time.perf_counter()  # what every hpsv2.score call does before it scores
        img_score.model_dict["model"].load_state_dict(torch.load(checkpoint, map_location="cpu")["state_dict"])
        return timing, time.perf_counter() - start
    finally:
        img_score.model_dict.clear()


def run(console) -> None:
    from molebench.scoring.base import release_shared_models

    reference = reference_module("scorers-full")
    reason = reference.missing_reference() or reference.missing_openai_clip()
    if reason:
        console.print(f"scorers-full: skipped — {reason}")
        return
    images, prompts = bench_inputs(N_PROMPTS, N_SEEDS)
    timings = []
    with tempfile.TemporaryDirectory(prefix="molebench-bench-") as tmp:
        for pair in (imagereward_pair, hps_v1_pair, hps_pair):  # one pair of networks in memory at a time
            result = pair(Path(tmp) / pair.__name__, images, prompts)
            release_shared_models()
            gc.collect()
            if isinstance(result, tuple):
                result, reload_s = result
            timings.append(result)
            console.print(f"  {result.name}: molebench {result.ours_s / result.n_images:.2f} s/image, reference "
                          f"{result.reference_s / result.n_images:.2f} s/image, {result.ratio:.2f}× ({load_average()})")
    hps = timings[-1]
    console.print(throughput_table(f"scorer throughput, full-size networks (random weights), {len(images)} images "
                                   f"of 512 px in one batch, {torch.get_num_threads()} torch threads", timings))
    console.print(f"ratio = reference per-image loop time / molebench batched time, best of {REPEATS} alternated runs "
                  f"each ({load_average()}): {', '.join(verdict(t.name, t.ratio, TARGET) for t in timings)} "
                  f"(target ≥ {TARGET:g}×). hpsv2 re-reads its checkpoint on every call: {reload_s:.2f} s of its "
                  f"{hps.reference_s / hps.n_images:.2f} s per image.")


CLIP_VIT_L_14: dict[str, Any] = {  # openai/clip-vit-large-patch14 config.json (transformers CLIPModel)
    "projection_dim": 768,
    "text_config": {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
                    "max_position_embeddings": 77, "vocab_size": 49408, "bos_token_id": 0, "pad_token_id": 1,
                    "eos_token_id": 2},
    "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                      "num_hidden_layers": 24, "image_size": 224, "patch_size": 14},
}


def clip_t_folder(folder: Path) -> Path:
    """`clip-t`'s folder at full size (transformers CLIPModel ViT-L/14, seeded random weights, CLIP tokenizer)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from molebench.assets.clip_tokenizer import write_clip_tokenizer

    torch.manual_seed(SEED + 3)
    CLIPModel(CLIPConfig(**CLIP_VIT_L_14)).save_pretrained(str(folder))
    write_clip_tokenizer(folder)
    CLIPImageProcessor().save_pretrained(str(folder))  # preprocessor_config.json, as in the hub repository
    return folder


def aesthetic_files(folder: Path, clip_file: Path) -> Path:
    """The aesthetic predictor's folder: a seeded random MLP head and the OpenAI CLIP ViT-L/14 file `clip_file`
    (HPS v1's base, linked, not copied)."""
    from molebench.scoring.aesthetic import CLIP_FILE, HEAD_FILE
    from molebench.scoring.aesthetic_head import AestheticHead

    folder.mkdir()
    torch.manual_seed(SEED + 4)
    torch.save(AestheticHead().state_dict(), folder / HEAD_FILE)
    (folder / CLIP_FILE).symlink_to(clip_file.resolve())
    return folder


def inception_network() -> torch.nn.Module:
    """FID's feature network (torchmetrics' `NoTrainInceptionV3`, torch-fidelity's port) at PyTorch's default
    random initialisation: the weight file is neither read nor downloaded (its loader is bypassed for this build)."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as inception
    from torchmetrics.image.fid import NoTrainInceptionV3

    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], antialias=True)
    return net.eval()
