"""Scale-out: generation throughput of 2 processes (`molebench run --num-processes 2`) over 1 process, tiny model.

What is measured: the same 64-image generation-only run (8 tiny-human prompts x 8 seeds, tiny SD1.5 on CPU) into a
fresh folder, once in one process (torch's default thread count) and once in two processes under
`accelerate launch` (cores shared: cores/2 threads each). The runner records, per process, the wall-clock time its
model was ready and its last image was written; throughput = images / (last image - first model ready), so process
start-up and model loading (a few seconds of imports per process) are left out. End-to-end wall times, start-up
included, are printed beside it, and a one-process run with one thread shows how far two processes are from twice
one core. Target on 2 cores: ratio >= 1.6. `MOLEBENCH_BENCH_SCALEOUT_SEEDS` (default 0-7) sets the seeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SEEDS = os.environ.get("MOLEBENCH_BENCH_SCALEOUT_SEEDS", "0-7")
PROCESSES = 2
TARGET = 1.6


def run(console: Console) -> None:
    with tempfile.TemporaryDirectory(prefix="molebench-bench-scaleout-") as tmp:
        runs = {"1": _generate(Path(tmp) / "one", 1), f"{PROCESSES}": _generate(Path(tmp) / "many", PROCESSES),
                "1 (--threads 1)": _generate(Path(tmp) / "single-thread", 1, threads=1)}
        same = _identical_images(Path(tmp) / "one", Path(tmp) / "many")
    one, many, lone = runs["1"], runs[f"{PROCESSES}"], runs["1 (--threads 1)"]
    table = Table(title=f"tiny-sd15 generation, {one['images']} images, CPU ({os.cpu_count()} cores seen)")
    for column in ("processes", "threads", "images/s after load", "generation s", "end-to-end s"):
        table.add_column(column, justify="right")
    for name, result in runs.items():
        table.add_row(name, str(result["threads"]), f"{result['images_per_s']:.3f}", f"{result['seconds']:.1f}",
                      f"{result['wall']:.1f}")
    console.print(table)
    console.print(f"{PROCESSES} processes vs {PROCESSES} x one single-thread process: "
                  f"{many['images_per_s'] / (PROCESSES * lone['images_per_s']):.2f} (1.00 = perfect scaling); "
                  f"ceiling of the ratio below, set by how much one process gains from its extra threads: "
                  f"{PROCESSES * lone['images_per_s'] / one['images_per_s']:.2f}")
    ratio = many["images_per_s"] / one["images_per_s"]
    console.print(f"throughput ratio {PROCESSES}-process / 1-process (after model load): {ratio:.2f} "
                  f"(target >= {TARGET} on 2 cores: {'met' if ratio >= TARGET else 'NOT met'}); "
                  f"end-to-end incl. start-up: {one['wall'] / many['wall']:.2f}")
    console.print(f"byte-identical images between the two runs: {same}/{one['images']} (threads per process differ "
                  "here: 1 process uses all cores; use the same --threads for bit-identical CPU runs)")


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
    manifest = json.loads((out / "manifest.json").read_text())
    timing = manifest["timings"]["generate"]
    return {"images": timing["images"], "images_per_s": timing["images_per_s"], "seconds": timing["seconds"],
            "wall": wall, "threads": manifest["device"]["torch_threads"]}


def _identical_images(a: Path, b: Path) -> int:
    return sum(1 for p in (a / "images").glob("*.png") if (b / "images" / p.name).read_bytes() == p.read_bytes())
