"""kohya module names <-> diffusers `UNet2DConditionModel` module paths.

kohya names a LoRA module `lora_unet_` + the module's path with `.` replaced by `_`. Its SD1.x/2.x UNet uses
diffusers' paths (`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`); its SDXL UNet uses the original
(LDM/SGM) layout (`input_blocks.4.1.transformer_blocks.0.attn1.to_q`). Both spellings are derived here from the
diffusers paths of the UNet at hand, so a checkpoint of either family resolves against a diffusers UNet.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


KOHYA_UNET_PREFIX = "lora_unet_"
MOLE_PREFIX = "moe_"  # the gate file prefixes the kohya name: moe_lora_unet_<path>.softmoe.*

_RESNET_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_TOP_LDM = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
            "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
            "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"}


def kohya_name(path: str) -> str:
    """kohya's LoRA module name for a UNet module path (either layout)."""
    return KOHYA_UNET_PREFIX + path.replace(".", "_")


def ldm_path(path: str, layers_per_block: int, up_attention: list[bool]) -> str | None:
    """The original-layout (LDM/SGM) path of a diffusers UNet module path, or None if it has none."""
    step = layers_per_block + 1
    for prefix, ldm in _TOP_LDM.items():
        if path == prefix or path.startswith(prefix + "."):
            return ldm + path[len(prefix):]
    match = re.match(r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)(\.(.*))?$", path)
    if match:
        side, block, part, index, rest = match.group(1), int(match.group(2)), match.group(3), int(match.group(4)), match.group(6)
        if part == "downsamplers":
            return _join(f"input_blocks.{step * (block + 1)}.0", _sampler_rest(rest, "op"))
        if part == "upsamplers":
            slot = 2 if up_attention[block] else 1
            return _join(f"output_blocks.{step * block + layers_per_block}.{slot}", _sampler_rest(rest, "conv"))
        position = step * block + index + 1 if side == "down" else step * block + index
        group = "input_blocks" if side == "down" else "output_blocks"
        if part == "attentions":
            return _join(f"{group}.{position}.1", rest)
        return _join(f"{group}.{position}.0", _resnet_rest(rest))
    match = re.match(r"mid_block\.(resnets|attentions)\.(\d+)(\.(.*))?$", path)
    if match:
        part, index, rest = match.group(1), int(match.group(2)), match.group(4)
        if part == "attentions":
            return _join("middle_block.1", rest)
        return _join(f"middle_block.{2 * index}", _resnet_rest(rest))
    return None


def _join(head: str, rest: str | None) -> str:
    return f"{head}.{rest}" if rest else head


def _resnet_rest(rest: str | None) -> str | None:
    if not rest:
        return rest
    first, _, tail = rest.partition(".")
    return _join(_RESNET_LDM.get(first, first), tail or None)


def _sampler_rest(rest: str | None, ldm_conv: str) -> str | None:
    if not rest:
        return rest
    first, _, tail = rest.partition(".")
    return _join(ldm_conv if first == "conv" else first, tail or None)


def unet_module_index(unet: nn.Module) -> dict[str, str]:
    """kohya name -> diffusers path for every Linear/Conv2d (or attached MoLE layer) of `unet`, in both spellings."""
    from torch import nn

    config = getattr(unet, "config", None)
    layers = getattr(config, "layers_per_block", None) if config is not None else None
    up_blocks = getattr(unet, "up_blocks", [])
    up_attention = [hasattr(block, "attentions") for block in up_blocks]
    from molebench.models.mole.layer import MoLELayer

    index: dict[str, str] = {}
    wrapped: list[str] = []
    for path, module in unet.named_modules():
        if any(path.startswith(w + ".") for w in wrapped):
            continue  # the base module inside an attached MoLE layer
        if isinstance(module, MoLELayer):
            wrapped.append(path)
        elif not isinstance(module, (nn.Linear, nn.Conv2d)) or not path:
            continue
        names = [kohya_name(path)]
        if isinstance(layers, int):
            ldm = ldm_path(path, layers, up_attention)
            if ldm is not None:
                names.append(kohya_name(ldm))
        for name in names:
            if name in index and index[name] != path:
                raise ValueError(f"kohya name {name} matches both {index[name]} and {path}")
            index[name] = path
    return index
