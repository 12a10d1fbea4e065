"""Detector throughput: `mediapipe-torch` (MediaPipe's networks in torch, batched; with and without its tiles) vs
`mediapipe-legacy` (mediapipe's own graphs, one image at a time), on the same 512 px photographs.

There is no ratio target: the torch detector does more work per image on purpose (its tiles search 5 windows per
image where mediapipe searches one, and it runs the face mesh on every face), so this section records what that costs
on the machine at hand (CUDA when available, else the CPU) and how much batching gives back.
"""

from __future__ import annotations

from rich.table import Table

from molebench.perf.scorers import bench_inputs, load_average, time_pair

N_PROMPTS, N_SEEDS, REPEATS = 4, 4, 3


def run(console) -> None:
    import torch

    from molebench.registry import DETECTORS

    images, _ = bench_inputs(N_PROMPTS, N_SEEDS)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch_class, legacy = DETECTORS.get("mediapipe-torch"), DETECTORS.get("mediapipe-legacy")()
    tiled = torch_class(device=device)  # default batch: 1 image on the CPU, 16 on a GPU
    single = torch_class(device=device, tiles=())

    def count(detector):
        return lambda: [len(regions) for regions in detector.detect(images)]

    timings = [time_pair(name, len(images), count(ours), count(legacy), REPEATS)
               for name, ours in (("mediapipe-torch (tiles 2)", tiled), ("mediapipe-torch (no tiles)", single))]
    table = Table(title=f"detector throughput, {len(images)} images of 512 px, torch on {device} "
                        f"(batch {tiled.batch_size})")
    for column in ("detector", "img/s", "mediapipe-legacy img/s", "legacy / torch time", "max |Δ regions|"):
        table.add_column(column, justify="left" if column == "detector" else "right")
    for t in timings:
        table.add_row(t.name, f"{t.n_images / t.ours_s:.2f}", f"{t.n_images / t.reference_s:.2f}",
                      f"{t.ratio:.2f}×", f"{t.max_diff:.0f}")
    console.print(table)
    console.print(f"best of {REPEATS} alternated runs each ({load_average()}, {torch.get_num_threads()} torch "
                  "threads); no target: the tiled detector searches 5 windows per image where mediapipe searches 1")
