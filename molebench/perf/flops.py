"""FLOP efficiency: each full-size network's achieved FLOP/s over this machine's dense-matmul FLOP/s.

The ceiling is measured in the same process, at the same dtype (float32, what every network here runs in on a CPU)
and thread count: the best of several 2048×2048 `torch.mm` calls, measured right before and after each network's
timings (the higher kept), so that a load change on a shared machine moves both. Each network's FLOPs are counted by
`torch.utils.flop_counter.FlopCounterMode` on one forward (matmuls, convolutions, attention; elementwise work such
as norms and activations is not counted, so it shows up as lost efficiency), and its forward is timed (best of
MOLEBENCH_BENCH_REPS, default 2, after a warm-up). Efficiency = counted FLOPs / best time / ceiling.

Networks (seeded random weights at full size: the arithmetic of the real checkpoints):
- the SD1.5 UNet step and the MoLE step (rank-256 face/hand experts, fused) built by the `mole` section: 32×32
  latents (256 px), batch 2 (classifier-free guidance), each by default and with `--option conv_prepack=true`
  (convolution weights packed once for oneDNN, `molebench.assets.conv_pack`);
- every full-size scorer through its registered class on 2 images of 512 px in one batch: the network part
  (`_score_prepared`, after the CPU preprocessing) and the whole `score` call (preprocessing included), so the
  preprocessing's share is the difference; FID/KID's Inception network on its own (set scorers take features
  through the run's feature cache), as torchmetrics runs it and packed, as `fid`/`kid` run it on a CPU.

Environment: MOLEBENCH_BENCH_THREADS (default 1, as in `mole`), MOLEBENCH_BENCH_REPS, MOLEBENCH_BENCH_FLOPS (a
comma-separated subset of: unet, hps-v2.1, hps-v1, imagereward, aesthetic, clip-t, fid; default all of these, and
`unet-512`, the UNet step at SD1.5's own 64×64 latents (512 px), only when named).
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch

TARGET = 0.8
N_IMAGES = 2
MATMUL_SIZE = 2048
NETWORKS = ("unet", "hps-v2.1", "hps-v1", "imagereward", "aesthetic", "clip-t", "fid")
EXTRA = ("unet-512",)  # measured only when named: the UNet step at SD1.5's own 64×64 latents (about 4× the time)


@dataclass(frozen=True)
class Efficiency:
    """One network's counted FLOPs per call, best wall time per call, and the matmul ceiling measured right before
    and right after its timings (the higher kept: on a shared machine the load moves between rows)."""

    name: str
    flops: int
    seconds: float
    peak: float
    note: str = ""

    def rate(self) -> float:
        return self.flops / self.seconds

    def efficiency(self) -> float:
        return self.rate() / self.peak


def matmul_peak(dtype: torch.dtype = torch.float32, size: int = MATMUL_SIZE, repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` dense `size`² matmuls at `dtype` on this machine's current thread count."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=g).to(dtype) for _ in range(2))
    torch.mm(a, b)  # warm-up: first-call allocations and thread start
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size ** 3 / best


def _seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name: str, fn: Callable[[], Any], repeats: int, note: str = "") -> Efficiency:
    """Count FLOPs on one call (that is also the warm-up), then the best of `repeats` timed calls between two
    measurements of the matmul ceiling."""
    from molebench.perf.flop_count import count_flops

    with torch.inference_mode():
        flops = count_flops(fn)
        before = matmul_peak(repeats=3)
        best = min(_seconds(fn) for _ in range(repeats))
    return Efficiency(name, flops, best, max(before, matmul_peak(repeats=3)), note)


def unet_rows(repeats: int, latent: int = 32, with_mole: bool = True) -> Iterator[Efficiency]:
    """The SD1.5 UNet step and the fused MoLE step on the same network (experts detached for the base), each as
    by default and with `--option conv_prepack=true` (convolution weights packed once for oneDNN)."""
    from molebench.models.mole.attach import detach_mole, mole_layers, reattach_mole, set_mole_mode
    from molebench.perf.mole import SD15_UNET_CONFIG, build

    unet = build()
    layers = mole_layers(unet)
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, latent, latent, generator=g)
    text = torch.randn(2, 77, SD15_UNET_CONFIG["cross_attention_dim"], generator=g)

    def step() -> Any:
        return unet(sample, torch.tensor(500), encoder_hidden_states=text).sample

    with torch.inference_mode():
        for layer in layers.values():
            layer.prepare()
    detach_mole(unet)
    yield from default_and_packed(f"SD1.5 UNet step ({latent}×{latent} latents, batch 2)", unet, step, repeats)
    if not with_mole:
        return
    reattach_mole(unet, layers)
    set_mole_mode(unet, "fused")
    yield from default_and_packed("MoLE step (same UNet + rank-256 face/hand experts, fused)", unet, step, repeats)


def default_and_packed(name: str, net: torch.nn.Module, fn: Callable[[], Any], repeats: int,
                       packed_note: str = "--option conv_prepack=true") -> list[Efficiency]:
    """`fn` with `net`'s convolutions as PyTorch runs them and packed (`molebench.assets.conv_pack`), timed
    alternately (each switch followed by an untimed call, which packs), so that both rows see the same load and
    ceiling; the packed row notes the largest output difference from the default (float rounding)."""
    from molebench.assets.conv_pack import pack_convolutions, unpack_convolutions
    from molebench.perf.flop_count import count_flops

    switch = {False: unpack_convolutions, True: pack_convolutions}
    best = {False: float("inf"), True: float("inf")}
    with torch.inference_mode():
        unpack_convolutions(net)
        flops, before, peak = count_flops(fn), fn(), matmul_peak(repeats=3)
        for _ in range(repeats):
            for packed in (False, True):
                switch[packed](net)
                after = fn()
                best[packed] = min(best[packed], _seconds(fn))
        peak = max(peak, matmul_peak(repeats=3))
    unpack_convolutions(net)
    deviation = float((after - before).abs().max())
    return [Efficiency(name, flops, best[False], peak),
            Efficiency(f"{name}, packed convolutions", flops, best[True], peak,
                       f"{packed_note}; max |Δ output| vs default {deviation:.1e}")]


def scorer_rows(name: str, scorer: Any, images: list, prompts: list[str], repeats: int) -> list[Efficiency]:
    """The scorer's network part (after its CPU preprocessing) and its whole `score` call on the same batch."""
    from molebench.scoring.base import Scorer, to_rgb

    scorer.load()
    rgb = [to_rgb(im) for im in images]
    prepared = scorer._prepare(rgb, prompts)
    network = measure(f"{name}: network", lambda: scorer._score_prepared(prepared), repeats,
                      "preprocessing inside the network call" if type(scorer)._prepare is Scorer._prepare else "")
    whole = Efficiency(f"{name}: whole score()", network.flops,
                       min(_seconds(lambda: scorer.score(images, prompts)) for _ in range(repeats)),
                       max(network.peak, matmul_peak(repeats=3)), "network + preprocessing")
    return [network, whole]


