"""Where the GPU check takes its models and scorers from: the one place to point it at other weights.

A source names the real model or scorer a row stands for, the registered name that runs, and a `weights()` callable
giving the folder or file handed to the registered class (None: the class's own lookup, i.e. the Hugging Face cache
where a real download — or a full-size replica placed in the cache layout — sits). The full mode runs every real
model at its own resolution and GPU dtype; the reduced mode (the CPU, and the tests) runs each family's tiny offline
variant at its small default size, so the same code is exercised on every machine.

`full_sources(ensure)` takes the function that makes a model's or scorer's weights available by name and returns
their path (e.g. a builder of full-size replicas); without one, `cached` is used: nothing is built, weights missing
from the cache make that row `skipped` with the fetch command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REAL_MODELS = ("sd15", "sd21", "sdxl", "sdxl-refiner", "pixart-alpha", "pixart-alpha-1024", "vq-diffusion",
               "versatile-diffusion", "mole-sd15", "mole-sdxl")
FULL_SCORERS = ("hps-v2.1", "hps-v2", "hps-v1", "imagereward", "aesthetic", "clip-t", "fid")
PAPER_SCORERS = ("hps-v1", "imagereward")  # what the paper protocol scores with (its GPU-hours include them)
# The order rows are measured in, so that the rows that matter most land when the budget runs out: the paper's
# models (SD1.5 and SDXL, with and without MoLE), the paper protocol's scorers, then the rest.
PRIORITY = ("sd15", "mole-sd15", "sdxl", "mole-sdxl", "hps-v1", "imagereward", "sdxl-refiner", "sd21", "hps-v2.1",
            "pixart-alpha", "pixart-alpha-1024", "hps-v2", "aesthetic", "clip-t", "fid", "vq-diffusion",
            "versatile-diffusion")

TINY_MODELS = {"sd15": "tiny-sd15", "sd21": "tiny-sd21", "sdxl": "tiny-sdxl", "sdxl-refiner": "tiny-sdxl-refiner",
               "pixart-alpha": "tiny-pixart-alpha", "vq-diffusion": "tiny-vq-diffusion",
               "versatile-diffusion": "tiny-versatile-diffusion", "mole-sd15": "tiny-mole-sd15"}
TINY_SCORERS = {"hps-v2.1": "hps-tiny", "hps-v1": "hps-v1-tiny", "imagereward": "imagereward-tiny",
                "aesthetic": "aesthetic-tiny", "clip-t": "clip-t-tiny", "fid": "fid-tiny"}

Ensure = Callable[[str], "Path | None"]


def cached(name: str) -> Path | None:
    """No builder: the registered class looks its weights up itself (argument, environment, Hugging Face cache)."""
    return None


def replica_builder() -> Ensure:
    """Weights for the full check where no real ones are installed: each name's full-size replica
    (molebench.replicas, random weights laid out as the hub's files) is built into the Hugging Face cache on first use,
    and the registered class then finds it where a download would be — the real loading path. A repository that
    holds a real download is used as it is (replicas never replace one)."""
    from molebench import replicas
    from molebench.errors import InputError

    os.environ.update(replicas.environment())

    def ensure(name: str) -> Path | None:
        if name in replicas.NAMES:
            try:
                replicas.ensure(name)
            except InputError:  # a real download is there: measure it
                pass
        return None

    return ensure


@dataclass(frozen=True)
class Source:
    """One row of the check: the real model or scorer `stands_for`, run as the registered `name`."""

    stands_for: str
    name: str
    weights: Callable[[], Path | None] = field(default=lambda: None, compare=False)


@dataclass(frozen=True)
class Sources:
    """What one check runs, and how: `mode` is "full" (real models, real resolution) or "reduced" (tiny)."""

    mode: str
    models: tuple[Source, ...]
    scorers: tuple[Source, ...]

    def only(self, models: list[str] | None, scorers: list[str] | None) -> "Sources":
        """The same sources restricted to the named rows (by real or registered name; None keeps all)."""
        def keep(rows: tuple[Source, ...], names: list[str] | None) -> tuple[Source, ...]:
            if names is None:
                return rows
            unknown = sorted(set(names) - {r.stands_for for r in rows} - {r.name for r in rows})
            if unknown:
                known = ", ".join(r.stands_for for r in rows)
                raise ValueError(f"not in the {self.mode} check: {', '.join(unknown)} (known: {known})")
            return tuple(r for r in rows if r.stands_for in names or r.name in names)

        return Sources(self.mode, keep(self.models, models), keep(self.scorers, scorers))


def in_priority(sources: "Sources") -> list[tuple[str, Source]]:
    """("model" | "scorer", source) for every row, in PRIORITY order (rows it does not name last, as given)."""
    rows = [("model", s) for s in sources.models] + [("scorer", s) for s in sources.scorers]
    rank = {name: i for i, name in enumerate(PRIORITY)}
    return sorted(rows, key=lambda row: rank.get(row[1].stands_for, len(PRIORITY)))


def full_sources(ensure: Ensure = cached) -> Sources:
    """Every real model and full-size scorer, with weights from `ensure(name)`."""
    def weights(name: str) -> Callable[[], Path | None]:
        return lambda: ensure(name)

    return Sources("full", tuple(Source(m, m, weights(m)) for m in REAL_MODELS),
                   tuple(Source(s, s, weights(s)) for s in FULL_SCORERS))


def reduced_sources() -> Sources:
    """Each family's tiny offline variant (built on first use, no download)."""
    return Sources("reduced", tuple(Source(real, tiny) for real, tiny in TINY_MODELS.items()),
                   tuple(Source(real, tiny) for real, tiny in TINY_SCORERS.items()))
