"""Full-size replicas of the hub repositories (and external files) of every real model and full-size scorer.

A replica is laid out exactly as a real download (molebench.replicas.hubcache) with random weights at full size, so
`molebench run --model sdxl` loads it through the same code as real weights; only the numbers differ. Built once
into the replica cache and reused (a manifest per replica under `molebench-replicas/`).

    from molebench import replicas
    replicas.NAMES                 # every replica name (registry names of models and scorers)
    replicas.ensure("sdxl")        # build if needed; the folder the model's loader is handed
    replicas.environment()         # the variables a `molebench` process needs to find them (HF_HUB_CACHE, ...)

The cache is `MOLEBENCH_REPLICA_CACHE`, else the Hugging Face hub cache; a repository that already holds a real
download there is never touched (building it is refused). `MOLEBENCH_REPLICA_DTYPE` (float16, the default, or
float32) is the dtype the weight files are stored in: the file names, tensor names and shapes are the hub's either
way; float32 is the dtype of most hub files and doubles the disk (docs/replicas.md has the sizes).
"""

from __future__ import annotations

import os
from pathlib import Path

from molebench.replicas.specs import EXTERNAL_ENV, SPECS, ReplicaSpec

NAMES: tuple[str, ...] = tuple(SPECS)
MODEL_NAMES: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.kind == "model")
SCORER_NAMES: tuple[str, ...] = tuple(name for name, spec in SPECS.items() if spec.kind == "scorer")


def cache_root() -> Path:
    """Where replicas live: `MOLEBENCH_REPLICA_CACHE`, else the Hugging Face hub cache."""
    explicit = os.environ.get("MOLEBENCH_REPLICA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def ensure(name: str, root: Path | None = None) -> Path:
    """Build the replica `name` (and what it shares files with) unless built; returns its folder: the snapshot of
    its hub repository, or the plain folder of a file published outside the hub."""
    from molebench.replicas.build import ensure_built

    return ensure_built(name, root or cache_root())


def environment(root: Path | None = None) -> dict[str, str]:
    """Variables that point a molebench process at the replicas: the hub cache, offline mode, and the folders of
    the files published outside the hub (MOLEBENCH_WEIGHTS_MOLE_SD15, _HPS_V1, _AESTHETIC)."""
    from molebench.replicas.build import external_folder

    root = root or cache_root()
    env = {"HF_HUB_CACHE": str(root), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.update({var: str(external_folder(root, name)) for name, var in EXTERNAL_ENV.items()})
    return env


__all__ = ["MODEL_NAMES", "NAMES", "SCORER_NAMES", "ReplicaSpec", "cache_root", "ensure", "environment"]
