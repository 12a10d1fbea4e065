"""Everything a run is asked to do, as one serialisable object (stored whole in the manifest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from molebench.errors import InputError


@dataclass
class RunConfig:
    model: str
    benchmark: str
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
    scorers: tuple[str, ...] | None = None
    scorer_batch_size: int | None = None
    out: str | None = None
    weights: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    protocol: str | None = None  # "paper": 3 repeats of sample_size prompts (molebench.runner.protocol)
    sample_size: int | None = None  # prompts per repeat under a protocol (paper: 3,000)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        data["size"] = list(self.size) if self.size else None
        data["scorers"] = list(self.scorers) if self.scorers is not None else None
        return data


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' or '0-3' (inclusive) or a mix; order kept, duplicates refused."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                low, high = part.split("-", 1) if not part.startswith("-") else (part, "")
                seeds.extend(range(int(low), int(high) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise InputError(f"--seeds: cannot read '{text}' (use e.g. 0,1,2 or 0-3)") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"--seeds: need distinct non-negative integers, got '{text}'")
    return tuple(seeds)


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size: expected WxH such as 512x512, got '{text}'") from None
    if width <= 0 or height <= 0 or width % 8 or height % 8:
        raise InputError(f"--size: width and height must be positive multiples of 8, got '{text}'")
    return width, height


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; values parsed as JSON when they are JSON (numbers, true/false), else kept as strings."""
    import json

    options: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"--option: expected KEY=VALUE, got '{pair}'")
        key, value = pair.split("=", 1)
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options
