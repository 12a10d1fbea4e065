"""Reading MoLE's official checkpoint format: kohya LoRA files (one per expert) and the gate ("moe") file.

- expert LoRA (kohya): `lora_unet_<path>.lora_down.weight`, `.lora_up.weight`, `.alpha`; scale = alpha / rank
  (alpha missing or 0 means alpha = rank, as kohya does). Text-encoder keys (`lora_te_*`, SDXL `lora_te1_*` /
  `lora_te2_*`) are skipped with one warning: MoLE puts its experts on the UNet only (the official scripts load them
  into text-encoder LoRA modules that are never applied).
- gate file: `moe_lora_unet_<path>.softmoe.Phi_1.{weight,bias}` (local gate, one row per expert),
  `.softmoe.<expert>_scale.{weight,bias}` (global gate: face_scale, hand_scale), and optionally
  `.softmoe.experts.<i>.lora_{down,up}.weight` (copies of the experts). The official `SoftMoELayer` keeps its experts
  in a plain Python list, so its state_dict never holds such copies and its `load_state_dict(strict=False)` would drop
  them: the experts always come from the LoRA files, which were frozen while the gates trained. molebench does the
  same; copies that differ from the LoRA files get one warning naming the layers, and `expert_weights="gates"` uses
  the copies instead (alpha still comes from the LoRA files).
- experts are bound by name, never by argument order: `Phi_1` row 0 and `face_scale` belong to the face expert,
  row 1 and `hand_scale` to the hand expert (the official scripts build `[network_face, network_hand]`, picking each
  file by name); experts beyond the official two follow in alphabetical order (`expert_order`).

Files are safetensors or torch files read with `weights_only=True`. Any unknown, missing or mis-shaped key is an
`InputError` that lists the keys.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence, Union

from molebench.errors import InputError
from molebench.models.mole.names import KOHYA_UNET_PREFIX, MOLE_PREFIX

if TYPE_CHECKING:
    import torch
    from torch import Tensor

Source = Union[str, os.PathLike, Mapping[str, "Tensor"]]
OFFICIAL_EXPERTS = ("face", "hand")
EXPERT_WEIGHTS = ("lora", "gates")  # where the experts' weights come from: the LoRA files (official) or gate copies
_LORA_SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")
_TEXT_ENCODER_PREFIX = re.compile(r"^lora_te\d*_")  # lora_te_ (SD1.x/2.x), lora_te1_ / lora_te2_ (SDXL)


class MoLECheckpointWarning(UserWarning):
    """Something in the MoLE files was skipped or overridden; the message says what was used instead."""


def expert_order(names: Iterable[str]) -> tuple[str, ...]:
    """Gate-file order of the experts, by name: face, hand (the official order), then any other alphabetically."""
    names = list(names)
    return (*(n for n in OFFICIAL_EXPERTS if n in names), *sorted(n for n in names if n not in OFFICIAL_EXPERTS))


@dataclass
class LoRAWeights:
    """One kohya LoRA module: down (r×d[×k×k]), up (d_out×r[×1×1]), alpha."""

    down: Tensor
    up: Tensor
    alpha: float | None

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        alpha = self.alpha if self.alpha else self.rank
        return float(alpha) / self.rank


@dataclass
class GateWeights:
    phi_weight: Tensor
    phi_bias: Tensor
    gate_weights: list[Tensor]
    gate_biases: list[Tensor]
    copies: list[tuple[Tensor, Tensor]] | None


@dataclass
class ModuleExperts:
    """Everything one MoLE layer needs, experts in checkpoint order."""

    downs: list[Tensor]
    ups: list[Tensor]
    scales: list[float]
    phi_weight: Tensor
    phi_bias: Tensor
    gate_weight: Tensor  # (n, d_out)
    gate_bias: Tensor  # (n,)


@dataclass
class MoLECheckpoint:
    expert_names: tuple[str, ...]  # gate-file order (`expert_order`)
    modules: dict[str, ModuleExperts]  # kohya module name -> weights
    experts_from: str  # "LoRA files" or "gate file copies"


def read_tensors(source: Source, what: str) -> tuple[dict[str, Tensor], str]:
    """Tensors of a safetensors/torch file (or an in-memory mapping) and a label for messages."""
    import torch
    from torch import Tensor

    if isinstance(source, Mapping):
        return dict(source), what
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{what}: file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(path))
        else:
            tensors = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable or unsafe pickle: say which file
        raise InputError(f"{what}: cannot read {path} as safetensors or a weights-only torch file: {exc}") from None
    if not isinstance(tensors, Mapping) or not all(isinstance(v, Tensor) for v in tensors.values()):
        raise InputError(f"{what}: {path} does not hold a flat mapping of names to tensors")
    return dict(tensors), f"{what} ({path.name})"


def parse_kohya_lora(tensors: Mapping[str, Tensor], label: str) -> dict[str, LoRAWeights]:
    """kohya module name -> LoRAWeights; skips text-encoder keys (one warning), rejects anything else unknown."""
    parts: dict[str, dict[str, Tensor]] = {}
    unexpected = []
    text_encoder = 0
    for key, value in tensors.items():
        if _TEXT_ENCODER_PREFIX.match(key):
            text_encoder += 1
            continue
        suffix = next((s for s in _LORA_SUFFIXES if key.endswith(s)), None)
        if suffix is None or not key.startswith(KOHYA_UNET_PREFIX):
            unexpected.append(key)
            continue
        parts.setdefault(key[: -len(suffix)], {})[suffix] = value
    missing = [f"{m}{s}" for m, p in parts.items() for s in _LORA_SUFFIXES[:2] if s not in p]
    _fail_on(label, unexpected, missing, "kohya UNet LoRA keys are lora_unet_<path>.lora_down.weight/.lora_up.weight/.alpha")
    if not parts:
        raise InputError(f"{label}: no lora_unet_* keys")
    if text_encoder:
        warnings.warn(f"{label}: ignored {text_encoder} text-encoder key(s) (lora_te*): MoLE applies its experts to "
                      "the UNet only, as the official scripts do", MoLECheckpointWarning, stacklevel=3)
    out = {}
    for module, p in parts.items():
        down, up = p[".lora_down.weight"], p[".lora_up.weight"]
        if up.shape[1] != down.shape[0]:
            raise InputError(f"{label}: {module}: lora_up {tuple(up.shape)} does not follow lora_down {tuple(down.shape)}")
        alpha = p.get(".alpha")
        out[module] = LoRAWeights(down, up, None if alpha is None else float(alpha.float().reshape(-1)[0]))
    return out


def parse_gate_file(tensors: Mapping[str, Tensor], label: str, expert_names: Sequence[str]) -> dict[str, GateWeights]:
    """kohya module name -> GateWeights for a gate file whose experts are `expert_names` (in order)."""
    n = len(expert_names)
    required = ["Phi_1.weight", "Phi_1.bias"] + [f"{e}_scale.{p}" for e in expert_names for p in ("weight", "bias")]
    optional = [f"experts.{i}.lora_{w}.weight" for i in range(n) for w in ("down", "up")]
    allowed = set(required) | set(optional)
    pattern = re.compile(rf"^{MOLE_PREFIX}({KOHYA_UNET_PREFIX}.+?)\.softmoe\.(.+)$")
    parts: dict[str, dict[str, Tensor]] = {}
    unexpected = []
    for key, value in tensors.items():
        match = pattern.match(key)
        if not match or match.group(2) not in allowed:
            unexpected.append(key)
            continue
        parts.setdefault(match.group(1), {})[match.group(2)] = value
    missing = [f"{MOLE_PREFIX}{m}.softmoe.{r}" for m, p in parts.items() for r in required if r not in p]
    with_copies = {m for m, p in parts.items() if any(k in p for k in optional)}
    missing += [f"{MOLE_PREFIX}{m}.softmoe.{k}" for m in with_copies for k in optional if k not in parts[m]]
    if with_copies and len(with_copies) != len(parts):
        missing += [f"{MOLE_PREFIX}{m}.softmoe.experts.*" for m in sorted(set(parts) - with_copies)]
    _fail_on(label, unexpected, missing,
             f"gate keys are {MOLE_PREFIX}lora_unet_<path>.softmoe.{{{', '.join(sorted(allowed))}}}")
    if not parts:
        raise InputError(f"{label}: no {MOLE_PREFIX}lora_unet_*.softmoe.* keys")
    out = {}
    for module, p in parts.items():
        if p["Phi_1.weight"].shape[0] != n:
            raise InputError(f"{label}: {module}: Phi_1 has {p['Phi_1.weight'].shape[0]} rows for {n} experts "
                             f"({', '.join(expert_names)})")
        copies = None
        if module in with_copies:
            copies = [(p[f"experts.{i}.lora_down.weight"], p[f"experts.{i}.lora_up.weight"]) for i in range(n)]
        out[module] = GateWeights(
            p["Phi_1.weight"], p["Phi_1.bias"],
            [p[f"{e}_scale.weight"].reshape(-1) for e in expert_names],
            [p[f"{e}_scale.bias"].reshape(-1) for e in expert_names],
            copies,
        )
    return out


def load_mole_checkpoint(loras: Mapping[str, Source], gates: Source, *, expert_weights: str = "lora") -> MoLECheckpoint:
    """Read and cross-check the expert LoRA files (expert name -> file, any order) and the gate file.

    `expert_weights`: "lora" (default, as the official loader) takes the experts from the LoRA files; "gates" takes
    them from the gate file's `softmoe.experts.*` copies, which must then be present.
    """
    import torch

    if expert_weights not in EXPERT_WEIGHTS:
        raise InputError(f"expert_weights: expected one of {', '.join(EXPERT_WEIGHTS)}, got {expert_weights!r}")
    names = expert_order(loras)
    if not names:
        raise InputError("MoLE needs at least one expert LoRA file")
    experts = {}
    for name in names:
        tensors, label = read_tensors(loras[name], f"{name} LoRA")
        experts[name] = parse_kohya_lora(tensors, label)
    gate_tensors, gate_label = read_tensors(gates, "gate file")
    gate = parse_gate_file(gate_tensors, gate_label, names)
    modules = set(gate)
    for name, lora in experts.items():
        if set(lora) != modules:
            raise InputError(
                f"{name} LoRA and the gate file name different modules: only in the LoRA file: "
                f"{listing(sorted(set(lora) - modules))}; only in the gate file: {listing(sorted(modules - set(lora)))}"
            )
    has_copies = next(iter(gate.values())).copies is not None
    use_copies = expert_weights == "gates"
    if use_copies and not has_copies:
        raise InputError(f"expert_weights=gates: {gate_label} holds no expert copies (softmoe.experts.*); "
                         "use the LoRA files' weights (expert_weights=lora)")
    if has_copies:
        _check_copies(gate, experts, names, gate_label, use_copies)
    out = {}
    for module in sorted(modules):
        g = gate[module]
        files = [experts[name][module] for name in names]
        pairs = g.copies if use_copies else [(lora.down, lora.up) for lora in files]
        out[module] = ModuleExperts(
            downs=[down for down, _ in pairs], ups=[up for _, up in pairs], scales=[lora.scale for lora in files],
            phi_weight=g.phi_weight, phi_bias=g.phi_bias.reshape(-1),
            gate_weight=torch.stack(g.gate_weights), gate_bias=torch.cat(g.gate_biases),
        )
    return MoLECheckpoint(names, out, "gate file copies" if use_copies else "LoRA files")


def _check_copies(gate: dict[str, GateWeights], experts: dict[str, dict[str, LoRAWeights]], names: Sequence[str],
                  gate_label: str, use_copies: bool) -> None:
    """Compare the gate file's expert copies with the LoRA files: refuse swapped files, warn about differences."""
    first = sorted(gate)[0]
    for i, name in enumerate(names):
        lora = experts[name][first]
        others = [other for j, other in enumerate(names) if j != i and _close(gate[first].copies[j][0], lora.down)]
        if not _close(gate[first].copies[i][0], lora.down) and others:
            raise InputError(
                f"the {name} LoRA file holds the gate file's {others[0]} expert ({first}); the files look swapped — "
                f"pass the {name} expert's file as {name}"
            )
    differing = []
    for module in sorted(gate):
        changed = []
        for (down, up), name in zip(gate[module].copies, names):
            lora = experts[name][module]
            if use_copies and down.shape[0] != lora.rank:
                raise InputError(f"{module}: the gate file's {name} expert has rank {down.shape[0]}, "
                                 f"the {name} LoRA file rank {lora.rank}")
            if not (_close(down, lora.down) and _close(up, lora.up)):
                changed.append(name)
        if changed:
            differing.append(f"{module} ({', '.join(changed)})")
    if differing:
        used = ("using the gate file's copies (expert_weights=gates); the LoRA files supply alpha" if use_copies else
                "using the LoRA files' weights, as the official loader does (expert_weights=gates uses the copies)")
        warnings.warn(f"{gate_label}: its expert copies (softmoe.experts.*) differ from the LoRA files in "
                      f"{len(differing)} layer(s): {listing(differing, 5)}; {used}", MoLECheckpointWarning,
                      stacklevel=3)


def _close(a: Tensor, b: Tensor) -> bool:
    """Same weights up to 1% (relative norm): saving in fp16/bf16 changes far less, a different expert far more."""
    if a.shape != b.shape:
        return False
    a, b = a.float(), b.float()
    return bool((a - b).norm() <= 1e-2 * b.norm().clamp_min(1e-12))


def _fail_on(label: str, unexpected: list[str], missing: list[str], expected: str) -> None:
    if not unexpected and not missing:
        return
    lines = [f"{label}: keys do not match the MoLE checkpoint layout ({expected})"]
    if unexpected:
        lines.append(f"  unknown keys ({len(unexpected)}): {listing(sorted(unexpected))}")
    if missing:
        lines.append(f"  missing keys ({len(missing)}): {listing(sorted(missing))}")
    raise InputError("\n".join(lines))


def listing(items: Sequence[str], limit: int = 12) -> str:
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown + (f" … and {len(items) - limit} more" if len(items) > limit else "")
