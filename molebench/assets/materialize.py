"""Materialise offline tiny models once into the molebench cache, then load them like any hub snapshot.

Tiny variants are built from configs with seeded weights and saved with `save_pretrained`, so the same
`from_pretrained` path that loads real checkpoints is exercised. Building happens in a temporary folder renamed into
place, so concurrent processes and crashes never leave a half-written model behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from molebench.assets.weights import WeightsStatus
from molebench.paths import cache_dir, cache_root

READY_MARKER = ".molebench-complete"
OFFLINE = "built offline on first use"


def ready_path(name: str, version: str) -> Path | None:
    """The cached folder for `name`/`version` if it was built completely, else None (never builds)."""
    final = cache_dir("models") / f"{name}-{version}"
    return final if (final / READY_MARKER).exists() else None


def offline_status(name: str, version: str) -> WeightsStatus:
    """A tiny entry's row in `molebench weights`: always available; the listing names its folder and never builds
    it (building takes seconds)."""
    ready = ready_path(name, version)
    return WeightsStatus(True, str(ready) if ready else f"{cache_root() / 'models' / f'{name}-{version}'} ({OFFLINE})",
                         OFFLINE)


def materialized(name: str, version: str, build: Callable[[Path], None]) -> Path:
    """Return the cached folder for `name`/`version`, calling `build(folder)` first if it is not there yet."""
    root = cache_dir("models")
    final = root / f"{name}-{version}"
    if (final / READY_MARKER).exists():
        return final
    staging = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=root))
    try:
        build(staging)
        (staging / READY_MARKER).write_text(version)
        if final.exists():  # a half-built folder from an older crash (no marker): replace it
            if (final / READY_MARKER).exists():
                return final
            shutil.rmtree(final, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rename(staging, final)
        if not (final / READY_MARKER).exists():
            raise RuntimeError(f"could not materialise {final}")
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
