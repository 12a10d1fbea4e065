"""Weights held in half precision, every layer computed in the run's dtype (`--option storage_dtype=...`).

Why: on a CPU without half-precision matrix units (AVX2 only) a float16/bfloat16 matmul is emulated, about 70×
slower than float32, while a full-size pipeline loaded in float32 (SDXL, PixArt-α's T5-XXL) does not fit in memory.
With this mode the pipeline is loaded in the storage dtype (memory-mapped from half-precision files, no converted
copy) and each module casts the tensors its forward touches directly (its own and its leaf children's) to the
compute dtype for the length of its call and drops the copies afterwards: only the weights of the layers being
called (one block's leaves and its ancestors' own small tensors) exist in float32 at a time, so every matmul runs
at float32 speed while memory stays at the half-precision size.

Each component also reports the compute dtype as its `.dtype`: pipelines create latents, prompt embeddings, time
ids and masks in the dtype their components report, so nothing the pipeline makes is rounded to half precision.
With weights stored as float16 files (the replicas) the results equal a float32 load of the same files up to
summation order; real float32 weights are rounded to the storage dtype, so the option is in the content key.
A module that handles compute dtypes itself (MoLE layers: `casts_own_tensors`) is left to do so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_REPORTING: dict[tuple[type, Any], type] = {}  # (component class, compute dtype) -> subclass reporting that dtype
_HOOKED_ATTR = "_molebench_compute_dtype"


def compute_in(pipe: Any, dtype: torch.dtype) -> int:
    """Hook every torch component of `pipe` to compute in `dtype`; returns the number of modules hooked.

    Components already hooked (shared with another pipeline, like the refiner's VAE) are skipped."""
    import torch

    hooked = 0
    for component in getattr(pipe, "components", {}).values():
        if not isinstance(component, torch.nn.Module) or getattr(component, _HOOKED_ATTR, None) == dtype:
            continue
        hooked += hook_module(component, dtype)
        _report_dtype(component, dtype)
        setattr(component, _HOOKED_ATTR, dtype)
    return hooked


def hook_module(root: torch.nn.Module, dtype: torch.dtype) -> int:
    """Give each module under `root` holding floating tensors in another dtype (its own, or its leaf children's) a
    cast-in/cast-back pair of hooks."""
    count = 0
    for module in root.modules():
        if not _foreign(module, dtype):
            continue
        module.register_forward_pre_hook(_pre_hook(dtype), with_kwargs=True)
        module.register_forward_hook(_restore, always_call=True)
        count += 1
    return count


def _foreign(module: torch.nn.Module, dtype: torch.dtype) -> list[tuple[dict, str]]:
    """(table, name) of the floating tensors not in `dtype` that `module`'s forward may touch directly: its own and
    its leaf children's. A parent reads its children's weights too (T5's feed-forward casts its input to
    `self.wo.weight.dtype` before calling `wo`): casting them for the parent's call keeps those reads float32."""
    owners = [child for child in module.children() if next(child.children(), None) is None]
    if not getattr(module, "casts_own_tensors", False):
        owners.append(module)
    return [(tensors, name) for owner in owners for tensors in (owner._parameters, owner._buffers)
            for name, tensor in tensors.items()
            if tensor is not None and tensor.is_floating_point() and tensor.dtype != dtype]


def _pre_hook(dtype: torch.dtype) -> Any:
    def cast_in(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        arena = _arena(dtype)
        mark, saved = arena.top, []
        for tensors, name in _foreign(module, dtype):
            saved.append((tensors, name, tensors[name]))
            tensors[name] = arena.take(tensors[name])  # a plain tensor for this call; the stored one is kept aside
        module.__dict__.setdefault("_molebench_saved", []).append((arena, mark, saved))
        return _to(args, dtype), {key: _to(value, dtype) for key, value in kwargs.items()}

    return cast_in


def _restore(module: torch.nn.Module, args: tuple, output: Any) -> None:
    """Put the stored tensors back and free their arena slots (calls nest, so slots are freed last in, first out)."""
    stack = module.__dict__.get("_molebench_saved")
    if stack:
        arena, top, saved = stack.pop()
        for tensors, name, tensor in saved:
            tensors[name] = tensor
        arena.release(top)


def _slot(numel: int) -> int:
    return -(-numel // 16) * 16  # 64-byte aligned float32 slots


class _Arena:
    """One float32 buffer the cast copies are taken from as a stack.

    Why: a fresh allocation of a layer's size is returned to the OS when freed, so every call would pay page faults
    on new memory (measured on the 2-core development machine: 9-20 s per 10⁹ weights cast into fresh tensors,
    0.5-2 s into memory already touched). The buffer grows, when no call holds it, to the most the calls took at
    once; meanwhile what does not fit is allocated as usual."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype, self.buffer, self.top, self.wanted = dtype, None, 0, 0

    def take(self, tensor: torch.Tensor) -> torch.Tensor:
        size = _slot(tensor.numel())
        self.wanted = max(self.wanted, self.top + size)
        if self.buffer is None or self.top + size > self.buffer.numel():
            self.top += size  # counted so that release() finds its mark; the copy is a plain allocation
            return tensor.to(self.dtype)
        out = self.buffer[self.top:self.top + tensor.numel()].view(tensor.shape)
        self.top += size
        return out.copy_(tensor)

    def release(self, top: int) -> None:
        self.top = top
        if top == 0 and self.wanted > (0 if self.buffer is None else self.buffer.numel()):
            import torch

            self.buffer = None  # the old buffer goes before the new one is made
            with torch.inference_mode(False):  # a normal tensor: written in and out of inference mode
                self.buffer = torch.empty(self.wanted, dtype=self.dtype)


_ARENAS: dict[Any, _Arena] = {}


def _arena(dtype: torch.dtype) -> _Arena:
    if dtype not in _ARENAS:
        _ARENAS[dtype] = _Arena(dtype)
    return _ARENAS[dtype]


def _to(value: Any, dtype: torch.dtype) -> Any:
    """Half-precision tensors (in tuples/lists) cast to `dtype`; everything else as it is."""
    import torch

    if torch.is_tensor(value):
        return value.to(dtype) if value.dtype in (torch.float16, torch.bfloat16) and value.dtype != dtype else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to(item, dtype) for item in value)
    return value


def _report_dtype(component: torch.nn.Module, dtype: torch.dtype) -> None:
    """Make `component.dtype` (a property of diffusers' and transformers' model classes) return `dtype`.

    The instance's class is swapped for a subclass of the same name that overrides only that property."""
    cls = type(component)
    if (cls, dtype) not in _REPORTING:
        _REPORTING[(cls, dtype)] = type(cls.__name__, (cls,), {"dtype": property(lambda self: dtype),
                                                               "__module__": cls.__module__,
                                                               "__qualname__": cls.__qualname__})
    component.__class__ = _REPORTING[(cls, dtype)]
