"""`tiny-human`: a handful of human-centric prompts written for molebench, so the demo runs before any build."""

from __future__ import annotations

from molebench.benchmarks.base import Benchmark, PromptItem, PromptSet
from molebench.registry import register_benchmark

TINY_HUMAN_PROMPTS = (
    "a portrait of an old fisherman smiling, close-up of his face",
    "a woman waving her hand at the camera in a park",
    "two children holding hands while walking on a beach",
    "a chef chopping vegetables, hands in focus",
    "a young man playing guitar on a stage",
    "a girl reading a book by the window, soft light on her face",
    "a basketball player raising both arms after a dunk",
    "an elderly couple dancing in their living room",
)


@register_benchmark("tiny-human")
class TinyHuman(Benchmark):
    description = "8 human-centric prompts written for molebench (demo and tests; no build step)"

    def load(self) -> PromptSet:
        items = tuple(PromptItem(f"tiny-{index:03d}", prompt) for index, prompt in enumerate(TINY_HUMAN_PROMPTS))
        return PromptSet(self.registry_name or "tiny-human", items)

    def info(self) -> dict:
        return {"source": "molebench.benchmarks.tiny (embedded)"}
