"""Finding a MoLE release's files in a folder, and loading its base UNet.

A MoLE folder holds the expert LoRAs and the gate file, recognised by name as the official generation scripts do
(a path containing `face` / `hand`; the gate file contains `moe` or `gate`), optionally the base: a diffusers
pipeline (`model_index.json` in the folder or in `base/`), a diffusers UNet folder (`unet/`), or one single-file
checkpoint of the fine-tuned UNet, and a fine-tuned text encoder (`text_encoder/`, or `--option
base_text_encoder=PATH`: a transformers CLIPTextModel folder or a single file, transformers-keyed or the original
SD layout `cond_stage_model.transformer.*` that kohya's fine_tune.py saves). Every file can also be named explicitly
(`--option face=PATH` etc.).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from molebench.assets.weights import WEIGHT_SUFFIXES
from molebench.errors import InputError, MissingWeightsError, MolebenchError
from molebench.models.mole.checkpoint import listing

if TYPE_CHECKING:
    import torch

GATE_MARKERS = ("moe", "gate")


class MissingMoLEWeightsError(MissingWeightsError):
    """MoLE files absent; the message says where they come from (exit code 2 like every missing-weights error)."""

    def __init__(self, message: str, repo_id: str = "", files: Sequence[str] = ()) -> None:
        self.repo_id = repo_id
        self.files = list(files)
        MolebenchError.__init__(self, message)


@dataclass
class MoLEFiles:
    root: Path | None
    experts: dict[str, Path]
    gates: Path
    pipeline: Path | None = None
    base_unet: Path | None = None
    base_text_encoder: Path | None = None
    stock_pipeline: bool = False  # the base pipeline is the hub's stock one (not from the MoLE folder or --option base)


def locate_files(root: Path | None, expert_names: Sequence[str], explicit: Mapping[str, str], what: str) -> MoLEFiles:
    """Expert and gate files (and base, if present) from `root` and the explicit per-file options."""
    roles = [*expert_names, "gates"]
    found: dict[str, Path] = {}
    for role in roles:
        if explicit.get(role):
            path = Path(explicit[role]).expanduser()
            if not path.is_file():
                raise InputError(f"{what}: --option {role}={path}: no such file")
            found[role] = path
    pipeline = _existing_dir(explicit.get("base"), "base", what)
    base_unet = _existing(explicit.get("base_unet"), "base_unet", what)
    text_encoder = _existing(explicit.get("base_text_encoder"), "base_text_encoder", what)
    leftovers: list[Path] = []
    if root is not None:
        for path in _weight_files(root):
            relative = str(path.relative_to(root)).lower()
            matched = _role_of(relative, expert_names)
            if matched is None:
                if path.parent == root:
                    leftovers.append(path)
                continue
            if matched in explicit and explicit[matched]:
                continue
            if matched in found and found[matched] != path:
                raise InputError(f"{what}: several {matched} files in {root}: {found[matched].name}, {path.name}; "
                                 f"choose one with --option {matched}=PATH")
            found[matched] = path
        if pipeline is None:
            pipeline = next((p for p in (root, root / "base") if (p / "model_index.json").is_file()), None)
        if base_unet is None and (root / "unet" / "config.json").is_file() and pipeline != root:
            base_unet = root / "unet"
        if text_encoder is None and (root / "text_encoder" / "config.json").is_file() and pipeline != root:
            text_encoder = root / "text_encoder"
        if base_unet is None and leftovers:
            if len(leftovers) > 1:
                raise InputError(f"{what}: {root} holds several unrecognised weight files "
                                 f"({listing([p.name for p in leftovers])}); name the base UNet with "
                                 "--option base_unet=PATH")
            base_unet = leftovers[0]
    missing = [role for role in roles if role not in found]
    if missing:
        where = f"in {root}" if root is not None else "(no MoLE folder given)"
        raise MissingMoLEWeightsError(
            f"missing weights for {what}: no {' / '.join(missing)} file {where}. A MoLE folder holds the kohya LoRA of "
            f"each expert (a file whose path contains {', '.join(repr(e) for e in expert_names)}) and the gate file "
            f"(path containing 'moe' or 'gate'); name files explicitly with --option "
            f"{'=PATH --option '.join(missing)}=PATH",
            files=missing,
        )
    return MoLEFiles(root, {e: found[e] for e in expert_names}, found["gates"], pipeline, base_unet, text_encoder)


def _role_of(relative: str, expert_names: Sequence[str]) -> str | None:
    if any(marker in relative for marker in GATE_MARKERS):
        return "gates"
    hits = [e for e in expert_names if e.lower() in relative]
    return hits[0] if len(hits) == 1 else None


def _weight_files(root: Path) -> list[Path]:
    """Weight files at the top of `root` and in sub-folders that are not diffusers components (no config.json)."""
    files = [p for p in sorted(root.iterdir()) if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (sub / "config.json").exists() or (sub / "model_index.json").exists():
            continue
        files += [p for p in sorted(sub.iterdir()) if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
    return files


def _existing(value: str | None, key: str, what: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise InputError(f"{what}: --option {key}={path}: no such file or folder")
    return path


def _existing_dir(value: str | None, key: str, what: str) -> Path | None:
    path = _existing(value, key, what)
    if path is not None and not (path / "model_index.json").is_file():
        raise InputError(f"{what}: --option {key}={path}: not a diffusers pipeline folder (no model_index.json)")
    return path


def component_folder(path: Path, component: str, what: str) -> Path:
    """`path` when it holds a config.json, else its `component/` subfolder (a whole pipeline folder given)."""
    folder = path if (path / "config.json").is_file() else path / component
    if not (folder / "config.json").is_file():
        raise InputError(f"{what} folder {path} has no config.json (nor {component}/config.json)")
    return folder


def load_base_unet(path: Path, pipeline: Path, dtype: torch.dtype):
    """The fine-tuned base UNet: a diffusers folder, a diffusers-keyed single file, or an original-layout checkpoint."""
    from diffusers import UNet2DConditionModel

    if path.is_dir():
        folder = component_folder(path, "unet", "base UNet")
        return UNet2DConditionModel.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True)
    from molebench.models.mole.checkpoint import read_tensors

    tensors, label = read_tensors(path, "base UNet")
    if any(key.startswith(("down_blocks.", "mid_block.", "conv_in.")) for key in tensors):
        config = UNet2DConditionModel.load_config(str(pipeline / "unet"), local_files_only=True)
        unet = UNet2DConditionModel.from_config(config)
        result = unet.load_state_dict(tensors, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise InputError(f"{label} does not fit the UNet of {pipeline}: missing {listing(result.missing_keys)}; "
                             f"unexpected {listing(result.unexpected_keys)}")
        return unet.to(dtype)
    # an original (LDM) layout checkpoint, e.g. what kohya's fine_tune.py saves: diffusers converts it
    return UNet2DConditionModel.from_single_file(str(path), config=str(pipeline), subfolder="unet", torch_dtype=dtype,
                                                 local_files_only=True)


LDM_TEXT_PREFIX = "cond_stage_model.transformer."


def load_base_text_encoder(path: Path, pipeline: Path, dtype: torch.dtype):
    """The fine-tuned text encoder: a transformers folder (or one with `text_encoder/`), or a single file keyed as
    transformers does (`text_model.*`) or as an original SD checkpoint (`cond_stage_model.transformer.*`, whose
    other keys, UNet and VAE, are left out)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    if path.is_dir():
        folder = component_folder(path, "text_encoder", "base text encoder")
        return CLIPTextModel.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True)
    from molebench.models.mole.checkpoint import read_tensors

    tensors, label = read_tensors(path, "base text encoder")
    if any(key.startswith(LDM_TEXT_PREFIX) for key in tensors):
        tensors = {key[len(LDM_TEXT_PREFIX):]: value for key, value in tensors.items()
                   if key.startswith(LDM_TEXT_PREFIX)}
    model = CLIPTextModel(CLIPTextConfig.from_pretrained(str(pipeline / "text_encoder"), local_files_only=True))
    expected = set(model.state_dict())  # with or without the `text_model.` level, by transformers version

    def fit(key: str) -> str:
        bare = key.removeprefix("text_model.")
        return bare if bare in expected else f"text_model.{bare}"

    tensors = {fit(key): value for key, value in tensors.items()}
    result = model.load_state_dict(tensors, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
    unexpected = [k for k in result.unexpected_keys if not k.endswith("position_ids")]
    if missing or unexpected:
        raise InputError(f"{label} does not fit the text encoder of {pipeline}: missing {listing(missing)}; "
                         f"unexpected {listing(unexpected)}")
    return model.to(dtype)
