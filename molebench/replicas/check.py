"""`make check-fullsize`: every real model end to end through `molebench run` on its full-size replica, on the CPU at
reduced resolution and 2 steps, then every full-size scorer through `molebench score` on those runs.

Models whose float32 pipeline does not fit the machine's 11 GiB run with `--option storage_dtype=...`: weights held
in the dtype their replica is stored in, every layer computed in float32 (molebench.models.weight_storage); how each
model runs is its spec's `run` (molebench.replicas.specs).

Each model runs in its own process (`python -m molebench run ... --no-score`), pointed at the replicas by
`molebench.replicas.environment()` alone, so it takes the path real weights take; each scorer then runs in its own
process over every run folder (one load, the same `score_run` as `molebench score`). One network family in memory at
a time keeps the peak at one process's. Per row: load s (process start to the model ready: imports, lookup,
`from_pretrained`; for a scorer, building it), s/step (generation seconds / images / steps) or s/image, the
process's peak resident memory (`wait4`), ok. The table is printed as Markdown and saved as JSON. A model whose spec
names fewer `steps` runs those (VQ-Diffusion: 1); `fid`/`kid` compare image sets, so they score a run of their own
(`set_run`: 4 tiny-sd15 images against 4 noise images) instead of the models' one-image runs.

    python -m molebench.replicas.check [--models a,b] [--scorers a,b] [--out DIR] [--steps 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from molebench import replicas
from molebench.replicas.specs import SPECS

BENCHMARK = "tiny-human"
SCORERS = ("hps-v1", "hps-v2", "hps-v2.1", "imagereward", "aesthetic", "clip-t", "clip-t-b32", "fid", "kid")
SET_SCORERS = ("fid", "kid")  # compare >= 2 images with >= 2 reference images: scored on a run of their own
SET_IMAGES = 4


def _anonymous_kib(pid: int) -> int:
    """The process's resident anonymous memory (RssAnon): what it really holds. Peak RSS also counts pages of
    memory-mapped weight files, which the kernel can drop and read again."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> tuple[int, float, float, float, str]:
    """Run `argv`; returns (exit code, wall seconds, peak RSS and peak anonymous memory in GiB (sampled every
    0.2 s), last lines of its output)."""
    start = time.perf_counter()
    peak_anon = 0
    with open(log, "w") as handle:
        process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak_anon = max(peak_anon, _anonymous_kib(process.pid))
            time.sleep(0.2)
    process.returncode = os.waitstatus_to_exitcode(status)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return process.returncode, time.perf_counter() - start, usage.ru_maxrss / 2**20, peak_anon / 2**20, tail


def run_model(name: str, out: Path, steps: int, threads: int, env: dict[str, str]) -> dict[str, Any]:
    run = SPECS[name].run or {}
    folder = out / name
    steps = min(steps, run.get("steps", steps))  # a model too slow for the check's steps names its own
    argv = [sys.executable, "-m", "molebench", "run", "--model", name, "--benchmark", BENCHMARK, "--limit", "1",
            "--seeds", "0", "--steps", str(steps), "--size", run["size"], "--dtype", run["dtype"], "--no-score",
            "--threads", str(threads), "--out", str(folder)]
    for option in run.get("options", ()):
        argv += ["--option", option]
    code, wall, rss, anon, tail = _spawn(argv, env, out / f"{name}.log")
    row: dict[str, Any] = {"kind": "model", "name": name, "size": run["size"],
                           "dtype": run["dtype"], "options": list(run.get("options", ())), "steps": steps,
                           "wall_s": round(wall, 1),
                           "peak_rss_gib": round(rss, 2), "peak_anon_gib": round(anon, 2), "ok": code == 0}
    generate = _generation(folder) if code == 0 else None
    if generate and generate.get("seconds"):
        row["load_s"] = round(wall - generate["seconds"], 1)
        row["s_per_step"] = round(generate["seconds"] / generate["images"] / steps, 2)
    else:
        row.update(ok=False, error=tail)
    return row


def with_result(row: dict[str, Any], code: int, tail: str) -> dict[str, Any]:
    """The row with the child's last JSON line merged in, or its output tail as the error."""
    result = next((json.loads(line) for line in reversed(tail.splitlines()) if line.startswith("{")), None)
    if code == 0 and result:
        row.update(result)
    else:
        row["error"] = tail
    return row


