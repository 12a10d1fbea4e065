"""HPS v1 (Wu et al., "Human Preference Score", ICCV 2023): the HPS the MoLE paper reports.

HPS v1 is OpenAI CLIP ViT-L/14 whose weights are replaced by the fine-tuned state dict `hpc.pt`
(`{"state_dict": ...}`); the score is the cosine of the L2-normalised image and text features, reported ×100
(the paper's values are about 20). The upstream evaluation (`evaluate_hps.py` in tgxs002/align_sd) builds
`clip.load("ViT-L/14")` and loads `hpc.pt` into it *strictly*: the file holds every parameter of the network, so
OpenAI's base ViT-L-14.pt only supplies the architecture there, and molebench does not need it (the network is built
from open_clip's config, see `molebench.scoring.openai_clip`).

The file is not on the Hugging Face hub. molebench finds it as `--weights`/`weights=` (a file, or a folder holding
`hpc.pt` or `hpc.pth`, the README's name), `MOLEBENCH_WEIGHTS_HPS_V1`, or the Hugging Face cache of a hub mirror the
user names with `MOLEBENCH_HUB_REPO_HPS_V1=owner/repo`; otherwise it says where the authors publish it (exit 2).

Loading is lenient in two documented ways: the state dict may sit under `state_dict` or be the whole file, and a
`module.` prefix (a DataParallel save) is stripped; the buffers `input_resolution`, `context_length` and
`vocab_size` of a TorchScript-era state dict are ignored. A file holding other pickled objects is refused with the
command that extracts its `state_dict` safely.

`hps-v1-fp16norm` (CUDA only) is `hps-v1` with the reference's last step as written: the float16 features are
normalised and multiplied in float16, as `evaluate_hps.py` does on a GPU; `hps-v1` normalises them in float32.

`hps-v1-tiny` is the same architecture at tiny width with seeded weights, saved in the `hpc.pt` layout and loaded
back through the same path (demo and tests).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from molebench.assets.fetch import fetch_command
from molebench.assets.materialize import materialized, offline_status
from molebench.assets.weights import WeightsStatus, explicit_weights, first_file, probe_status
from molebench.atomic import atomic_path
from molebench.errors import InputError, MissingExternalWeightsError
from molebench.paths import hub_mirror_env_var, weights_env_var
from molebench.registry import register_scorer
from molebench.scoring.base import TinyVersion
from molebench.scoring.hps import HPSScorer, load_hps_checkpoint
from molebench.scoring.openai_clip import (OPENAI_VIT_L_14, build_openai_clip, openai_clip_config,
                                           openai_clip_pixels)

if TYPE_CHECKING:
    import torch

HPS_V1_FILE = "hpc.pt"
HPS_V1_NAMES = (HPS_V1_FILE, "hpc.pth")  # the align_sd README calls the download hpc.pth
HPS_V1_ORIGIN = ("the OneDrive link under 'Human Preference Classifier' in the README of the GitHub repository "
                 "tgxs002/align_sd (HPS v1 project page: tgxs002.github.io/align_sd_web)")

TINY_HPS_V1_CONFIG: dict[str, Any] = {  # widths are multiples of 64: OpenAI's heads = width // 64
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 128, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2},
}


class HPSv1Scorer(HPSScorer):
    """HPS v1 arithmetic on an OpenAI CLIP: `clip.load`'s preprocessing and precision, cosine ×100 for display."""

    hps_version = "hps-v1"

    def model_config(self) -> dict[str, Any]:
        return openai_clip_config(OPENAI_VIT_L_14)

    def pixels(self, images: list[Image.Image]) -> torch.Tensor:
        return openai_clip_pixels(images, self.image_size)

    def _build(self, path: Path, dtype: torch.dtype) -> torch.nn.Module:
        return build_openai_clip(load_hps_checkpoint(path), self.model_config(), self.device, self.dtype,
                                 f"HPS v1 checkpoint {path}")


