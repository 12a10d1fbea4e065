"""The LAION aesthetic predictor ("improved aesthetic predictor", v2): the aesthetic score of the MoLE paper's Table 4.

The score is a small head over the L2-normalised image embedding of OpenAI CLIP ViT-L/14 (768 values), trained on
SAC + LAION-Logos + AVA ratings to predict a 1-10 rating; the weights file is `sac+logos+ava1-l14-linearMSE.pth`.
This is the computation of the ImageReward package's `Aesthetic` score (`ImageReward.load_score("Aesthetic")`):
`clip.load("ViT-L/14")`'s preprocessing and image tower, `F.normalize` of the image features, then the head.

The head is five linear layers 768 -> 1024 -> 128 -> 64 -> 16 -> 1 with no activations between them (the upstream
code has its ReLUs commented out, so the head is affine), with dropout between the first four, which is the identity
at inference: molebench keeps only the linear layers, under the indices they have in the upstream `nn.Sequential`
(`layers.0/2/4/6/7`), so the file loads strictly (upstream loads it with strict=False).

Two files, both published outside the Hugging Face hub:
- `sac+logos+ava1-l14-linearMSE.pth`: LAION's GitHub repository christophschuhmann/improved-aesthetic-predictor
  (the ImageReward package downloads the same file from there), a plain state dict read with weights_only=True;
- `ViT-L-14.pt`: OpenAI's CLIP ViT-L/14, the TorchScript file `clip.load("ViT-L/14")` downloads. molebench reads
  its parameters without running the archive's code (`read_torchscript_state`); a `ViT-L-14.safetensors` holding
  the same state dict in OpenAI's key layout is accepted instead.
The network is rebuilt on open_clip with OpenAI's preprocessing (`molebench.scoring.openai_clip`). On a GPU the
image tower runs in float16 as `clip.load` does; features are normalised and scored in float32 (upstream
normalises in float16, then casts), so half-precision scores may differ from upstream in the last digits.

molebench looks for both files in one folder: `--weights`/`weights=`, `MOLEBENCH_WEIGHTS_AESTHETIC`, else the
folder ImageReward's `load_score("Aesthetic")` downloads them to (`~/.cache/ImageReward`); otherwise exit 2.
`aesthetic-tiny` is a tiny OpenAI-layout CLIP (768-wide embedding, so the head is the real head's shape) and a head,
seeded, saved as the real files are (a TorchScript archive and a state dict) and loaded back the same way.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image

from molebench.assets.materialize import materialized, offline_status
from molebench.assets.weights import WeightsStatus, explicit_weights, first_file, probe_status
from molebench.atomic import atomic_path
from molebench.errors import InputError, MissingExternalWeightsError
from molebench.paths import weights_env_var
from molebench.registry import register_scorer
from molebench.scoring.base import Scorer, TinyVersion, checkpoint_fields, checkpoint_label, shared_model
from molebench.scoring.openai_clip import (OPENAI_VIT_L_14, build_openai_clip, load_openai_clip_state,
                                           openai_clip_config, openai_clip_pixels, weight_dtype)

if TYPE_CHECKING:
    import torch

    from molebench.scoring.aesthetic_head import AestheticHead

HEAD_FILE = "sac+logos+ava1-l14-linearMSE.pth"
CLIP_FILE = "ViT-L-14.pt"
CLIP_NAMES = (CLIP_FILE, "ViT-L-14.safetensors")
IMAGEREWARD_DOWNLOADS = Path("~/.cache/ImageReward")  # ImageReward's default download_root for load_score
ORIGINS = {
    HEAD_FILE: "the GitHub repository christophschuhmann/improved-aesthetic-predictor (repository root; also "
               "the URL of `_SCORES['Aesthetic']` in the ImageReward package's ImageReward/utils.py)",
    CLIP_FILE: "OpenAI's CLIP release: the 'ViT-L/14' entry of `_MODELS` in clip/clip.py of the GitHub repository "
               "openai/CLIP, the file `clip.load('ViT-L/14')` downloads (sha256 b8cca3fd41ae0c99ba7e8951adf17d26"
               "7cdb84cd88be6f7c2e0eca1737a03836, part of its URL)",
}

TINY_CLIP_CONFIG: dict[str, Any] = {  # OpenAI layout (heads = width // 64); embed_dim 768 as ViT-L/14's
    "embed_dim": 768,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 128, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 1},
}


class AestheticScorer(Scorer):
    """Aesthetic rating of an image (about 1-10, higher is better); the prompt is not used."""

    metrics: ClassVar[tuple[str, ...]] = ("aesthetic",)
    higher_is_better: ClassVar[dict[str, bool]] = {"aesthetic": True}
    default_batch_size = 32
    label: ClassVar[str] = "aesthetic"

    def weight_files(self) -> tuple[Path, Path]:
        """(head file, CLIP file)."""
        raise NotImplementedError

    def model_config(self) -> dict[str, Any]:
        return openai_clip_config(OPENAI_VIT_L_14)

    @property
    def version(self) -> str:
        """`aesthetic/head-<12 hex>+clip-<12 hex>`: both files' sha256 (scores of other weights never mix)."""
        head, clip = self.weight_files()
        return checkpoint_label(self.label, {"head": head, "clip": clip})

    def _load(self) -> None:
        head_path, clip_path = self.weight_files()
        key = ("aesthetic", str(head_path.resolve()), str(clip_path.resolve()), str(self.device), self.dtype)
        self.model, self.head = shared_model(key, lambda: self._build(head_path, clip_path))
        size = self.model.visual.image_size
        self.image_size = size if isinstance(size, int) else size[0]

    def _build(self, head_path: Path, clip_path: Path) -> tuple[torch.nn.Module, AestheticHead]:
        from molebench.scoring.aesthetic_head import load_head

        config = self.model_config()
        model = build_openai_clip(load_openai_clip_state(clip_path), config, self.device, self.dtype,
                                  f"CLIP weights {clip_path}")
        return model, load_head(head_path, config["embed_dim"]).to(self.device)

    def _prepare(self, images: list[Image.Image], prompts: list[str]) -> torch.Tensor:
        return openai_clip_pixels(images, self.image_size)

    def _score_prepared(self, pixels: torch.Tensor) -> dict[str, Any]:
        import torch

        pixels = pixels.to(self.device, weight_dtype(self.model))
        embedding = torch.nn.functional.normalize(self.model.encode_image(pixels).float(), dim=-1)
        return {"aesthetic": self.head(embedding)[:, 0].cpu().numpy().astype(np.float64)}

    def fingerprint(self) -> dict[str, Any]:
        head, clip = self.weight_files()
        return {**super().fingerprint(), **checkpoint_fields(head, "head"), **checkpoint_fields(clip, "clip")}


