"""Benchmarks: named, hashed prompt sets.

A benchmark resolves to a `PromptSet`; its sha256 (over the canonical JSONL) goes into every run manifest so results
of different prompt sets are never mixed.
"""

from molebench.benchmarks.base import Benchmark, PromptItem, PromptSet, load_prompt_set_jsonl

__all__ = ["Benchmark", "PromptItem", "PromptSet", "load_prompt_set_jsonl"]