def scorer_builders(tmp: Path) -> dict[str, Callable[[], Any]]:
    """Registered scorer classes pointed at full-size files with seeded random weights (built when called)."""
    from molebench.perf import scorers_full as full
    from molebench.scoring.aesthetic import Aesthetic
    from molebench.scoring.clip_score import CLIPTLarge
    from molebench.scoring.hps import HPSv21
    from molebench.scoring.hps_v1 import HPSv1
    from molebench.scoring.imagereward import ImageRewardV1

    def hps_v1_file() -> Path:
        return (tmp / "hps-v1" / "hpc.pt") if (tmp / "hps-v1").exists() else full.hps_v1_files(tmp / "hps-v1")

    return {
        "hps-v2.1": lambda: HPSv21(weights=full.hps_v21_file(tmp / "hps-v2.1"), batch_size=N_IMAGES),
        "hps-v1": lambda: HPSv1(weights=hps_v1_file(), batch_size=N_IMAGES),
        "imagereward": lambda: ImageRewardV1(weights=full.imagereward_files(tmp / "imagereward"),
                                             batch_size=N_IMAGES),
        "aesthetic": lambda: Aesthetic(weights=full.aesthetic_files(tmp / "aesthetic",
                                                                    hps_v1_file().parent / "ViT-L-14.pt"),
                                       batch_size=N_IMAGES),
        "clip-t": lambda: CLIPTLarge(weights=full.clip_t_folder(tmp / "clip-t"), batch_size=N_IMAGES),
    }


