"""`clip-t`: CLIP text-image similarity as torchmetrics' `CLIPScore` defines it, per image: 100 · max(cos, 0).

The computation is torchmetrics' (`_clip_score_update`): images go to the `CLIPProcessor` as uint8 (3, H, W)
tensors, prompts are tokenised with padding and, when longer than the text model's 77 positions, cut to 77 (the
end token is then cut too, as in torchmetrics), features are L2-normalised and the score is 100 × their dot product.
Each image's score is clamped at 0 (torchmetrics' functional `clip_score` of that one pair); the run's mean equals
torchmetrics' `CLIPScore` over the run whenever no cosine is negative (always, for real CLIP on real prompts).
Unlike torchmetrics 1.9, this runs on transformers 5.x (whose `get_*_features` return an output object) and loads
the model offline from the Hugging Face cache or a local folder.

Which CLIP: `clip-t` is OpenAI's ViT-L/14 (`openai/clip-vit-large-patch14`), torchmetrics' default and the text
encoder of SD v1.5, which MoLE builds on; the MoLE paper reports CLIP-T without naming the CLIP, and ViT-L/14 is the
most likely choice for an SD v1.5-based paper evaluated with standard tooling. `clip-t-b32` (OpenAI ViT-B/32, the
CLIP of DreamBooth's CLIP-T) is registered beside it, and any local CLIP folder can be used with
`MOLEBENCH_WEIGHTS_CLIP_T=/path` (the version label then names its weights' hash).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from molebench.assets.dtypes import torch_dtype
from molebench.assets.fetch import fetch_command
from molebench.assets.materialize import materialized, offline_status
from molebench.assets.weights import WeightsStatus, lookup_description, probe_status, resolve_snapshot, weight_hashes
from molebench.errors import MolebenchError
from molebench.registry import register_scorer
from molebench.scoring.base import Scorer, shared_model

if TYPE_CHECKING:
    import torch

CLIP_FILES = ("config.json", "preprocessor_config.json", "tokenizer_config.json", "vocab.json", "merges.txt",
              "model.safetensors")


def _features(output: Any) -> torch.Tensor:
    """transformers 4.x returns the projected features, 5.x an output object holding them as `pooler_output`."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


def clip_scores(model: Any, processor: Any, images: list[torch.Tensor], prompts: list[str]) -> torch.Tensor:
    """100 · cos(image, text) per pair, unclamped: torchmetrics' `_clip_score_update` arithmetic."""
    device = next(model.parameters()).device
    pixels = processor(images=[i.cpu() for i in images], return_tensors="pt", padding=True)["pixel_values"]
    image_features = _features(model.get_image_features(pixels.to(device, next(model.parameters()).dtype)))
    text = processor(text=prompts, return_tensors="pt", padding=True)
    limit = model.config.text_config.max_position_embeddings
    input_ids, attention_mask = text["input_ids"][..., :limit], text["attention_mask"][..., :limit]
    text_features = _features(model.get_text_features(input_ids.to(device), attention_mask.to(device)))
    image_features = image_features / image_features.norm(p=2, dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(p=2, dim=-1, keepdim=True)
    return 100 * (image_features * text_features).sum(axis=-1)


class CLIPScoreScorer(Scorer):
    """CLIP-T per image (0-100, higher = the image matches its prompt better)."""

    metrics: ClassVar[tuple[str, ...]] = ("clip_t",)
    higher_is_better: ClassVar[dict[str, bool | None]] = {"clip_t": True}
    default_batch_size = 16
    hub_id: ClassVar[str] = ""

    def folder(self) -> Path:
        return resolve_snapshot(self.registry_name, self.hub_id, local_path=self.weights, required=CLIP_FILES)

    def weights_sha256(self) -> str:
        """The model file's sha256 (the first weight file's for a folder laid out otherwise; "" when none)."""
        hashes = weight_hashes(self.folder())
        return hashes.get("model.safetensors") or next(iter(sorted(hashes.values())), "")

    @property
    def version(self) -> str:
        return f"{self.registry_name}/ckpt-{self.weights_sha256()[:12] or 'none'}/tm-v1"

    def weights_status(self) -> WeightsStatus:
        return probe_status(self.folder, lambda: lookup_description(self.registry_name, self.hub_id, self.weights),
                            fetch_command(self.hub_id, list(CLIP_FILES)))

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "clip": self.hub_id, "weights": str(self.folder()),
                "weights_sha256": self.weights_sha256()}

    def _load(self) -> None:
        folder = self.folder()
        key = ("clip-t", str(folder.resolve()), str(self.device), self.dtype)
        self.model, self.processor = shared_model(key, lambda: _load_clip(folder, self.device, self.dtype))

    def _score_batch(self, images, prompts) -> dict[str, Any]:
        import torch

        tensors = [torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1) for image in images]
        scores = clip_scores(self.model, self.processor, tensors, list(prompts)).float()
        return {"clip_t": torch.clamp(scores, min=0).cpu().numpy().astype(np.float64)}


def _load_clip(folder: Path, device: torch.device, dtype: str) -> tuple[Any, Any]:
    from transformers import CLIPModel, CLIPProcessor

    try:
        model = CLIPModel.from_pretrained(str(folder), local_files_only=True, dtype=torch_dtype(dtype))
        processor = CLIPProcessor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise MolebenchError(f"cannot load CLIP from {folder}: {exc}") from None
    return model.to(device).eval(), processor


@register_scorer("clip-t")
class CLIPTLarge(CLIPScoreScorer):
    description = "CLIP-T: 100·max(cos,0) of OpenAI CLIP ViT-L/14 image and prompt features (torchmetrics CLIPScore)"
    hub_id = "openai/clip-vit-large-patch14"


@register_scorer("clip-t-b32")
class CLIPTBase(CLIPScoreScorer):
    description = "CLIP-T with OpenAI CLIP ViT-B/32 (DreamBooth's CLIP-T model)"
    hub_id = "openai/clip-vit-base-patch32"


TINY_CLIP = {
    "projection_dim": 16,
    "text_config": {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
                    "max_position_embeddings": 77, "vocab_size": 49408, "bos_token_id": 0, "pad_token_id": 1,
                    "eos_token_id": 2},  # the OpenAI configs' ids: the end token is found by argmax, as there
    "vision_config": {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2,
                      "image_size": 224, "patch_size": 32},
}


def _build_tiny_clip(folder: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from molebench.assets.clip_tokenizer import write_clip_tokenizer

    torch.manual_seed(20240614)
    CLIPModel(CLIPConfig(**TINY_CLIP)).save_pretrained(str(folder))
    write_clip_tokenizer(folder)
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(str(folder))


@register_scorer("clip-t-tiny")
class CLIPTTiny(CLIPScoreScorer):
    description = "CLIP-T on a tiny seeded CLIP (transformers CLIPModel, saved and loaded back offline; tests)"
    hub_id = "molebench/clip-t-tiny"

    def folder(self) -> Path:
        return Path(self.weights) if self.weights else materialized("clip-t-tiny", "v1", _build_tiny_clip)

    def weights_status(self) -> WeightsStatus:
        return offline_status("clip-t-tiny", "v1")
