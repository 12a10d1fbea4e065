"""Attach MoLE layers to a diffusers `UNet2DConditionModel` in place (and take them off again).

Each targeted `nn.Linear`/`nn.Conv2d` is replaced in its parent by a `MoLELayer` that holds the original module as
`.base`; nothing else in the UNet or pipeline changes, so schedulers, callbacks, `.to(device/dtype)` and
`enable_model_cpu_offload` work as with the plain UNet. Detach puts the original modules back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from molebench.errors import InputError, UsageError
from molebench.models.mole.checkpoint import MoLECheckpoint, listing
from molebench.models.mole.names import unet_module_index
from molebench.models.options import flag, names, numbers, option, parse_options

if TYPE_CHECKING:
    from torch import nn

    from molebench.models.mole.layer import MoLELayer


@dataclass(frozen=True)
class MoLEOptions:
    """Ablations: either gate off, fixed expert weights instead of gates (plain LoRA mixing), a subset of experts."""

    local_gate: bool = option(True, flag())
    global_gate: bool = option(True, flag())
    expert_scales: tuple[float, ...] | None = option(None, numbers())
    experts: tuple[str, ...] | None = option(None, names())

    @classmethod
    def parse(cls, options: Mapping[str, Any], expert_names: Sequence[str], *, owner: str | None = None,
              label: str = "MoLE option", known: Iterable[str] = ()) -> "MoLEOptions":
        """Check `--option` values (JSON-decoded or strings) against the checkpoint's experts; `owner`, `label` and
        `known` as in `parse_options` (a registered model passes its name, `--option` and its other keys)."""
        parsed = parse_options(cls, options, owner=owner, label=label, known=known)
        experts = parsed.experts
        if experts is not None and (not experts or set(experts) - set(expert_names)
                                    or len(set(experts)) < len(experts)):
            raise UsageError(f"{label} experts: expected distinct names from {', '.join(expert_names)}, "
                             f"got {options['experts']!r}")
        count = len(experts or expert_names)
        scales = parsed.expert_scales
        if scales is not None:
            if len(scales) == 1 and count > 1:
                scales = scales * count
            if len(scales) != count:
                raise UsageError(f"{label} expert_scales: {len(scales)} values for {count} experts")
            if {"local_gate", "global_gate"} & set(options):
                raise UsageError("expert_scales replaces both gates (plain LoRA mixing); do not combine it with "
                                 "local_gate/global_gate")
        return replace(parsed, expert_scales=scales)

    def to_json(self, expert_names: Sequence[str]) -> dict[str, Any]:
        fixed = self.expert_scales is not None
        return {
            "experts": list(self.experts or expert_names),
            "local_gate": self.local_gate and not fixed,
            "global_gate": self.global_gate and not fixed,
            "expert_scales": list(self.expert_scales) if fixed else None,
        }


def attach_mole(unet: nn.Module, checkpoint: MoLECheckpoint, options: MoLEOptions | None = None) -> list[str]:
    """Wrap every module the checkpoint names; returns the wrapped diffusers module paths."""
    from molebench.models.mole.layer import MoLELayer

    options = options or MoLEOptions()
    index = unet_module_index(unet)
    unknown = sorted(name for name in checkpoint.modules if name not in index)
    if unknown:
        raise InputError(f"the MoLE checkpoint names {len(unknown)} module(s) this UNet does not have: "
                         f"{listing(unknown)}")
    chosen = options.experts or checkpoint.expert_names
    keep = [checkpoint.expert_names.index(name) for name in chosen]
    paths = []
    for name, weights in checkpoint.modules.items():
        path = index[name]
        module = unet.get_submodule(path)
        if isinstance(module, MoLELayer):
            raise InputError(f"{path} already carries MoLE experts; detach_mole(unet) first")
        layer = MoLELayer(
            module,
            [weights.downs[i] for i in keep],
            [weights.ups[i] for i in keep],
            [weights.scales[i] for i in keep],
            weights.phi_weight[keep],
            weights.phi_bias[keep],
            weights.gate_weight[keep],
            weights.gate_bias[keep],
            expert_names=chosen,
            local_gate=options.local_gate and options.expert_scales is None,
            global_gate=options.global_gate and options.expert_scales is None,
            fixed_scales=options.expert_scales,
            name=path,
        )
        unet.set_submodule(path, layer)
        paths.append(path)
    return paths


def mole_layers(module: nn.Module) -> dict[str, MoLELayer]:
    from molebench.models.mole.layer import MoLELayer

    return {path: m for path, m in module.named_modules() if isinstance(m, MoLELayer)}


def detach_mole(unet: nn.Module) -> dict[str, MoLELayer]:
    """Put the original modules back; returns the removed layers by path (reattach with `reattach_mole`)."""
    layers = mole_layers(unet)
    for path, layer in layers.items():
        unet.set_submodule(path, layer.base)
    return layers


def reattach_mole(unet: nn.Module, layers: Mapping[str, MoLELayer]) -> None:
    for path, layer in layers.items():
        if unet.get_submodule(path) is not layer.base:
            raise InputError(f"{path} is no longer the module this MoLE layer wrapped")
        unet.set_submodule(path, layer)


def set_mole_mode(module: nn.Module, mode: str) -> None:
    """'fused' (default) or 'loop' (the per-expert reference computation) for every MoLE layer."""
    if mode not in ("fused", "loop"):
        raise InputError(f"MoLE mode must be 'fused' or 'loop', got {mode!r}")
    for layer in mole_layers(module).values():
        layer.mode = mode