@register_scorer("hps-v1")
class HPSv1(HPSv1Scorer):
    description = ("HPS v1 (hpc.pt on OpenAI CLIP ViT-L/14; not on the HF hub: MOLEBENCH_WEIGHTS_HPS_V1); "
                   "the MoLE paper's HPS")
    default_batch_size = 32

    def checkpoint_path(self) -> Path:
        """`weights`/`MOLEBENCH_WEIGHTS_HPS_V1` (file or folder), else the named hub mirror's cache; else exit 2."""
        explicit = explicit_weights(self.registry_name, self.weights)
        if explicit is not None:
            found = first_file(explicit, HPS_V1_NAMES) if explicit.is_dir() else explicit if explicit.is_file() else None
            if found is None:
                raise MissingExternalWeightsError(self.registry_name, [HPS_V1_FILE], HPS_V1_ORIGIN,
                                                  f"{explicit} is not {' or '.join(HPS_V1_NAMES)} (nor a folder "
                                                  "holding one)")
            return found
        mirror = os.environ.get(hub_mirror_env_var(self.registry_name))
        if mirror:
            from huggingface_hub import try_to_load_from_cache

            for name in HPS_V1_NAMES:
                cached = try_to_load_from_cache(mirror, name)
                if isinstance(cached, str) and Path(cached).is_file():
                    return Path(cached)
        raise MissingExternalWeightsError(self.registry_name, [HPS_V1_FILE], HPS_V1_ORIGIN, self._hint(mirror))

    def _hint(self, mirror: str | None) -> str:
        where = f"set {weights_env_var(self.registry_name)}=/path/to/{HPS_V1_FILE}"
        if mirror:
            return (f"{mirror} (named by {hub_mirror_env_var(self.registry_name)}) has no {HPS_V1_FILE} in the local "
                    f"Hugging Face cache: run `{fetch_command(mirror, [HPS_V1_FILE])}` on a connected machine, or {where}")
        return (f"Download it there, then {where} (or a folder holding it); a Hugging Face mirror you trust can be "
                f"named with {hub_mirror_env_var(self.registry_name)}=owner/repo")

    def weights_status(self) -> WeightsStatus:
        mirror = os.environ.get(hub_mirror_env_var(self.registry_name))
        fetch = fetch_command(mirror, [HPS_V1_FILE]) if mirror else f"download {HPS_V1_FILE} from {HPS_V1_ORIGIN}"
        return probe_status(self.checkpoint_path, lambda: self._looked(mirror), fetch)

    def _looked(self, mirror: str | None) -> str:
        explicit = self.weights or os.environ.get(weights_env_var(self.registry_name))
        return str(explicit) if explicit else (
            f"${weights_env_var(self.registry_name)} (a local {HPS_V1_FILE}), else the Hugging Face cache of "
            f"${hub_mirror_env_var(self.registry_name)}" + (f" ({mirror})" if mirror else " (not set)"))


def _build_tiny_hps_v1(folder: Path) -> None:
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(20240603)
    model = CLIP(**TINY_HPS_V1_CONFIG)
    with atomic_path(folder / HPS_V1_FILE) as tmp:
        torch.save({"state_dict": model.state_dict()}, tmp)


@register_scorer("hps-v1-fp16norm")
class HPSv1Fp16Norm(HPSv1):
    description = ("HPS v1 with evaluate_hps.py's float16 feature normalisation (CUDA only; hps-v1 normalises in "
                   "float32)")
    hps_version = "hps-v1-fp16norm"

    def check_device(self) -> None:
        if self.device.type != "cuda" or self.dtype != "float16":
            raise InputError(f"{self.registry_name} reproduces evaluate_hps.py's float16 normalisation on a CUDA GPU; "
                             f"on {self.device.type} in {self.dtype} use hps-v1")

    def fingerprint(self) -> dict[str, Any]:
        self.check_device()  # a run takes every scorer's fingerprint before it writes anything
        return super().fingerprint()

    def _load(self) -> None:
        self.check_device()
        super()._load()

    def cosine(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """evaluate_hps.py: features divided by their norms and multiplied in their own dtype (float16 on a GPU),
        the diagonal of the image-text product."""
        image = image / image.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        return (image @ text.T).diagonal().float()


@register_scorer("hps-v1-tiny")
class TinyHPSv1(TinyVersion, HPSv1Scorer):
    description = "HPS v1 architecture (OpenAI CLIP on open_clip) at tiny width, seeded weights (demo and tests)"
    hps_version = "hps-v1-tiny"

    def checkpoint_path(self) -> Path:
        if self.weights:
            path = Path(self.weights)
            if not path.is_file():
                raise InputError(f"hps-v1-tiny weights file not found: {path}")
            return path
        return materialized("hps-v1-tiny", "v1", _build_tiny_hps_v1) / HPS_V1_FILE

    def model_config(self) -> dict[str, Any]:
        return TINY_HPS_V1_CONFIG

    def weights_status(self) -> WeightsStatus:
        return offline_status("hps-v1-tiny", "v1")
