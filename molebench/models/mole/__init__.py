"""MoLE (Mixture of Low-rank Experts, NeurIPS 2024) as a diffusers-native component: layer, loader, models.

`load_mole(pipe, folder)` is the entry point for using MoLE in your own diffusers code; the registered models
(`mole-sd15`, `mole-sdxl`, `tiny-mole-sd15`) go through the same functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence


def load_mole(
    pipe: Any,
    folder: str | os.PathLike | None,
    *,
    files: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    expert_names: Sequence[str] | None = None,
    expert_weights: str = "lora",
    base_unet: bool = True,
) -> list[str]:
    """Attach the MoLE experts and gates of a release folder to `pipe.unet`, in place; returns the wrapped modules.

    `folder` holds the face/hand kohya LoRAs and the gate (moe) file, found by name as `molebench run` finds them
    (docs/mole.md); `files` names any of them explicitly (`{"face": PATH, "hand": PATH, "gates": PATH}`);
    `options` are the ablations (`local_gate`, `global_gate`, `expert_scales`, `experts`); `expert_weights` takes
    the experts from the LoRA files ("lora", as the official loader does) or from the gate file's copies ("gates").
    The loader's findings come as `MoLECheckpointWarning`s. When the folder also holds a fine-tuned base UNet, it
    replaces `pipe.unet` first (`base_unet=False` keeps the pipeline's own). Call it before moving the pipeline to
    a device or enabling CPU offload; `detach_mole(pipe.unet)` undoes it. Prompts are used as given: the
    registered MoLE models also add the official scripts' prompt suffix and negative prompt
    (molebench.models.prompt_text).
    """
    from molebench.models.mole.attach import MoLEOptions, attach_mole
    from molebench.models.mole.checkpoint import OFFICIAL_EXPERTS, load_mole_checkpoint
    from molebench.models.mole.files import load_base_unet, locate_files

    names = tuple(expert_names or OFFICIAL_EXPERTS)
    root = Path(folder).expanduser() if folder is not None else None
    found = locate_files(root, names, dict(files or {}), "load_mole")
    if base_unet and found.base_unet is not None:
        config_source = found.pipeline or Path(pipe.name_or_path)
        unet = load_base_unet(found.base_unet, config_source, pipe.unet.dtype)
        pipe.register_modules(unet=unet.to(pipe.unet.device))
    checkpoint = load_mole_checkpoint(dict(found.experts), found.gates, expert_weights=expert_weights)
    return attach_mole(pipe.unet, checkpoint, MoLEOptions.from_options(dict(options or {}), names))


__all__ = ["load_mole"]
