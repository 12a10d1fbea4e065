"""ImageReward (THUDM/ImageReward v1.0): a BLIP-based reward model of human preference for text-to-image outputs.

Same inputs and rule as the `image-reward` package's `RM.score`: PIL bicubic resize of the short side to 224, centre
crop, CLIP normalisation; the prompt as `bert-base-uncased` tokens padded/truncated to 35; the reward
`(MLP(CLS) - 0.16717362830052426) / 1.0333394966054072`. Built on torch, timm and transformers' tokenizer, so it runs
on current stacks (the package pins transformers < 4.56 and scores one image at a time); batched here.

`imagereward-tiny` is the same network at tiny size with seeded weights and a small WordPiece vocabulary, written in
ImageReward's file layout (`ImageReward.pt`, `med_config.json`, tokenizer files) and loaded through the same path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from molebench.assets.dtypes import torch_dtype
from molebench.assets.fetch import fetch_command
from molebench.assets.materialize import materialized, offline_status
from molebench.assets.weights import (WeightsStatus, explicit_weights, lookup_description, probe_status, resolve_file,
                                      resolve_snapshot)
from molebench.atomic import atomic_path, atomic_write_json
from molebench.errors import InputError, MolebenchError
from molebench.registry import register_scorer
from molebench.scoring.base import Scorer, TinyVersion, checkpoint_fields, checkpoint_label, shared_model
from molebench.scoring.blip_config import TextConfig, VisionConfig
from molebench.scoring.openai_clip import openai_clip_pixels

if TYPE_CHECKING:
    import torch

    from molebench.scoring.blip import ImageRewardNet

IMAGEREWARD_REPO = "THUDM/ImageReward"
TOKENIZER_REPOS = ("bert-base-uncased", "google-bert/bert-base-uncased")
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072
MAX_TOKENS = 35
IMAGE_SIZE = 224


def imagereward_pixels(images: list[Image.Image]) -> torch.Tensor:
    """ImageReward's preprocessing of RGB images is OpenAI CLIP's (bicubic short-side resize and centre crop on the
    PIL image, CLIP normalisation), as the package builds it."""
    return openai_clip_pixels(images, IMAGE_SIZE)


def load_tokenizer(folder: Path):
    """BERT WordPiece tokenizer with BLIP's two extra special tokens ([DEC] bos, [ENC]), as ImageReward builds it."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(str(folder))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tokenizer


def load_reward_state(path: Path) -> dict[str, torch.Tensor]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        raise InputError(f"cannot load ImageReward checkpoint {path}: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"ImageReward checkpoint {path} holds no state dict")
    return state


def build_net(med_config: Path, vision: VisionConfig) -> ImageRewardNet:
    from molebench.scoring.blip import ImageRewardNet

    try:
        med = json.loads(Path(med_config).read_text())
        text = TextConfig.from_med_config(med, encoder_width=vision.width)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"unusable ImageReward med_config {med_config}: {exc}") from None
    return ImageRewardNet(text, vision)


