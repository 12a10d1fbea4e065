"""Work items: (prompt, seed) pairs with their per-image generator seed and content key."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from molebench.atomic import sha256_json
from molebench.benchmarks.base import PromptSet
from molebench.errors import UsageError

# One run folder holds at most this many images: the plan (one row per image) is built in memory before any work,
# so a seed range typed by mistake (`--seeds 0-100000000`) is refused at once instead of filling the memory.
MAX_PLANNED_IMAGES = 1_000_000


def planned_count(prompt_set: PromptSet, seeds: tuple[int, ...], limit: int | None) -> tuple[int, int]:
    """(prompts, images) a run plans; refuses a plan larger than MAX_PLANNED_IMAGES before building it."""
    prompts = min(limit or len(prompt_set), len(prompt_set))
    images = prompts * len(seeds)
    if images > MAX_PLANNED_IMAGES:
        raise UsageError(f"--seeds/--limit plan {images:,} images ({prompts:,} prompts × {len(seeds):,} seeds), more "
                         f"than the {MAX_PLANNED_IMAGES:,} one run folder holds; use fewer seeds or a --limit, or "
                         "split the work over several run folders")
    return prompts, images


def generator_seed(seed: int, prompt_index: int, repeat: int | None = None) -> int:
    """Per-image seed from (run seed, prompt index): independent of batch composition and of --limit. A
    `--protocol paper` run adds the repeat, so each repeat's images are drawn apart from the others'."""
    tag = f"molebench:{seed}:{prompt_index}" if repeat is None else f"molebench:{seed}:repeat{repeat}:{prompt_index}"
    digest = hashlib.sha256(tag.encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def content_key(model_identity: dict[str, Any], prompt: str, gen_seed: int, settings: dict[str, Any],
                repeat: int | None = None) -> str:
    """Image identity: any change to model weights, prompt, seed or generation settings gives a new key (and the
    repeat of a `--protocol paper` run: the same prompt drawn by two repeats is two images)."""
    identity = {"model": model_identity, "prompt": prompt, "gen_seed": gen_seed, "settings": settings}
    return sha256_json(identity if repeat is None else {**identity, "repeat": repeat})[:32]


def plan_items(
    prompt_set: PromptSet,
    seeds: tuple[int, ...],
    limit: int | None,
    model_identity: dict[str, Any],
    settings: dict[str, Any],
    repeat_of: tuple[int, ...] | None = None,
) -> pd.DataFrame:
    """One row per (prompt, seed) for the first `limit` prompts, ordered prompt-major; `repeat_of`: the repeat of
    each prompt of a `--protocol paper` run (in its seeds and keys)."""
    planned_count(prompt_set, seeds, limit)
    rows = []
    for index, item in enumerate(prompt_set.items[: limit or None]):
        repeat = None if repeat_of is None else repeat_of[index]
        for seed in seeds:
            gen_seed = generator_seed(seed, index, repeat)
            key = content_key(model_identity, item.prompt, gen_seed, settings, repeat)
            rows.append(
                {"key": key, "prompt_index": index, "prompt_id": item.id, "prompt": item.prompt, "seed": seed,
                 "gen_seed": gen_seed, "image": f"images/{key}.png"}
            )
    return pd.DataFrame(rows)
