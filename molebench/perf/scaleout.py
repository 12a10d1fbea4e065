"""Scale-out: generation throughput of 2 processes (`molebench run --num-processes 2`) over 1 process, tiny model.

What is measured: the same 64-image generation-only run (8 tiny-human prompts x 8 seeds, tiny SD1.5 on CPU) into a
fresh folder, in one process and in two processes under `accelerate launch`, each process with one CPU thread —
the CPU stand-in for one GPU per process, and the setting in which both runs make the same images to the byte
(checked below; CPU kernels pick their summation order by thread count). Throughput = images / (last image written
- model loaded), where the processes of a run start generating together after loading, so the few seconds of
imports and loading per process are left out; end-to-end wall times, start-up included, are printed beside it.
Target on 2 cores: ratio >= 1.6. For context the table also has one process using every core: its gain from
intra-op threads is what two processes are compared against in the last line. `MOLEBENCH_BENCH_SCALEOUT_SEEDS`
(default 0-7) sets the seeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from molebench.store import RunStore

SEEDS = os.environ.get("MOLEBENCH_BENCH_SCALEOUT_SEEDS", "0-7")
PROCESSES = 2
TARGET = 1.6


def run(console: Console) -> None:
    with tempfile.TemporaryDirectory(prefix="molebench-bench-scaleout-") as tmp:
        root = Path(tmp)
        lone = _generate(root / "one", 1, threads=1)
        many = _generate(root / "many", PROCESSES, threads=1)
        same = _identical_images(root / "one", root / "many")
        every_core = _generate(root / "every-core", 1)
    table = Table(title=f"tiny-sd15 generation, {lone['images']} images, CPU ({os.cpu_count()} cores seen)")
    for column in ("processes", "threads each", "images/s after load", "generation s", "end-to-end s"):
        table.add_column(column, justify="right")
    for name, result in (("1", lone), (str(PROCESSES), many), ("1 (every core)", every_core)):
        table.add_row(name, str(result["threads"]), f"{result['images_per_s']:.3f}", f"{result['seconds']:.1f}",
                      f"{result['wall']:.1f}")
    console.print(table)
    ratio = many["images_per_s"] / lone["images_per_s"]
    console.print(f"throughput ratio {PROCESSES}-process / 1-process, one thread per process (after model load): "
                  f"{ratio:.2f} (target >= {TARGET} on 2 cores: {'met' if ratio >= TARGET else 'NOT met'}); "
                  f"end-to-end incl. start-up: {lone['wall'] / many['wall']:.2f}")
    console.print(f"byte-identical images between the two runs: {same}/{lone['images']}")
    console.print(f"{PROCESSES} processes / 1 process using every core: "
                  f"{many['images_per_s'] / every_core['images_per_s']:.2f} (that process gains "
                  f"{every_core['images_per_s'] / lone['images_per_s']:.2f}x from its extra threads, which caps this "
                  f"ratio at {PROCESSES * lone['images_per_s'] / every_core['images_per_s']:.2f}; its images differ "
                  "in the last bits, so it is no baseline for identical results)")


def _generate(out: Path, processes: int, threads: int | None = None) -> dict[str, float]:
    command = [sys.executable, "-m", "molebench", "run", "--model", "tiny-sd15", "--benchmark", "tiny-human",
               "--seeds", SEEDS, "--no-score", "--device", "cpu", "--out", str(out)]
    if processes > 1:
        command += ["--num-processes", str(processes)]
    if threads:
        command += ["--threads", str(threads)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"bench run failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    manifest = RunStore(out).require_manifest()
    timing = manifest.timings["generate"]
    return {"images": timing["images"], "images_per_s": timing["images_per_s"], "seconds": timing["seconds"],
            "wall": wall, "threads": manifest.device["torch_threads"]}


def _identical_images(a: Path, b: Path) -> int:
    return sum(1 for p in (a / "images").glob("*.png") if (b / "images" / p.name).read_bytes() == p.read_bytes())
