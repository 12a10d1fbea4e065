"""Convolutions with oneDNN weights packed once instead of on every call (float32 on a CPU).

Why: PyTorch's CPU convolution (`mkldnn_convolution`) reorders the weight from PyTorch's plain layout into oneDNN's
blocked layout on every call. Where the feature map is small and the weight large — a UNet's 1280-channel 3×3
convolutions at 4×4 to 16×16 latents, Inception's last blocks at 8×8 — that reorder costs more than the arithmetic:
measured on this project's 2-core AVX2 machine (1 thread), a [2, 1280, 4, 4] input through a 1280→1280 3×3
convolution ran at about 0.2 of the dense-matmul rate unpacked and about 0.8–1.0 packed.

`pack_convolutions(module)` switches every plain `nn.Conv2d` with zero padding given as numbers to `PackedConv2d`, a
subclass whose forward packs the weight for the input's shape on first use (oneDNN picks the blocked layout per input
shape: a weight packed for one shape and used with another is reordered again, slower than not packing) and keeps it
while shape, weight (pointer and in-place version) and thread count stay the same. oneDNN's packed convolution returns
channels_last tensors, so a packed convolution takes its input channels_last (free when the previous one was packed:
no layout copy between convolutions; 1×1 convolutions are packed too, so that a chain of them stays in that layout).
Anything else — gradients wanted, a non-CPU or non-float32 tensor — takes `nn.Conv2d`'s own path. The module's
parameters and state dict do not change; the packed copy costs one extra copy of each packed weight in memory.
Outputs differ from the unpacked path by float rounding only (another summation order inside oneDNN).
`unpack_convolutions(module)` restores the plain class and frees the packed copies.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class PackedConv2d(nn.Conv2d):
    """`nn.Conv2d` whose float32 CPU inference calls use a oneDNN weight packed for the current input shape."""

    _molebench_pack: tuple[tuple, Any] | None = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 (nn.Conv2d's signature)
        if not _packable(input, self.weight):
            return super().forward(input)
        bias = None if self.bias is None else self.bias.detach()
        return torch.ops.mkldnn._convolution_pointwise(
            input.contiguous(memory_format=torch.channels_last), self._packed_weight(input.shape), bias,
            list(self.padding), list(self.stride), list(self.dilation), self.groups, "none", [], "")

    def _packed_weight(self, shape: torch.Size) -> torch.Tensor:
        """The weight in oneDNN's layout for inputs of `shape`, packed again when shape, weight or threads change."""
        weight = self.weight
        key = (tuple(shape), weight.data_ptr(), _version(weight), torch.get_num_threads())
        if self._molebench_pack is None or self._molebench_pack[0] != key:
            self._molebench_pack = None  # free the old copy before making the new one
            packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                weight.detach().to_mkldnn(), list(self.padding), list(self.stride), list(self.dilation),
                self.groups, list(shape))
            self._molebench_pack = (key, packed)
        return self._molebench_pack[1]


def _version(tensor: torch.Tensor) -> int:
    """In-place version counter; an inference tensor has none (it cannot be changed outside inference mode)."""
    try:
        return tensor._version
    except RuntimeError:
        return -1


def _packable(input: torch.Tensor, weight: torch.Tensor) -> bool:
    wants_grad = torch.is_grad_enabled() and (input.requires_grad or weight.requires_grad)
    return (not wants_grad and input.device.type == "cpu" and input.dtype == torch.float32
            and weight.dtype == torch.float32 and input.dim() == 4)


def available() -> bool:
    """oneDNN is compiled in (every official x86/ARM CPU build of PyTorch); without it nothing is packed."""
    return torch.backends.mkldnn.is_available()


def eligible(conv: nn.Module) -> bool:
    """A plain 2-D convolution (not a subclass with its own forward) with zero padding given as numbers."""
    return type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def pack_convolutions(module: nn.Module) -> int:
    """Switch `module`'s eligible convolutions to `PackedConv2d` (in place); returns how many were switched."""
    if not available():
        return 0
    convs = [m for m in module.modules() if eligible(m)]
    for conv in convs:
        conv.__class__ = PackedConv2d
    return len(convs)


def unpack_convolutions(module: nn.Module) -> int:
    """Undo `pack_convolutions`: plain `nn.Conv2d` again, packed copies released; returns how many."""
    convs = [m for m in module.modules() if type(m) is PackedConv2d]
    for conv in convs:
        conv._molebench_pack = None
        conv.__class__ = nn.Conv2d
    return len(convs)
