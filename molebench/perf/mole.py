"""MoLE vs base UNet step time on the full-size SD1.5 UNet architecture, next to the FLOP ratio (the compute floor).

Random weights from the SD1.5 UNet config written below; rank-256 face and hand experts (alpha 64 / 128, as in the
official stage-3 command) on kohya's default targets: every attention/feed-forward linear plus the 1×1 proj_in/
proj_out convs. 256×256 images (32×32 latents), batch 2, fp32 on CPU. Base, fused MoLE and the per-expert loop are
timed in one process, interleaved round by round; FLOPs are counted by `torch.utils.flop_counter` on the same
forward passes (matmuls, convolutions, attention) and, for the experts, also derived from the layer shapes. The
per-expert loop (the literal formula, one expert after another) is slow, so it is timed once, after the rounds.

Environment: MOLEBENCH_BENCH_REPS (rounds, default 3), MOLEBENCH_BENCH_THREADS (torch threads, default 1: on
cores shared with other jobs, OpenMP threads waiting for each other swamp the measurement; every variant runs with
the same setting, and the ratios are what is reported).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable

import torch

SD15_UNET_CONFIG: dict[str, Any] = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
    act_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
)
RANKS = {"face": 256, "hand": 256}
ALPHAS = {"face": 64.0, "hand": 128.0}
TARGET = 1.10


def build(seed: int = 0):
    """SD1.5 UNet with random weights, and MoLE layers attached from a synthetic official-layout checkpoint."""
    from diffusers import UNet2DConditionModel

    from molebench.models.mole.attach import attach_mole
    from molebench.models.mole.checkpoint import load_mole_checkpoint
    from molebench.models.mole.synthetic import synthetic_checkpoint

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG).eval()
    loras, gates = synthetic_checkpoint(unet, RANKS, ALPHAS, seed=seed)
    attach_mole(unet, load_mole_checkpoint(loras, gates))
    return unet


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(console) -> None:
    reps = int(os.environ.get("MOLEBENCH_BENCH_REPS", "3"))
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("MOLEBENCH_BENCH_THREADS", "1")))
    try:
        _run(console, reps)
    finally:
        torch.set_num_threads(threads)


def _run(console, reps: int) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    console.print(f"building the SD1.5 UNet (random weights) with rank-256 face/hand experts … "
                  f"[{torch.get_num_threads()} torch threads, load average {load:.1f} on {os.cpu_count()} cores]")
    started = time.perf_counter()
    unet = build()
    built = time.perf_counter() - started
    step, variants, layers = _variants(unet)
    wall, cpu, flops, tokens = _measure(console, step, variants, layers, reps, built)
    shaped = sum(2 * tokens[p] * layer.macs_per_token()[layer.chosen_plan()] for p, layer in layers.items())
    lowrank = sum(2 * tokens[p] * layer.macs_per_token()["lowrank"] for p, layer in layers.items())
    flops["MoLE per-expert loop"] = flops["base UNet"] + lowrank  # the loop evaluates every expert in low rank
    _print_table(console, reps, wall, cpu, flops)
    _print_verdict(console, layers, wall, cpu, flops, shaped, lowrank)


def _variants(unet) -> tuple[Callable[[], torch.Tensor], dict[str, Callable[[], None]], dict]:
    """One UNet step on fixed inputs, the switches that turn the UNet into each timed variant, and its MoLE layers."""
    from molebench.models.mole.attach import detach_mole, mole_layers, reattach_mole, set_mole_mode

    layers = mole_layers(unet)
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, 32, 32, generator=g)
    text = torch.randn(2, 77, SD15_UNET_CONFIG["cross_attention_dim"], generator=g)
    timestep = torch.tensor(500)

    def step() -> torch.Tensor:
        return unet(sample, timestep, encoder_hidden_states=text).sample

    def as_base() -> None:
        detach_mole(unet)

    def as_mole(mode: str) -> Callable[[], None]:
        def switch() -> None:
            if not mole_layers(unet):
                reattach_mole(unet, layers)
            set_mole_mode(unet, mode)
        return switch

    return step, {"base UNet": as_base, "MoLE fused": as_mole("fused"), "MoLE per-expert loop": as_mole("loop")}, layers


def _measure(console, step: Callable[[], Any], variants: dict[str, Callable[[], None]], layers: dict, reps: int,
             built: float) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, int], dict[str, int]]:
    """Wall and CPU seconds per step of each variant (base and fused interleaved `reps` times, the loop once), FLOPs
    per step of base and fused, and the tokens each MoLE layer sees."""
    from molebench.perf.flop_count import count_flops

    rounds = ["base UNet", "MoLE fused"]
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    flops: dict[str, int] = {}
    tokens: dict[str, int] = {}
    with torch.inference_mode():
        started = time.perf_counter()
        for layer in layers.values():
            layer.prepare()  # merged per-expert matrices: built once per device/dtype, not part of a step
        for name in rounds:  # warm-up, and count FLOPs once per variant
            variants[name]()
            flops[name] = count_flops(step, tokens if name == "MoLE fused" else None, layers)
        console.print(f"  built in {built:.0f} s, warm-up + FLOP count {time.perf_counter() - started:.0f} s; "
                      f"timing {reps} interleaved rounds, then the loop once …")
        for name in [*rounds * reps, "MoLE per-expert loop"]:
            variants[name]()
            w, c = _timed(step)
            wall[name].append(w)
            cpu[name].append(c)
    return wall, cpu, flops, tokens


def _print_table(console, reps: int, wall: dict[str, list[float]], cpu: dict[str, list[float]],
                 flops: dict[str, int]) -> None:
    from rich.table import Table

    base_wall, base_flops = statistics.median(wall["base UNet"]), flops["base UNet"]
    table = Table(title=f"MoLE on the SD1.5 UNet: 32x32 latents, batch 2, fp32 CPU, median of {reps} (loop: 1)")
    for column in ("variant", "wall s/step", "CPU s/step", "GFLOP/step", "time ratio", "FLOP ratio"):
        table.add_column(column, justify="right" if column != "variant" else "left")
    for name in wall:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        table.add_row(name, f"{w:.2f}", f"{c:.2f}", f"{flops[name] / 1e9:.0f}", f"{w / base_wall:.2f}",
                      f"{flops[name] / base_flops:.2f}")
    console.print(table)


def _print_verdict(console, layers: dict, wall: dict[str, list[float]], cpu: dict[str, list[float]],
                   flops: dict[str, int], shaped: float, lowrank: float) -> None:
    """The fused MoLE step time against the FLOP ratio (the target), the expert FLOPs and the layers' plans."""
    base_wall, base_cpu, base_flops = (statistics.median(wall["base UNet"]), statistics.median(cpu["base UNet"]),
                                       flops["base UNet"])
    plans = [layer.chosen_plan() for layer in layers.values()]
    flop_ratio = flops["MoLE fused"] / base_flops
    time_ratio = statistics.median(wall["MoLE fused"]) / base_wall
    cpu_ratio = statistics.median(cpu["MoLE fused"]) / base_cpu
    verdict = "meets" if time_ratio <= TARGET * flop_ratio else "MISSES"
    console.print(
        f"MoLE/base step time {time_ratio:.2f} (CPU time {cpu_ratio:.2f}) vs FLOP ratio {flop_ratio:.2f}: "
        f"{time_ratio / flop_ratio:.2f}x the compute floor — {verdict} the target <= {TARGET:.2f}x\n"
        f"expert FLOPs from layer shapes: {shaped / 1e9:.0f} GFLOP with each layer's plan "
        f"(counted: {(flops['MoLE fused'] - base_flops) / 1e9:.0f}); plain low-rank evaluation would need "
        f"{lowrank / 1e9:.0f} GFLOP, FLOP ratio {(base_flops + lowrank) / base_flops:.2f}\n"
        f"plans: {plans.count('dense')} of {len(plans)} layers merged per expert (dense), "
        f"{plans.count('lowrank')} low-rank\n"
        f"fused vs per-expert loop: {statistics.median(wall['MoLE per-expert loop']) / statistics.median(wall['MoLE fused']):.2f}x "
        f"faster (wall), {statistics.median(cpu['MoLE per-expert loop']) / statistics.median(cpu['MoLE fused']):.2f}x (CPU time)\n"
        f"runs per variant (wall s): " + "; ".join(f"{k}: {', '.join(f'{v:.2f}' for v in wall[k])}" for k in wall) +
        "\nnote: the cores are shared with other jobs, so wall times are noisy; the CPU-time column is a second view."
    )