class ImageRewardScorer(Scorer):
    """ImageReward's reward per (image, prompt); higher = preferred. Reported as is (no display scale)."""

    metrics: ClassVar[tuple[str, ...]] = ("imagereward",)
    higher_is_better: ClassVar[dict[str, bool | None]] = {"imagereward": True}
    paper_scale: ClassVar[dict[str, float]] = {"imagereward": 100.0}  # the MoLE paper reports IR ×100 (62.08)
    default_batch_size = 16
    label: ClassVar[str] = ""

    def files(self) -> tuple[Path, Path, Path]:
        """(checkpoint, med_config.json, tokenizer folder); raises MissingWeightsError naming what is absent."""
        raise NotImplementedError

    def vision_config(self) -> VisionConfig:
        return VisionConfig()

    @property
    def version(self) -> str:
        return checkpoint_label(self.label, self.files()[0])

    def _load(self) -> None:
        checkpoint, med_config, tokenizer_dir = self.files()
        key = ("imagereward", str(checkpoint.resolve()), str(self.device), self.dtype)
        self.net = shared_model(key, lambda: self._build(checkpoint, med_config))
        self.dtype_t = torch_dtype(self.dtype)
        self.tokenizer = shared_model(("bert-tokenizer", str(tokenizer_dir)), lambda: load_tokenizer(tokenizer_dir))

    def _build(self, checkpoint: Path, med_config: Path) -> ImageRewardNet:
        import torch

        state = load_reward_state(checkpoint)
        with torch.device(self.device):  # ViT-L + BERT-base random init is slow on CPU; fast on the GPU
            net = build_net(med_config, self.vision_config())
        wanted = net.state_dict()
        missing = sorted(k for k in wanted if k not in state)
        wrong = sorted(k for k in wanted if k in state and state[k].shape != wanted[k].shape)
        if missing or wrong:
            raise InputError(f"ImageReward checkpoint {checkpoint} does not fit the network: missing {missing[:5]}, "
                             f"wrong shape {wrong[:5]}")
        net.load_state_dict({k: state[k] for k in wanted})  # BLIP's unused heads (vision_proj, ...) are left out
        net = net.to(self.device, dtype=torch_dtype(self.dtype)).eval()
        net.mlp.float()  # the head runs in float32, as ImageReward casts the [CLS] feature to float
        return net

    def _prepare(self, images, prompts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        text = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=MAX_TOKENS,
                              return_tensors="pt")
        length = int(text["attention_mask"].sum(1).max())  # padding never reaches real tokens: drop the shared tail
        return imagereward_pixels(images), text["input_ids"][:, :length], text["attention_mask"][:, :length]

    def _score_prepared(self, prepared: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        pixels, ids, mask = prepared
        raw = self.net(pixels.to(self.device, self.dtype_t), ids.to(self.device), mask.to(self.device))
        reward = (raw.float() - REWARD_MEAN) / REWARD_STD
        return {"imagereward": reward.cpu().numpy().astype(np.float64)}

    def fingerprint(self) -> dict[str, Any]:
        checkpoint, med_config, tokenizer_dir = self.files()
        return {**super().fingerprint(), **checkpoint_fields(checkpoint),
                "med_config": str(med_config), "tokenizer": str(tokenizer_dir)}


@register_scorer("imagereward")
class ImageRewardV1(ImageRewardScorer):
    description = "ImageReward v1.0 (THUDM/ImageReward: BLIP ViT-L/16 + BERT cross-attention + MLP)"
    label = "imagereward-v1.0"

    def files(self) -> tuple[Path, Path, Path]:
        explicit = explicit_weights(self.registry_name, self.weights)
        folder = explicit.parent if explicit is not None and explicit.is_file() else explicit
        checkpoint = resolve_file(self.registry_name, IMAGEREWARD_REPO, "ImageReward.pt", local_path=explicit)
        med_config = resolve_file(self.registry_name, IMAGEREWARD_REPO, "med_config.json", local_path=folder)
        if folder is not None and (folder / "vocab.txt").exists():
            return checkpoint, med_config, folder
        return checkpoint, med_config, self._tokenizer_dir()

    def _tokenizer_dir(self) -> Path:
        first_error: MolebenchError | None = None
        for repo in TOKENIZER_REPOS:
            try:
                return resolve_snapshot(f"{self.registry_name} tokenizer", repo, required=("vocab.txt",))
            except MolebenchError as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def weights_status(self) -> WeightsStatus:
        fetch = (f"{fetch_command(IMAGEREWARD_REPO, ['ImageReward.pt', 'med_config.json'])} && "
                 f"{fetch_command(TOKENIZER_REPOS[0], ['vocab.txt', 'tokenizer_config.json', 'tokenizer.json'])}")
        return probe_status(self._found, self._looked, fetch)

    def _found(self) -> str:
        checkpoint, _, tokenizer_dir = self.files()
        return f"{checkpoint} (tokenizer {tokenizer_dir})"

    def _looked(self) -> str:
        return (f"{lookup_description(self.registry_name, IMAGEREWARD_REPO, self.weights)}; tokenizer: "
                f"{lookup_description(self.registry_name + ' tokenizer', TOKENIZER_REPOS[0])}")


# --- imagereward-tiny ----------------------------------------------------------------------------------------------
TINY_VISION = VisionConfig(image_size=224, patch_size=16, width=64, depth=2, heads=4)
TINY_WORDS = (
    "a an the of and with in on at to from by for is are his her their its man woman person people child children "
    "girl boy baby face faces hand hands finger fingers arm arms leg legs eye eyes hair head body portrait photo "
    "photograph painting picture close up closeup full smiling smile laughing standing sitting walking running "
    "holding wearing looking young old elderly beautiful detailed realistic cinematic lighting light dark red blue "
    "green black white yellow shirt dress hat glasses street city park beach room table chair book phone cat dog "
    "horse two three group family couple friends doctor chef dancer athlete playing guitar piano ball "
    "horns cup coffee camera background"
).split()


def tiny_vocab() -> list[str]:
    """A small uncased WordPiece vocabulary: BERT's specials, single characters, continuations and common words."""
    import string

    chars = string.ascii_lowercase + string.digits
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *string.punctuation, *(f"##{c}" for c in chars),
              *TINY_WORDS]
    return list(dict.fromkeys(pieces))


