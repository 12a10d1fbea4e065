"""Work items: (prompt, seed) pairs with their per-image generator seed and content key."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from molebench.atomic import sha256_json
from molebench.benchmarks.base import PromptSet


def generator_seed(seed: int, prompt_index: int) -> int:
    """Per-image seed from (run seed, prompt index): independent of batch composition and of --limit."""
    digest = hashlib.sha256(f"molebench:{seed}:{prompt_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def content_key(model_identity: dict[str, Any], prompt: str, gen_seed: int, settings: dict[str, Any]) -> str:
    """Image identity: any change to model weights, prompt, seed or generation settings gives a new key."""
    return sha256_json({"model": model_identity, "prompt": prompt, "gen_seed": gen_seed, "settings": settings})[:32]


def plan_items(
    prompt_set: PromptSet,
    seeds: tuple[int, ...],
    limit: int | None,
    model_identity: dict[str, Any],
    settings: dict[str, Any],
) -> pd.DataFrame:
    """One row per (prompt, seed) for the first `limit` prompts, ordered prompt-major."""
    rows = []
    for index, item in enumerate(prompt_set.items[: limit or None]):
        for seed in seeds:
            gen_seed = generator_seed(seed, index)
            key = content_key(model_identity, item.prompt, gen_seed, settings)
            rows.append(
                {"key": key, "prompt_index": index, "prompt_id": item.id, "prompt": item.prompt, "seed": seed,
                 "gen_seed": gen_seed, "image": f"images/{key}.png"}
            )
    return pd.DataFrame(rows)
