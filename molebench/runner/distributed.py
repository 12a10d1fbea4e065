"""Several processes on one run folder, through Hugging Face accelerate (torchrun underneath).

`accelerate launch -m molebench run ...` (or torchrun, or one `accelerate launch` per node under Slurm) starts the
processes; each joins accelerate's `PartialState`. The work is dealt out in fixed blocks — one generation batch or
one scoring chunk, exactly as a single process would form them — round-robin by process index, so every image and
score is computed in the same batch as in a one-process run, and a process only ever looks at its own blocks (what
another process has or has not finished cannot change the split). Each process writes its own images and score
shards atomically; only the main process writes the manifest, the items, the merged scores and the summary, after
a barrier. A plain `molebench run` never touches torch.distributed: it gets `SINGLE`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from molebench.errors import InputError, MolebenchError
from molebench.runner.environment import resolve_device

TIMEOUT_ENV = "MOLEBENCH_DIST_TIMEOUT_HOURS"
DEFAULT_TIMEOUT_HOURS = 24.0  # a barrier waits for the slowest process; a resumed shard can take hours


class LaunchFailed(MolebenchError):
    """A process under `accelerate launch` failed (the launcher stopped the others); the exit code is passed on."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Workers:
    """This process's place among the processes of one command (`SINGLE` when there is only one)."""

    device: torch.device | None = None
    index: int = 0
    count: int = 1
    local_index: int = 0
    local_count: int = 1
    state: Any = None  # accelerate.PartialState when launched with several processes

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @property
    def tag(self) -> str:
        """Prefix for status lines, so interleaved output says which process speaks."""
        return f"(process {self.index}/{self.count}) " if self.count > 1 else ""

    @property
    def shard_prefix(self) -> str:
        """Score shard names carry the process index (file names never collide between processes)."""
        return f"p{self.index:04d}-" if self.count > 1 else ""

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def main_first(self) -> contextlib.AbstractContextManager:
        """The main process runs the block first (materialises models, writes the folder), the others after it."""
        return self.state.main_process_first() if self.state is not None else contextlib.nullcontext()

    def shard(self, frame: pd.DataFrame, block: int) -> pd.DataFrame:
        """This process's rows: blocks of `block` consecutive rows dealt round-robin (all rows when alone)."""
        if self.count == 1:
            return frame
        blocks = np.arange(len(frame)) // max(block, 1)
        return frame[blocks % self.count == self.index]

    def gather(self, value: Any) -> list[Any]:
        """`value` from every process, in process order (on every process)."""
        if self.state is None:
            return [value]
        from accelerate.utils import gather_object

        return gather_object([value])

    def close(self) -> None:
        if self.state is not None:
            self.barrier()
            self.state.destroy_process_group()


def launched_processes() -> int:
    """How many processes the launcher (accelerate/torchrun/Slurm via accelerate) started; 1 for a plain command."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def join(device_option: str, threads: int | None) -> Workers:
    """This process's `Workers`; with several processes, joins accelerate's process group (gloo on CPU, nccl on GPU)."""
    if launched_processes() <= 1:
        device = resolve_device(device_option)
        if threads and device.type == "cpu":
            torch.set_num_threads(threads)
        return Workers(device=device)
    from accelerate import PartialState

    on_cpu = device_option == "cpu" or (device_option == "auto" and not torch.cuda.is_available())
    if not on_cpu:
        if device_option not in ("auto", "cuda"):
            raise InputError(f"--device {device_option}: with several processes use --device cuda (or auto); "
                             "each process takes the GPU of its local rank")
        resolve_device("cuda")  # clear error when CUDA was asked for but is absent
    state = PartialState(cpu=on_cpu, timeout=dt.timedelta(hours=_timeout_hours()))
    device = torch.device("cpu") if on_cpu else state.device
    workers = Workers(device=device, index=state.process_index, count=state.num_processes,
                      local_index=state.local_process_index,
                      local_count=int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes)), state=state)
    if on_cpu:
        # torchrun sets OMP_NUM_THREADS=1 for every process; share this machine's cores between its processes
        torch.set_num_threads(threads or max(1, _available_cores() // workers.local_count))
    return workers


def launch(command_line: list[str], num_processes: int) -> None:
    """Run `molebench COMMAND_LINE` in `num_processes` processes with `accelerate launch`; raises if any failed."""
    if launched_processes() > 1:
        raise InputError("--num-processes starts processes itself; under accelerate launch/torchrun leave it out "
                         "(the launcher's --num_processes decides)")
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                str(num_processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", "0", "-m", "molebench", *command_line]
    code = subprocess.call(launcher)
    if code:
        raise LaunchFailed(f"{num_processes} processes under accelerate launch ended with exit code {code} (see the "
                           "failures above); rerun the same command to resume", exit_code=code)


def command_line(ctx: Any, drop: tuple[str, ...] = ("num_processes",)) -> list[str]:
    """The command's arguments rebuilt from what click parsed (for relaunching it under accelerate)."""
    args = [ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name in drop or value is None:
            continue
        if param.param_type_name == "argument":
            args.append(str(value))
        elif getattr(param, "is_flag", False):
            if value != param.default:
                args.append(param.opts[0] if value else param.secondary_opts[0])
        elif getattr(param, "multiple", False):
            for item in value:
                args += [param.opts[0], str(item)]
        else:
            args += [param.opts[0], str(value)]
    return args


def _timeout_hours() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_HOURS))
    except ValueError:
        raise InputError(f"{TIMEOUT_ENV} must be a number of hours, got '{os.environ[TIMEOUT_ENV]}'") from None


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

