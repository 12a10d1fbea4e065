"""`molebench run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from molebench.errors import UsageError
from molebench.runner.config import MAX_SEEDS, RunConfig
from molebench.runner.preflight import check_run_weights

NUM_PROCESSES_HELP = ("run in N processes on this machine via `accelerate launch` (one per GPU; on CPU the cores are "
                      "shared); for several machines use `accelerate launch -m molebench ...`, see docs/scale-out.md")
REFERENCE_HELP = ("real images for set-level scorers (fid, kid): a folder or zip; for coco-human the COCO val2014 "
                  "images (picked by the captions' image_id)")
WAIT_HELP = "if another command is writing the run folder, wait for it instead of stopping (exit 2)"
PROTOCOL_HELP = ("'paper': the MoLE paper's protocol, 3 random samples of 3,000 prompts (sample seeds 0, 1, 2), "
                 "reported per repeat and as mean ± s.e. in the paper's units (see docs/benchmarks.md)")
REGIONS_HELP = ("also score face and/or hand crops with every whole-image scorer: face, hand or face,hand "
                "(adds NAME@face, NAME@hand)")
THREADS_HELP = "CPU threads per process (default: torch's choice; cores / processes when several run on one machine)"


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)


def run_command(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", "-m", help="registered model name (see `molebench models`)"),
    benchmark: str = typer.Option("tiny-human", "--benchmark", "-b", help="registered benchmark name"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="use only the first N prompts"),
    seeds: str = typer.Option("0", "--seeds", help="comma list or range of seeds, e.g. 0,1 or 0-3"),
    batch_size: int = typer.Option(1, "--batch-size", min=1, help="images per generation batch"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="denoising steps (model default)"),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="classifier-free guidance scale"),
    size: Optional[str] = typer.Option(None, "--size", help="WxH, e.g. 512x512 (model default)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="diffusers scheduler class name"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N]"),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, float16 or bfloat16"),
    scorers: Optional[str] = typer.Option(None, "--scorers", help="comma list of scorers (model default)"),
    no_score: bool = typer.Option(False, "--no-score", help="generate only; score later with `molebench score`"),
    scorer_batch_size: Optional[int] = typer.Option(None, "--scorer-batch-size", min=1),
    regions: Optional[str] = typer.Option(None, "--regions", help=REGIONS_HELP),
    out: Optional[str] = typer.Option(None, "--out", help="run folder (default results/MODEL__BENCH__HASH)"),
    weights: Optional[str] = typer.Option(None, "--weights", help="local weights folder/file for the model"),
    reference: Optional[str] = typer.Option(None, "--reference", help=REFERENCE_HELP),
    option: List[str] = typer.Option([], "--option", "-o", help="model option KEY=VALUE (repeatable)"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
    num_processes: int = typer.Option(1, "--num-processes", min=1, help=NUM_PROCESSES_HELP),
    wait: bool = typer.Option(False, "--wait", help=WAIT_HELP),
    protocol: Optional[str] = typer.Option(None, "--protocol", help=PROTOCOL_HELP),
    sample_size: Optional[int] = typer.Option(None, "--sample-size", min=1,
                                              help="prompts per repeat under --protocol (paper: 3000)"),
) -> None:
    """Generate images for a benchmark, score them, store and summarise (resumes an interrupted run)."""
    options = {name: value for name, value in locals().items() if name != "ctx"}  # the parameters, as given
    config = config_from_options(options)
    check_run_weights(config)  # every missing weights file named in about a second, before torch is imported
    if num_processes > 1:
        relaunch(ctx, num_processes, out, wait)
        return
    from molebench.runner.run_command import run

    run(config, wait=wait)


def config_from_options(options: dict[str, Any]) -> RunConfig:
    """The RunConfig of `molebench run`'s options (text turned into values; RunConfig checks them)."""
    no_score, scorers, reference = options["no_score"], options["scorers"], options["reference"]
    if no_score and scorers:
        raise UsageError("--no-score and --scorers contradict each other; give one")
    if scorers is not None and not scorers.strip(", "):
        raise UsageError("--scorers is empty: name at least one scorer (see `molebench scorers`), or pass "
                         "--no-score to generate only")
    plain = ("model", "benchmark", "limit", "batch_size", "steps", "guidance", "scheduler", "device", "threads",
             "dtype", "scorer_batch_size", "out", "weights", "protocol", "sample_size")
    return RunConfig(
        **{name: options[name] for name in plain},
        seeds=parse_seeds(options["seeds"]),
        size=parse_size(options["size"]),
        scorers=() if no_score else
        tuple(s.strip() for s in scorers.split(",") if s.strip()) if scorers is not None else None,
        regions=parse_regions(options["regions"]),
        reference=str(Path(reference).expanduser().resolve()) if reference else None,  # later `score`s reuse it
        model_options=parse_options(options["option"]),
    )


def parse_regions(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip()) if text else ()


def relaunch(ctx: typer.Context, num_processes: int, folder: str | None = None, wait: bool = False) -> None:
    """Run this same command in `num_processes` processes under `accelerate launch` (raises if one failed).

    When the run folder exists already, this process takes its lock first (a busy folder stops before anything
    starts) and the processes it launches work under it; otherwise the launched main process takes it.
    """
    import contextlib
    from pathlib import Path

    from molebench.runner.distributed import command_line, launch
    from molebench.store.lock import shared_with_children

    with shared_with_children(folder, wait) if folder and Path(folder).is_dir() else contextlib.nullcontext():
        launch(command_line(ctx), num_processes)


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' or '0-3' (inclusive) or a mix, in order (RunConfig checks the values)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                low, high = part.split("-", 1) if not part.startswith("-") else (part, "")
                count = int(high) - int(low) + 1
                if count > MAX_SEEDS - len(seeds):  # checked before the range is expanded into memory
                    raise UsageError(f"--seeds {text}: more than {MAX_SEEDS:,} seeds; a run needs a few seeds per "
                                     "prompt (e.g. 0-3)")
                if count < 1:
                    raise UsageError(f"--seeds {part}: an empty range (write low-high with low ≤ high)")
                seeds.extend(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise UsageError(f"--seeds: cannot read '{text}' (use e.g. 0,1,2 or 0-3)") from None
    return tuple(seeds)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' as (width, height) (RunConfig checks the values)."""
    if not text:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size: expected WxH such as 512x512, got '{text}'") from None
    return width, height


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; values parsed as JSON when they are JSON (numbers, true/false), else kept as strings."""
    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--option: expected KEY=VALUE, got '{pair}'")
        key, value = pair.split("=", 1)
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options