def _generation(folder: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return ((manifest.get("history") or [{}])[-1].get("timings") or {}).get("generate")


def run_scorer(name: str, runs: list[Path], out: Path, threads: int, env: dict[str, str]) -> dict[str, Any]:
    reference: list[str] = []
    if name in SET_SCORERS:  # a run of their own (set_run), not the models' runs
        try:
            run, folder = set_run(out, env)
        except subprocess.CalledProcessError as exc:
            error = f"its {SET_IMAGES}-image tiny-sd15 run failed (exit {exc.returncode}): {out / 'set-run.log'}"
            return {"kind": "scorer", "name": name, "wall_s": 0, "peak_rss_gib": 0, "peak_anon_gib": 0, "ok": False,
                    "error": error}
        runs, reference = [run], ["--reference", str(folder)]
    argv = [sys.executable, "-m", "molebench.replicas.check", "--score-one", name, "--threads", str(threads),
            *map(str, runs), *reference]
    code, wall, rss, anon, tail = _spawn(argv, env, out / f"score-{name}.log")
    row: dict[str, Any] = {"kind": "scorer", "name": name, "wall_s": round(wall, 1), "peak_rss_gib": round(rss, 2),
                           "peak_anon_gib": round(anon, 2), "ok": False}
    return with_result(row, code, tail)


def set_run(out: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """For fid/kid: a run of SET_IMAGES images (tiny-sd15: the scorer is what is checked) and as many seeded noise
    images as the reference set; made once. The models' runs hold one image each, and the sets need two or more."""
    import numpy as np
    from PIL import Image

    run, reference = out / "set-run", out / "set-reference"
    if not (run / "manifest.json").exists():
        with open(out / "set-run.log", "w") as log:
            subprocess.run([sys.executable, "-m", "molebench", "run", "--model", "tiny-sd15", "--benchmark",
                            BENCHMARK, "--limit", str(SET_IMAGES), "--steps", "2", "--no-score", "--out", str(run)],
                           env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    reference.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(SET_IMAGES):
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(reference / f"noise-{index}.png")
    return run, reference


def score_one(name: str, runs: list[str], threads: int, reference: str | None = None) -> None:
    """In a child process: build scorer `name` once, score every run folder with it, print one JSON line."""
    import torch

    from molebench.api import get_scorer
    from molebench.runner.score_command import score_run
    from molebench.store import RunStore

    torch.set_num_threads(threads)
    start = time.perf_counter()
    get_scorer(name, device="cpu").load()  # the runs below reuse this model (molebench.scoring.base.shared_model)
    loaded = time.perf_counter()
    values, images = [], 0
    for run in runs:
        score_run(run, (name,), device="cpu", threads=threads, reference=reference)
        scores = RunStore(run).read_set_scores() if reference else RunStore(run).read_scores()
        mine = scores.loc[scores["scorer"] == name]
        values += mine["value"].tolist()
        images += int((mine["n"] + mine["n_reference"]).sum()) if reference else len(mine)  # a set: its images
    seconds = time.perf_counter() - loaded
    finite = bool(values) and all(math.isfinite(v) for v in values)
    print(json.dumps({"load_s": round(loaded - start, 1), "images": images,
                      "s_per_image": round(seconds / max(images, 1), 2), "ok": finite}))


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model / scorer | load s | s/step (model) or s/image (scorer) | peak RSS GiB (anonymous) | ok |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        if row["kind"] == "scorer":
            what = f"{row['name']} ({row.get('images', 0)} images)"
        else:
            stored = "".join(f", {o.split('=')[1]} weights" for o in row.get("options", ())
                             if o.startswith("storage_dtype="))
            what = f"{row['name']} ({row['size']}, {row['dtype']}{stored}, {row['steps']} steps)"
        speed = row.get("s_per_step", row.get("s_per_image", "—"))
        lines.append(f"| {what} | {row.get('load_s', '—')} | {speed} | {row['peak_rss_gib']} ({row['peak_anon_gib']}) | "
                     f"{'ok' if row['ok'] else 'FAILED'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m molebench.replicas.check", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(replicas.MODEL_NAMES))
    parser.add_argument("--scorers", default=",".join(SCORERS))
    parser.add_argument("--out", default="results/check-fullsize")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--score-one", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("runs", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.score_one:
        score_one(args.score_one, args.runs, args.threads, args.reference)
        return 0
    models = [m for m in args.models.split(",") if m]
    scorers = [s for s in args.scorers.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for name in [*models, *scorers]:
        print(f"replica {name}: {replicas.ensure(name)}", flush=True)
    env = {**os.environ, **replicas.environment()}
    rows = []
    for name in models:
        rows.append(run_model(name, out, args.steps, args.threads, env))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    runs = [out / row["name"] for row in rows if row["ok"]]
    for name in scorers:
        rows.append(run_scorer(name, runs, out, args.threads, env))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    total = time.perf_counter() - started
    (out / "fullsize.json").write_text(json.dumps({"rows": rows, "seconds": round(total, 1)}, indent=2))
    print(f"\n{table(rows)}\n\ncheck-fullsize: {sum(r['ok'] for r in rows)}/{len(rows)} ok in {total / 60:.1f} min "
          f"(details: {out / 'fullsize.json'}, logs in {out})")
    for row in rows:
        if not row["ok"]:
            print(f"\n{row['name']} failed:\n{row.get('error', '')}", file=sys.stderr)
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
