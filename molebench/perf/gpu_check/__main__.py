"""`python -m molebench.perf.gpu_check` (`make gpu-check`): see molebench.perf.gpu_check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from molebench.atomic import atomic_write_text
from molebench.perf.gpu_check.check import GPU_PLAN, REDUCED_PLAN, run_check
from molebench.perf.gpu_check.report import add_gpu_hours, readme_rows, replace_block
from molebench.perf.gpu_check.sources import cached, full_sources, reduced_sources, replica_builder


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m molebench.perf.gpu_check",
                                     description="Speed, memory and precision of every real model and full-size "
                                                 "scorer on one GPU (reduced mode with tiny models on a CPU).")
    parser.add_argument("--out", default="results/gpu-check.json", help="the JSON record (default: %(default)s)")
    parser.add_argument("--readme", help="README to update between the gpu-check markers (full mode only)")
    parser.add_argument("--mode", choices=("auto", "full", "reduced"), default="auto",
                        help="auto: full on a CUDA device, reduced otherwise")
    parser.add_argument("--models", help="comma-separated subset (real or registered names)")
    parser.add_argument("--scorers", help="comma-separated subset (real or registered names)")
    parser.add_argument("--budget-s", type=float, help="seconds after which remaining rows are skipped")
    parser.add_argument("--rows-from", metavar="JSON",
                        help="measure nothing: the README rows (and --readme) from a record written earlier, also "
                             "one a run stopped at its time limit left (its rows so far)")
    parser.add_argument("--weights", choices=("replicas", "installed"), default="replicas",
                        help="full mode: build full-size replicas where no real weights are installed (48.6 GB, "
                             "once), or use only installed weights (missing ones are skipped rows)")
    return parser.parse_args(argv)


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def main(argv: list[str]) -> int:
    import dataclasses

    import torch

    args = parse(argv)
    if args.rows_from:
        return rows_from(Path(args.rows_from), args.readme)
    cuda = torch.cuda.is_available()
    mode = args.mode if args.mode != "auto" else ("full" if cuda else "reduced")
    device = torch.device("cuda" if cuda else "cpu")
    try:
        if mode == "full":
            sources = full_sources(replica_builder() if args.weights == "replicas" else cached)
        else:
            sources = reduced_sources()
        sources = sources.only(_names(args.models), _names(args.scorers))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plan = GPU_PLAN if device.type == "cuda" else REDUCED_PLAN
    if args.budget_s is not None:
        plan = dataclasses.replace(plan, budget_s=args.budget_s)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(record: dict) -> None:  # after every row too: a run stopped at its time limit keeps its rows
        atomic_write_text(out, json.dumps(record, indent=1, default=str))

    record = run_check(sources, device, plan, say=lambda line: print(line, file=sys.stderr), on_row=write)
    write(record)
    return publish(record, out, args.readme)


def publish(record: dict, out: Path, readme: str | None) -> int:
    """The rows beside the JSON (`.md`) and, for a full-mode record, in the README; exit 1 if a row failed."""
    rows = readme_rows(record)
    atomic_write_text(out.with_suffix(".md"), rows + "\n")
    print(rows)
    print(f"\nwrote {out} and {out.with_suffix('.md')}")
    if readme and record["mode"] == "full":
        atomic_write_text(Path(readme), replace_block(Path(readme).read_text(encoding="utf-8"), rows))
        print(f"updated the gpu-check rows of {readme}")
    elif readme:
        print(f"{readme} left as it is: reduced-mode figures are not GPU figures")
    failed = [r for r in record["models"] + record["scorers"] if str(r.get("status", "")).startswith("failed")]
    return 1 if failed else 0


def rows_from(path: Path, readme: str | None) -> int:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: --rows-from {path}: {exc}", file=sys.stderr)
        return 1
    add_gpu_hours(record["models"], record["scorers"], record["protocol"]["images"])
    return publish(record, path, readme)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
