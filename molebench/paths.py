"""Where molebench keeps things on disk.

Everything derived (materialised tiny models, built prompt sets, downloads) lives under one cache root so a user can
see or delete it in one place; `MOLEBENCH_CACHE` moves it (tests point it at a temporary folder).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    explicit = os.environ.get("MOLEBENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "molebench"


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_override(name: str) -> Path | None:
    """A local weights folder/file for registered entry `name`, from `MOLEBENCH_WEIGHTS_<NAME>`.

    The variable name is the entry name upper-cased with non-alphanumerics as `_` (mole-sd15 -> MOLEBENCH_WEIGHTS_MOLE_SD15).
    """
    value = os.environ.get(weights_env_var(name))
    return Path(value).expanduser() if value else None


def weights_env_var(name: str) -> str:
    return "MOLEBENCH_WEIGHTS_" + "".join(c if c.isalnum() else "_" for c in name.upper())


def hub_mirror_env_var(name: str) -> str:
    """`MOLEBENCH_HUB_REPO_<NAME>`: a Hugging Face repository the user names as a mirror of weights that their
    authors publish elsewhere (HPS v1's hpc.pt); molebench then looks for the file in that repository's cache."""
    return weights_env_var(name).replace("MOLEBENCH_WEIGHTS_", "MOLEBENCH_HUB_REPO_", 1)


def path_tails(paths: list[Path]) -> list[str]:
    """The shortest tail of each path (last k parts, one k for all) that tells the paths apart."""
    parts = [p.resolve().parts for p in paths]
    longest = max((len(p) for p in parts), default=1)
    for k in range(1, longest + 1):
        tails = ["/".join(p[-k:]) for p in parts]
        if len(set(tails)) == len(tails):
            return tails
    return ["/".join(p) for p in parts]
