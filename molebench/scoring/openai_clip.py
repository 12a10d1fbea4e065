"""OpenAI CLIP (the `clip` package's models, e.g. "ViT-L/14") rebuilt on open_clip, with OpenAI's preprocessing.

Several scorers of the papers molebench reproduces are OpenAI CLIP models with other weights: HPS v1 (`hpc.pt`, a
fine-tuned ViT-L/14) and the LAION aesthetic predictor (an MLP on ViT-L/14 image features). The `clip` package
they were written for pins old stacks and downloads its base weights at load time, so molebench builds the same
network with open_clip instead. Why that is the same network:

- open_clip's `CLIP` uses OpenAI's parameter names (`visual.conv1.weight`, `transformer.resblocks.N.attn.in_proj_weight`,
  `text_projection`, ...), so an OpenAI state dict loads strictly; its `ViT-L-14-quickgelu` config is ViT-L/14's
  shape with OpenAI's QuickGELU activation (plain `ViT-L-14` uses exact GELU: other numbers). The tests check
  names and shapes against the `clip` package's own model class and scores against it on shared weights.
- Preprocessing is `clip.load`'s transform: bicubic resize of the *short* side to 224 on the PIL image (PIL's
  resampler, as torchvision does for PIL input), centre crop to 224x224, RGB, [0, 1], CLIP mean/std.
- Text: open_clip's `SimpleTokenizer` is OpenAI's BPE with the same cleaning, start/end tokens and 77-token window
  (`clip.tokenize(..., truncate=True)`: a long prompt keeps its first 75 tokens and ends with the end token).
- Half precision follows `clip.load` on a GPU: linear/conv/attention weights and the projections in float16,
  LayerNorm in float32 (open_clip's `cast_dtype` + `convert_weights_to_lp`), not a blanket `.half()`.

Weights: OpenAI ships them as TorchScript archives (`ViT-L-14.pt`); `load_openai_clip_state` reads those as data
(an allow-listed unpickler, never `torch.jit.load`), besides safetensors and plain state dicts.

Two differences, both deliberate: RGBA images are composited on white before scoring (the `clip` transform drops
alpha), and images are scored in batches with per-image preprocessing in threads.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from PIL import Image

from molebench.errors import InputError
from molebench.scoring.base import map_parallel, normalize_into, to_unit_float

if TYPE_CHECKING:
    import torch

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
OPENAI_VIT_L_14 = "ViT-L-14-quickgelu"  # open_clip's config of the `clip` package's "ViT-L/14"
CONTEXT_LENGTH = 77


def openai_clip_pixels(images: list[Image.Image], size: int = 224) -> torch.Tensor:
    """`clip.load`'s preprocessing of RGB images: PIL bicubic resize of the short side to `size`, centre crop,
    [0, 1], CLIP normalisation; one image per thread (see `map_parallel`)."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    out = torch.empty(len(images), 3, size, size)

    def one(index: int) -> None:
        crop = F.center_crop(F.resize(images[index], size, InterpolationMode.BICUBIC), size)
        pixels = to_unit_float(crop, out=out[index].numpy())
        normalize_into(pixels, CLIP_MEAN, CLIP_STD, pixels)

    map_parallel(one, range(len(images)))
    return out


def openai_clip_config(name: str = OPENAI_VIT_L_14) -> dict[str, Any]:
    """open_clip's config for an OpenAI model; refuses configs without QuickGELU (they are not OpenAI's networks)."""
    import open_clip

    config = open_clip.get_model_config(name)
    if config is None or not config.get("quick_gelu"):
        raise InputError(f"open_clip config '{name}' is not an OpenAI CLIP architecture (needs quick_gelu)")
    return config


