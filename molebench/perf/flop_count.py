"""Counting a network's FLOPs with torch's counter, so that nothing it computes goes uncounted.

`torch.utils.flop_counter.FlopCounterMode` counts matmuls, convolutions and attention by their aten ops. Four kinds
of calls would slip past it (torch 2.14): convolutions with oneDNN-packed weights (`mkldnn::_convolution_pointwise`,
what `molebench.assets.conv_pack` and inductor's CPU freezing run; counted here with the convolution formula); the in-place forms MoLE uses to add onto the base output (`addmm_`,
`baddbmm_`, mapped here onto their out-of-place formulas); scaled-dot-product attention on the CPU, which runs as
`_scaled_dot_product_flash_attention_for_cpu` (absent from the counter's registry, counted here with its formula for
the other attention kernels: every UNet and ViT attention on a CPU); and `nn.MultiheadAttention`'s inference fast
path (open_clip's and OpenAI CLIP's transformers: one fused `_native_multi_head_attention` op that the counter does not know, which would hide about a
third of a ViT's FLOPs). The fast path is switched off while counting; the FLOPs are the same either way.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


def count_flops(step: Callable[[], Any], tokens: dict[str, int] | None = None, layers: dict | None = None) -> int:
    """FLOPs of one call of `step` and, if `tokens` is given, the tokens each MoLE layer of `layers` sees."""
    from torch.utils import flop_counter

    hooks = []
    for path, layer in (layers or {}).items() if tokens is not None else ():
        def record(module, args, path=path):
            x = args[0]
            tokens[path] = x.shape[0] * x.shape[2] * x.shape[3] if x.dim() == 4 else x.numel() // x.shape[-1]
        hooks.append(layer.register_forward_pre_hook(record))

    aten = torch.ops.aten

    def same_as(op):  # the registered formula of the out-of-place op, already shape-wrapped
        def formula(*args, **kwargs):
            return flop_counter.flop_registry[op](*args, **kwargs)
        formula._get_raw = True
        return formula

    def attention(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)

    def packed_conv(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return flop_counter.conv_flop_count(x_shape, w_shape, out_shape, transposed=False)

    counter = flop_counter.FlopCounterMode(display=False, custom_mapping={
        aten.addmm_: same_as(aten.addmm), aten.baddbmm_: same_as(aten.baddbmm),
        aten._scaled_dot_product_flash_attention_for_cpu: attention,
        torch.ops.mkldnn._convolution_pointwise: packed_conv})
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with counter:
            step()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for hook in hooks:
            hook.remove()
    return counter.get_total_flops()
