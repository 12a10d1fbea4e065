"""molebench: the benchmark and evaluation harness for human-centric text-to-image diffusion.

Flow: benchmarks (prompt sets) -> models (diffusers pipelines) -> scoring (HPS, ImageReward, human signals)
-> runner/store (resumable, atomic run folders) -> report (tables, leaderboard, regression gate).

The library API (`get_scorer`, `score_folder`, `run`, `RunConfig`; `molebench.models.mole.load_mole`) is loaded on
first use, so `import molebench` stays cheap: no torch, no diffusers until something needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "get_scorer": "molebench.api",
    "score_folder": "molebench.api",
    "run": "molebench.api",
    "RunConfig": "molebench.runner.config",
}
_SUBPACKAGES = ("benchmarks", "models", "perf", "registry", "report", "runner", "scoring", "store", "study")

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"molebench.{name}")
    else:
        raise AttributeError(f"module 'molebench' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})
