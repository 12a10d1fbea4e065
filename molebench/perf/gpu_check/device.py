"""Timing and memory on the check's device: synchronised clocks, peak memory, out-of-memory as a value."""

from __future__ import annotations

import gc
import resource
import sys
import time
from typing import Any, Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously: a clock read without this lies)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of `fn()` with the device synchronised before and after, and its result."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    """Peak memory since the last `reset_peak`: CUDA's max_memory_allocated on a GPU, the process's peak RSS on the
    CPU (which never resets, so a CPU figure is the process's peak so far)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2 ** 30 if sys.platform == "darwin" else rss / 2 ** 20


def memory_measure(device: torch.device) -> str:
    return "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS (ru_maxrss)"


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory failure on the device (CUDA's own error, or an allocator RuntimeError)."""
    if isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release(device: torch.device) -> None:
    """Give freed memory back (after an out-of-memory attempt or a finished model)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} torch threads)"
