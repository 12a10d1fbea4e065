"""The MoLE paper's two benchmarks as registered names: molebench's 1,000-prompt sets `coco-human` and
`diffusiondb-human`, and the paper's own definitions `coco-human-paper` and `diffusiondb-human-paper` (the whole pool
the paper samples 3 × 3,000 prompts from; see molebench.runner.protocol).

They read the set built by `molebench prompts build NAME` from the cache; the build info (definition hash, seed,
source checksums, stage counts) goes into every run manifest next to the prompt-set sha256.
"""

from __future__ import annotations

from typing import Any

from molebench.benchmarks.base import Benchmark, PromptSet
from molebench.registry import register_benchmark


class BuiltBenchmark(Benchmark):
    """A benchmark whose prompts come from a build step (see molebench.benchmarks.builder)."""

    def __init__(self) -> None:
        self._info: dict[str, Any] | None = None

    def load(self) -> PromptSet:
        from molebench.benchmarks.builder import load_built

        prompt_set, self._info = load_built(self.registry_name)
        return prompt_set

    def info(self) -> dict[str, Any]:
        if self._info is None:
            self.load()
        info = self._info or {}
        settings = info.get("definition", {}).get("settings", {})
        return {
            "title": info.get("title"),
            "built_at": info.get("built_at"),
            "seed": info.get("seed"),
            "sample_size": info.get("sample_size"),
            "definition": {k: v for k, v in info.get("definition", {}).items() if k in ("file", "sha256")},
            "settings": {"words": sorted(settings.get("words", {})), "filters": settings.get("filters"),
                         "dedup": settings.get("dedup"), "sample": settings.get("sample")},
            "source": info.get("source"),
            "counts": info.get("counts"),
            "notes": info.get("notes"),
        }


@register_benchmark("coco-human")
class CocoHuman(BuiltBenchmark):
    description = "COCO Human Prompts: COCO Captions (val2014) with human words, 1 per image (build first)"


@register_benchmark("diffusiondb-human")
class DiffusionDBHuman(BuiltBenchmark):
    description = "DiffusionDB Human Prompts: real user prompts with human words, NSFW-filtered (build first)"


@register_benchmark("coco-human-paper")
class CocoHumanPaper(BuiltBenchmark):
    description = ("COCO Human Prompts as the paper defines them: every val2014 caption with the paper's human words "
                   "(the pool `run --protocol paper` samples; build first)")


@register_benchmark("diffusiondb-human-paper")
class DiffusionDBHumanPaper(BuiltBenchmark):
    description = ("DiffusionDB Human Prompts as the paper defines them: NSFW and weighting-symbol prompts removed, "
                   "no length limit (the pool `run --protocol paper` samples; build first)")
