"""`molebench run`."""

from __future__ import annotations

from typing import List, Optional

import typer

from molebench.runner.config import RunConfig, parse_options, parse_seeds, parse_size
from molebench.runner.protocol import PROTOCOLS

NUM_PROCESSES_HELP = ("run in N processes on this machine via `accelerate launch` (one per GPU; on CPU the cores are "
                      "shared); for several machines use `accelerate launch -m molebench ...`, see docs/scale-out.md")
PROTOCOL_HELP = ("'paper': the MoLE paper's protocol, 3 random samples of 3,000 prompts (sample seeds 0, 1, 2), "
                 "reported per repeat and as mean ± s.e. in the paper's units (see docs/benchmarks.md)")
THREADS_HELP = "CPU threads per process (default: torch's choice; cores / processes when several run on one machine)"


def register(app: typer.Typer) -> None:
    @app.command("run")
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
        out: Optional[str] = typer.Option(None, "--out", help="run folder (default results/MODEL__BENCH__HASH)"),
        weights: Optional[str] = typer.Option(None, "--weights", help="local weights folder/file for the model"),
        option: List[str] = typer.Option([], "--option", "-o", help="model option KEY=VALUE (repeatable)"),
        threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
        num_processes: int = typer.Option(1, "--num-processes", min=1, help=NUM_PROCESSES_HELP),
        protocol: Optional[str] = typer.Option(None, "--protocol", help=PROTOCOL_HELP),
        sample_size: Optional[int] = typer.Option(None, "--sample-size", min=1,
                                                  help="prompts per repeat under --protocol (paper: 3000)"),
    ) -> None:
        """Generate images for a benchmark, score them, store and summarise (resumes an interrupted run)."""
        from molebench.errors import InputError
        from molebench.runner.run import run

        if dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise InputError(f"--dtype: expected auto, float32, float16 or bfloat16, got '{dtype}'")
        if no_score and scorers:
            raise InputError("--no-score and --scorers contradict each other; give one")
        if protocol is not None and protocol not in PROTOCOLS:
            raise InputError(f"--protocol: expected one of {', '.join(PROTOCOLS)}, got '{protocol}'")
        if protocol and limit:
            raise InputError("--limit and --protocol contradict each other: the protocol samples its own prompts "
                             "(use --sample-size for a smaller sample)")
        if sample_size is not None and not protocol:
            raise InputError("--sample-size applies only with --protocol paper")
        config = RunConfig(
            model=model,
            benchmark=benchmark,
            limit=limit,
            seeds=parse_seeds(seeds),
            batch_size=batch_size,
            steps=steps,
            guidance=guidance,
            size=parse_size(size),
            scheduler=scheduler,
            device=device,
            threads=threads,
            dtype=dtype,
            scorers=() if no_score else
            tuple(s.strip() for s in scorers.split(",") if s.strip()) if scorers is not None else None,
            scorer_batch_size=scorer_batch_size,
            out=out,
            weights=weights,
            model_options=parse_options(option),
            protocol=protocol,
            sample_size=sample_size,
        )
        if num_processes > 1:
            relaunch(ctx, num_processes)
            return
        run(config)


def relaunch(ctx: typer.Context, num_processes: int) -> None:
    """Run this same command in `num_processes` processes under `accelerate launch` (raises if one failed)."""
    from molebench.runner.distributed import command_line, launch

    launch(command_line(ctx), num_processes)
