"""The FLOP counter behind `make bench`'s efficiency table counts what torch's own counter misses on a CPU."""

from __future__ import annotations

import torch

from molebench.perf.flop_count import count_flops
from molebench.perf.flops import Efficiency, efficiency_table, summary_line


def test_multihead_attention_and_cpu_attention_are_counted_in_full():
    attention = torch.nn.MultiheadAttention(64, 4, batch_first=True).eval()
    x = torch.randn(2, 10, 64)
    tokens = 2 * 10
    projections = 2 * tokens * 64 * 64 * 4  # q, k, v and out projections
    scores_and_mix = 2 * (2 * 2 * 4 * 10 * 10 * 16)  # q·kᵀ and p·v per head
    with torch.inference_mode():
        assert count_flops(lambda: attention(x, x, x, need_weights=False)) == projections + scores_and_mix
        assert torch.backends.mha.get_fastpath_enabled()  # restored after counting
        q = torch.randn(2, 4, 10, 16)
        assert count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q)) == scores_and_mix


def test_in_place_matmuls_count_like_their_out_of_place_forms():
    a, b, c = torch.randn(8, 16), torch.randn(16, 32), torch.randn(8, 32)
    assert count_flops(lambda: c.addmm_(a, b)) == count_flops(lambda: torch.addmm(c, a, b)) == 2 * 8 * 16 * 32


def test_efficiency_rows_name_the_furthest_network():
    rows = [Efficiency("unet", 10 ** 9, 0.1, 2e10), Efficiency("vit", 10 ** 9, 0.5, 1e10, "note")]
    assert rows[0].efficiency() == 0.5 and rows[1].rate() == 2e9
    line = summary_line(rows)
    assert "met by 0 of 2" in line and "furthest: vit at 0.20" in line
    assert efficiency_table(rows, 2).row_count == 2


def test_default_and_packed_rows_time_the_same_network_both_ways():
    from molebench.assets.conv_pack import PackedConv2d
    from molebench.perf.flops import default_and_packed

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 4, 3)).eval()
    x = torch.randn(1, 3, 10, 10)
    plain, packed = default_and_packed("tiny", net, lambda: net(x), repeats=1)
    assert plain.flops == packed.flops == 2 * 10 * 10 * 8 * 3 * 9 + 2 * 8 * 8 * 4 * 8 * 9
    assert plain.peak == packed.peak and packed.name == "tiny, packed convolutions"
    assert "max |Δ output| vs default" in packed.note
    assert not any(isinstance(m, PackedConv2d) for m in net)  # left as found