def inception_rows(images: list, repeats: int) -> Iterator[Efficiency]:
    """Inception v3 as torchmetrics runs it, then as the `fid`/`kid` scorers run it on a CPU (packed)."""
    from molebench.perf.scorers_full import inception_network
    from molebench.scoring.sets import centre_square

    net = inception_network()
    batch = torch.stack([centre_square(im) for im in images])
    yield from default_and_packed("fid/kid: Inception v3 network (299 px)", net, lambda: net(batch), repeats,
                                  "what fid/kid run on a CPU")


def run(console) -> None:
    from molebench.runner.environment import quiet_library_progress

    quiet_library_progress()
    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("MOLEBENCH_BENCH_THREADS", "1")))
    try:
        _run(console, int(os.environ.get("MOLEBENCH_BENCH_REPS", "2")))
    finally:
        torch.set_num_threads(threads)


def _chosen() -> list[str]:
    chosen = [n.strip() for n in os.environ.get("MOLEBENCH_BENCH_FLOPS", ",".join(NETWORKS)).split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(NETWORKS) - set(EXTRA))
    if unknown:
        raise ValueError(f"MOLEBENCH_BENCH_FLOPS: unknown network(s) {', '.join(unknown)}; "
                         f"known: {', '.join(NETWORKS + EXTRA)}")
    return chosen


def _run(console, repeats: int) -> None:
    from molebench.perf.scorers import bench_inputs, load_average
    from molebench.scoring.base import release_shared_models

    chosen = _chosen()
    console.print(f"dense matmul ceiling: {matmul_peak() / 1e9:.1f} GFLOP/s float32 ({MATMUL_SIZE}² torch.mm, "
                  f"{torch.get_num_threads()} threads, {load_average()}); measured again around every row")
    images, prompts = bench_inputs(1, N_IMAGES)
    rows: list[Efficiency] = []

    def add(new: Iterable[Efficiency]) -> None:
        for row in new:
            rows.append(row)
            console.print(f"  {row.name}: {row.rate() / 1e9:.1f} GFLOP/s of {row.peak / 1e9:.1f} "
                          f"({row.efficiency():.2f})")

    if "unet" in chosen:
        add(unet_rows(repeats))
        gc.collect()
    if "unet-512" in chosen:
        add(unet_rows(repeats, latent=64, with_mole=False))
        gc.collect()
    with tempfile.TemporaryDirectory(prefix="molebench-bench-flops-") as tmp:
        builders = scorer_builders(Path(tmp))
        for name in [n for n in chosen if n in builders]:
            add(scorer_rows(name, builders[name](), images, prompts, repeats))
            release_shared_models()
            gc.collect()
    if "fid" in chosen:
        add(inception_rows(images, repeats))
    console.print(efficiency_table(rows, repeats))
    console.print(summary_line(rows) + f" ({load_average()} at the end)")


def efficiency_table(rows: list[Efficiency], repeats: int) -> Any:
    from rich.table import Table

    table = Table(title=f"FLOP efficiency, float32, {torch.get_num_threads()} threads: achieved / dense-matmul "
                        f"ceiling ({MATMUL_SIZE}² torch.mm around each row; best of {repeats})")
    for column in ("network", "GFLOP/call", "s/call", "GFLOP/s", "ceiling GFLOP/s", "efficiency", "note"):
        table.add_column(column, justify="left" if column in ("network", "note") else "right")
    for row in rows:
        table.add_row(row.name, f"{row.flops / 1e9:.1f}", f"{row.seconds:.3f}", f"{row.rate() / 1e9:.1f}",
                      f"{row.peak / 1e9:.1f}", f"{row.efficiency():.2f}", row.note)
    return table


def summary_line(rows: list[Efficiency]) -> str:
    """Which networks meet the target and which is furthest from it."""
    if not rows:
        return "no network measured"
    worst = min(rows, key=lambda r: r.efficiency())
    met = [r for r in rows if r.efficiency() >= TARGET]
    return (f"target ≥ {TARGET:g} of the ceiling: met by {len(met)} of {len(rows)}; furthest: {worst.name} at "
            f"{worst.efficiency():.2f}")
