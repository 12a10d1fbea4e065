"""The runner: plan work items, generate missing images, score unscored ones, summarise — resumable at every step."""

from molebench.runner.config import RunConfig
from molebench.runner.run import run

__all__ = ["RunConfig", "run"]