def _tiny_med_config(vocab_size: int) -> dict[str, Any]:
    # hidden_size stays 768: ImageReward's head is MLP(768) whatever the text width in the config says
    return {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_size": 768,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
            "max_position_embeddings": 64, "layer_norm_eps": 1e-12, "initializer_range": 0.02,
            "attention_probs_dropout_prob": 0.1, "hidden_dropout_prob": 0.1, "pad_token_id": 0,
            "type_vocab_size": 2, "vocab_size": vocab_size, "encoder_width": TINY_VISION.width,
            "add_cross_attention": True}


def _seeded_init(net: torch.nn.Module) -> None:
    """Weights that keep activations O(1) so rewards vary with the image and the prompt (tests compare them)."""
    import torch

    for name, param in net.named_parameters():
        if name.endswith("LayerNorm.weight") or ".norm" in name and name.endswith("weight"):
            torch.nn.init.normal_(param, 1.0, 0.1)
        elif param.dim() >= 2:
            torch.nn.init.normal_(param, 0.0, param[0].numel() ** -0.5)
        else:
            torch.nn.init.normal_(param, 0.0, 0.05)


def _build_tiny_imagereward(folder: Path) -> None:
    import torch

    vocab = tiny_vocab()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    atomic_write_json(folder / "tokenizer_config.json", {"do_lower_case": True, "tokenizer_class": "BertTokenizer",
                                                         "model_max_length": 512})
    atomic_write_json(folder / "med_config.json", _tiny_med_config(len(vocab) + 2))  # + [DEC], [ENC]
    atomic_write_json(folder / "vision_config.json", TINY_VISION.__dict__)
    torch.manual_seed(20240603)
    net = build_net(folder / "med_config.json", TINY_VISION)
    _seeded_init(net)
    with atomic_path(folder / "ImageReward.pt") as tmp:
        torch.save(net.state_dict(), tmp)


@register_scorer("imagereward-tiny")
class TinyImageReward(TinyVersion, ImageRewardScorer):
    description = "ImageReward architecture at tiny size, seeded weights, tiny WordPiece vocab (demo and tests)"
    label = "imagereward-tiny"

    def folder(self) -> Path:
        if self.weights:
            return Path(self.weights)
        return materialized("imagereward-tiny", "v1", _build_tiny_imagereward)

    def files(self) -> tuple[Path, Path, Path]:
        folder = self.folder()
        return folder / "ImageReward.pt", folder / "med_config.json", folder

    def vision_config(self) -> VisionConfig:
        path = self.folder() / "vision_config.json"
        try:
            return VisionConfig(**json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"unusable tiny ImageReward vision config {path}: {exc}") from None

    def weights_status(self) -> WeightsStatus:
        return offline_status("imagereward-tiny", "v1")
