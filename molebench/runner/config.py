"""Everything a run is asked to do, as one serialisable object (stored whole in the manifest).

`RunConfig` checks every value when it is made, so a bad value (a dtype torch does not have, a seed list with
repeats, an unknown scorer) is refused before a run folder is touched, whoever builds the config: the CLI only
turns its text options into these values. Names of models, benchmarks and scorers are checked against the
registries without importing them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from molebench.errors import InputError, UsageError
from molebench.registry import BENCHMARKS, MODELS, SCORERS
from molebench.parts import check_parts, split_region

DTYPES = ("auto", "float32", "float16", "bfloat16")
PROTOCOLS = ("paper",)  # evaluation protocols a run can follow (molebench.runner.protocol)
MAX_SEEDS = 10_000  # seeds of one run (each multiplies the images); larger lists are a typo, refused at once
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


@dataclass(frozen=True)
class RunConfig:
    model: str
    benchmark: str = "tiny-human"
    limit: int | None = None
    seeds: tuple[int, ...] = (0,)
    batch_size: int = 1
    steps: int | None = None
    guidance: float | None = None
    size: tuple[int, int] | None = None
    scheduler: str | None = None
    device: str = "auto"
    threads: int | None = None
    dtype: str = "auto"
    scorers: tuple[str, ...] | None = None  # None: the model's defaults; (): generate only
    scorer_batch_size: int | None = None
    regions: tuple[str, ...] = ()  # also run the whole-image scorers on face / hand crops (molebench.scoring.regions)
    out: str | None = None
    weights: str | None = None
    reference: str | None = None  # reference image folder/zip of set-level scorers (fid, kid)
    model_options: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None  # "paper": 3 repeats of sample_size prompts (molebench.runner.protocol)
    sample_size: int | None = None  # prompts per repeat under a protocol (paper: 3,000)

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        _known(MODELS, _text(self.model, "model"))
        _known(BENCHMARKS, _text(self.benchmark, "benchmark"))
        for name in ("limit", "steps", "threads", "scorer_batch_size"):
            _positive(getattr(self, name), name, optional=True)
        _positive(self.batch_size, "batch_size")
        put("seeds", _seeds(self.seeds))
        if self.guidance is not None:
            if not _is_number(self.guidance) or not math.isfinite(self.guidance) or self.guidance < 0:
                raise UsageError(f"guidance must be a finite number ≥ 0, got {self.guidance!r}")
            put("guidance", float(self.guidance))
        put("size", _size(self.size))
        if self.scheduler is not None:
            _text(self.scheduler, "scheduler")
        check_device(self.device)
        if self.dtype not in DTYPES:
            raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.scorers is not None:
            if isinstance(self.scorers, str) or not all(isinstance(s, str) for s in self.scorers):
                raise UsageError(f"scorers must be a list of scorer names, got {self.scorers!r}")
            put("scorers", tuple(self.scorers))
            if len(set(self.scorers)) != len(self.scorers):
                raise UsageError(f"scorers lists a scorer twice: {', '.join(self.scorers)}")
            if any(not name.strip() for name in self.scorers):
                raise UsageError(f"scorers: an empty scorer name in {list(self.scorers)!r}")
            for name in self.scorers:
                _known(SCORERS, split_region(name)[0])
        if isinstance(self.regions, str) or not all(isinstance(r, str) for r in self.regions):
            raise UsageError(f"regions must be a list of parts (face, hand), got {self.regions!r}")
        try:
            put("regions", check_parts(self.regions))
        except InputError as exc:
            raise UsageError(str(exc)) from None
        for name in ("out", "weights"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, (str, os.PathLike)) or not str(value):
                    raise UsageError(f"{name} must be a path, got {value!r}")
                put(name, str(value))
        if not isinstance(self.model_options, dict) or not all(isinstance(k, str) for k in self.model_options):
            raise UsageError(f"model_options must be a dict of option names to values, got {self.model_options!r}")
        put("model_options", dict(self.model_options))
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise UsageError(f"protocol: expected one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol and self.limit:
            raise UsageError("limit and protocol contradict each other: the protocol samples its own prompts "
                             "(use sample_size / --sample-size for a smaller sample)")
        _positive(self.sample_size, "sample_size", optional=True)
        if self.sample_size is not None and not self.protocol:
            raise UsageError("sample_size / --sample-size applies only with protocol 'paper'")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        data["size"] = list(self.size) if self.size else None
        data["scorers"] = list(self.scorers) if self.scorers is not None else None
        data["regions"] = list(self.regions)
        return data


def check_device(device: Any) -> None:
    """`auto`, `cpu`, `mps`, `cuda` or `cuda:N` (whether that device exists is checked where it is used)."""
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise UsageError(f"device must be auto, cpu, mps, cuda or cuda:N, got {device!r}")


def _known(registry: Any, name: str) -> None:
    """The registry's unknown-name error (with its suggestion) as a usage error."""
    try:
        registry.check(name)
    except InputError as exc:
        raise UsageError(str(exc)) from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{name} must be a non-empty name, got {value!r}")
    return value


def _positive(value: Any, name: str, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{name} must be a whole number ≥ 1, got {value!r}")


def _seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise UsageError(f"seeds must be a list of integers, got {seeds!r}")
    if hasattr(seeds, "__len__") and len(seeds) > MAX_SEEDS:
        raise UsageError(f"seeds: {len(seeds):,} seeds, more than {MAX_SEEDS:,}; a run needs a few seeds per prompt")
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise UsageError(f"seeds must be non-negative integers (at least one), got {list(seeds)!r}")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be distinct, got {list(seeds)!r}")
    return seeds


def _size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        width, height = size
    except (TypeError, ValueError):
        raise UsageError(f"size must be (width, height), got {size!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 8 == 0 for v in (width, height)):
        raise UsageError(f"size: width and height must be positive multiples of 8, got {width!r}x{height!r}")
    return width, height
