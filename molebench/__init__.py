"""molebench: the benchmark and evaluation harness for human-centric text-to-image diffusion.

Flow: benchmarks (prompt sets) -> models (diffusers pipelines) -> scoring (HPS, ImageReward, human signals)
-> runner/store (resumable, atomic run folders) -> report (tables, leaderboard, regression gate).
"""

__version__ = "0.1.0"