def build_openai_clip(state: dict[str, torch.Tensor], config: dict[str, Any], device: torch.device, dtype: str,
                      source: str) -> torch.nn.Module:
    """An open_clip CLIP of `config` holding exactly `state` (OpenAI key layout), in `dtype` as `clip.load` runs it.

    Every parameter must come from `state` (strict): a missing or unexpected key means another architecture, and the
    error names `source` (the file) and the keys.
    """
    import torch
    from open_clip.model import CLIP, convert_weights_to_lp

    half = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
    state = {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    with torch.device(device):  # ViT-L's random init is slow on CPU; it is overwritten by `state` anyway
        model = CLIP(**config, cast_dtype=half)
    missing, unexpected = model.load_state_dict(state, strict=False)
    wrong = [k for k, v in model.state_dict().items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise InputError(f"{source} does not fit OpenAI CLIP {config.get('vision_cfg')}: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
    model = model.to(device=device, dtype=torch.float32)
    if half is not None:
        convert_weights_to_lp(model, half)
    return model.eval()


def openai_clip_tokenizer(context_length: int = CONTEXT_LENGTH):
    """OpenAI's BPE tokenizer (`clip.tokenize(texts, context_length, truncate=True)`), as open_clip ships it."""
    import open_clip

    return open_clip.tokenizer.SimpleTokenizer(context_length=context_length)


def weight_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype images must be given in (that of the patch embedding, as `clip`'s `model.dtype`)."""
    return model.visual.conv1.weight.dtype


class _ScriptObject:
    """A TorchScript object (a scripted module) as pickled in an archive: its attributes, no behaviour."""

    attributes: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.attributes = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                    *_: Any) -> torch.Tensor:
    """`torch._utils._rebuild_tensor_v2`'s view of a storage, on the flat tensor `_ArchiveUnpickler` reads."""
    import torch

    return torch.as_strided(storage, size, stride, offset)


_STORAGE_DTYPES = {"FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
                   "DoubleStorage": "float64", "LongStorage": "int64", "IntStorage": "int32",
                   "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
                   "BoolStorage": "bool"}  # torch's storage type names -> its dtype names


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript archive's `data.pkl` without importing or running anything the archive names.

    Classes under `__torch__` (the archive's own code) become `_ScriptObject`s holding their attributes; the only
    other names allowed are torch's storage type names (read as their dtype), its tensor rebuild (replaced by an `as_strided`
    view) and `OrderedDict`; storages are read from the archive's `data/` records.
    """

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(archive.read(f"{prefix}data.pkl")))
        self.archive, self.prefix = archive, prefix
        self.storages: dict[str, torch.Tensor] = {}  # tensors that share a storage share one read

    def find_class(self, module: str, name: str) -> Any:
        import torch

        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if module == "torch" and name in _STORAGE_DTYPES:
            return getattr(torch, _STORAGE_DTYPES[name])  # persistent_load receives the dtype in the storage type's place
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights archive")

    def persistent_load(self, saved_id: Any) -> torch.Tensor:
        import torch

        kind, dtype, key, _location, _numel = saved_id
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"unknown persistent record {saved_id!r}")
        if key not in self.storages:
            raw = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
            self.storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]


def _tensors(obj: _ScriptObject, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    import torch

    for name, value in obj.attributes.items():
        if isinstance(value, torch.Tensor):
            yield prefix + name, value
        elif isinstance(value, _ScriptObject):
            yield from _tensors(value, f"{prefix}{name}.")


def read_torchscript_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensor attributes of a TorchScript archive (OpenAI's CLIP `.pt` files) by attribute path, read as data.

    `torch.jit.load` would run the archive's code, and `torch.load(weights_only=True)` refuses TorchScript archives;
    this reads only the pickled attribute tree and the raw tensor records (see `_ArchiveUnpickler`).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            prefixes = [n[: -len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(prefixes) != 1 or not any(n.startswith(prefixes[0] + "code/") for n in names):
                raise InputError(f"{path} is not a TorchScript archive")
            root = _ArchiveUnpickler(archive, prefixes[0]).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as exc:
        raise InputError(f"cannot read {path} as a TorchScript weights archive: {exc}") from None
    if not isinstance(root, _ScriptObject):
        raise InputError(f"{path} holds no TorchScript module")
    return {name: tensor.clone() for name, tensor in _tensors(root)}


def load_openai_clip_state(path: Path) -> dict[str, torch.Tensor]:
    """An OpenAI CLIP state dict from OpenAI's TorchScript file (`ViT-L-14.pt`, what `clip.load` downloads), a
    `.safetensors` file or a plain `torch.save`d state dict, all without running code from the file.

    From a TorchScript archive every tensor attribute is read except a text attention mask (a constant, not a
    weight: open_clip's own traced models carry one); anything else that does not fit the network is named by
    `build_openai_clip`'s strict load.
    """
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            scripted = any("/code/" in name for name in archive.namelist())
        if scripted:
            return {k: v for k, v in read_torchscript_state(path).items() if k.rsplit(".", 1)[-1] != "attn_mask"}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        raise InputError(f"cannot load CLIP weights {path}: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"CLIP weights {path} hold no state dict of tensors")
    return state
