"""Seeded experts and gates written in MoLE's official key layout, for the offline tiny model and the bench.

The targets are kohya's default UNet LoRA targets: every `nn.Linear` and 1×1 `nn.Conv2d` inside a
`Transformer2DModel` or `Attention` module (proj_in/proj_out, attn1/attn2 to_q/to_k/to_v/to_out.0, ff.net.0.proj,
ff.net.2).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from molebench.models.mole.checkpoint import expert_order
from molebench.models.mole.names import MOLE_PREFIX, kohya_name

TARGET_PARENTS = ("Transformer2DModel", "Attention")


def kohya_targets(unet: nn.Module) -> list[str]:
    """Diffusers paths of the modules kohya's LoRA (without conv dims) adapts, in module order."""
    paths: dict[str, None] = {}
    for parent_path, parent in unet.named_modules():
        if type(parent).__name__ not in TARGET_PARENTS:
            continue
        for child_path, child in parent.named_modules():
            pointwise = isinstance(child, nn.Conv2d) and child.kernel_size == (1, 1)
            if child_path and (isinstance(child, nn.Linear) or pointwise):
                paths[f"{parent_path}.{child_path}" if parent_path else child_path] = None
    return list(paths)


def synthetic_checkpoint(
    unet: nn.Module,
    ranks: Mapping[str, int],
    alphas: Mapping[str, float],
    *,
    seed: int,
    up_std: float = 0.02,
    gate_std: float = 0.1,
    copies: bool = False,
) -> tuple[dict[str, dict[str, Tensor]], dict[str, Tensor]]:
    """(expert name -> kohya LoRA tensors, gate-file tensors) for every kohya target of `unet`, seeded; gate rows and
    expert copies in the gate-file order of the names (`expert_order`: face, hand, then others)."""
    generator = torch.Generator().manual_seed(seed)
    names = list(expert_order(ranks))
    loras: dict[str, dict[str, Tensor]] = {name: {} for name in names}
    gates: dict[str, Tensor] = {}
    for path in kohya_targets(unet):
        module = unet.get_submodule(path)
        d_in, d_out = module.weight.shape[1], module.weight.shape[0]
        conv = isinstance(module, nn.Conv2d)
        key = kohya_name(path)
        for i, name in enumerate(names):
            r = ranks[name]
            down = torch.randn(r, d_in, generator=generator) / d_in**0.5
            up = torch.randn(d_out, r, generator=generator) * up_std
            if conv:  # kohya stores 1×1 conv LoRA weights as 4-D
                down, up = down[:, :, None, None], up[:, :, None, None]
            loras[name][f"{key}.lora_down.weight"] = down
            loras[name][f"{key}.lora_up.weight"] = up
            loras[name][f"{key}.alpha"] = torch.tensor(float(alphas[name]))
            gates[f"{MOLE_PREFIX}{key}.softmoe.{name}_scale.weight"] = torch.randn(1, d_out, generator=generator) * gate_std
            gates[f"{MOLE_PREFIX}{key}.softmoe.{name}_scale.bias"] = torch.zeros(1)
            if copies:
                gates[f"{MOLE_PREFIX}{key}.softmoe.experts.{i}.lora_down.weight"] = down.clone()
                gates[f"{MOLE_PREFIX}{key}.softmoe.experts.{i}.lora_up.weight"] = up.clone()
        gates[f"{MOLE_PREFIX}{key}.softmoe.Phi_1.weight"] = torch.randn(len(names), d_in, generator=generator) * gate_std
        gates[f"{MOLE_PREFIX}{key}.softmoe.Phi_1.bias"] = torch.zeros(len(names))
    return loras, gates