@register_scorer("aesthetic")
class Aesthetic(AestheticScorer):
    description = ("LAION aesthetic predictor (sac+logos+ava1-l14-linearMSE.pth on OpenAI CLIP ViT-L/14 ViT-L-14.pt; "
                   "not on the HF hub: MOLEBENCH_WEIGHTS_AESTHETIC=folder); the MoLE paper's aesthetic score")

    def _folder(self) -> tuple[Path, bool]:
        """The folder to look in and whether the user named it."""
        explicit = explicit_weights(self.registry_name, self.weights)
        return (explicit, True) if explicit is not None else (IMAGEREWARD_DOWNLOADS.expanduser(), False)

    def weight_files(self) -> tuple[Path, Path]:
        folder, named = self._folder()
        head, clip = folder / HEAD_FILE, first_file(folder, CLIP_NAMES)
        missing = [name for name, found in ((HEAD_FILE, head.is_file()), (CLIP_FILE, clip is not None)) if not found]
        if missing:
            where = "; ".join(f"{name}: {ORIGINS[name]}" for name in missing)
            why = (f"{folder} is not a folder" if named and not folder.is_dir() else
                   f"{folder} lacks {' and '.join(missing)}" if named else
                   f"no folder given, and ImageReward's download folder {folder} lacks {' and '.join(missing)}")
            raise MissingExternalWeightsError(
                self.registry_name, missing, where,
                f"{why}. Put {HEAD_FILE} and {CLIP_FILE} in one folder and set "
                f"{weights_env_var(self.registry_name)}=/path/to/folder (or --weights).")
        return head, clip

    def weights_status(self) -> WeightsStatus:
        fetch = "; ".join(f"download {name} from {origin}" for name, origin in ORIGINS.items())
        return probe_status(lambda: " + ".join(map(str, self.weight_files())), self._looked, fetch)

    def _looked(self) -> str:
        folder, named = self._folder()
        return str(folder) if named else (f"${weights_env_var(self.registry_name)} (a folder holding {HEAD_FILE} and "
                                          f"{CLIP_FILE}), else {folder}")


def _build_tiny_aesthetic(folder: Path) -> None:
    """A seeded tiny CLIP saved as OpenAI ships ViT-L-14.pt (a TorchScript archive) and a seeded head state dict."""
    import torch
    from open_clip.model import CLIP

    from molebench.scoring.aesthetic_head import AestheticHead

    torch.manual_seed(20240604)
    clip = CLIP(**TINY_CLIP_CONFIG).eval()
    del clip.attn_mask  # open_clip's text mask buffer: OpenAI's archives hold parameters only (clip.load is strict)
    head = AestheticHead()
    for layer in head.layers:  # spread the scores (a default-initialised affine head is nearly constant on a tiny
        gain = 0.4 if layer.out_features == 1 else 4.0  # CLIP) to about one point, as real ratings spread
        torch.nn.init.normal_(layer.weight, std=gain * layer.in_features ** -0.5)
    with warnings.catch_warnings():  # tracing is deprecated in favour of torch.export; the file format is the point
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace_module(clip, {"encode_image": torch.zeros(1, 3, 224, 224)}, check_trace=False)
        scripted.half()  # OpenAI's archives hold float16 weights (and `clip.load` rounds any others to float16)
        with atomic_path(folder / CLIP_FILE) as tmp:
            torch.jit.save(scripted, str(tmp))
    with atomic_path(folder / HEAD_FILE) as tmp:
        torch.save(head.state_dict(), tmp)


@register_scorer("aesthetic-tiny")
class TinyAesthetic(TinyVersion, AestheticScorer):
    description = "LAION aesthetic predictor on a tiny OpenAI-layout CLIP, seeded weights (demo and tests)"
    label = "aesthetic-tiny"

    def weight_files(self) -> tuple[Path, Path]:
        folder = Path(self.weights) if self.weights else materialized("aesthetic-tiny", "v1", _build_tiny_aesthetic)
        head, clip = folder / HEAD_FILE, first_file(folder, CLIP_NAMES)
        if not head.is_file() or clip is None:
            raise InputError(f"aesthetic-tiny weights folder {folder} lacks {HEAD_FILE} or {CLIP_FILE}")
        return head, clip

    def model_config(self) -> dict[str, Any]:
        return TINY_CLIP_CONFIG

    def weights_status(self) -> WeightsStatus:
        return offline_status("aesthetic-tiny", "v1")
