"""Building replicas once: a lock, a free-disk check, the builders in turn, and a manifest per finished replica.

The manifest (`<cache>/molebench-replicas/<name>.json`) is written last, so a replica without one is rebuilt; it
records the repositories and revisions, the storage dtype, the bytes on disk and the build time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import inspect
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from molebench.atomic import atomic_write_json
from molebench.errors import InputError
from molebench.replicas.hubcache import RepoWriter, folder_bytes, repo_folder
from molebench.replicas.specs import SPECS

VERSION = "1"
DTYPES = ("float16", "float32")
MARGIN_GB = 2.0


def state_dir(root: Path) -> Path:
    path = root / "molebench-replicas"
    path.mkdir(parents=True, exist_ok=True)
    return path


def external_folder(root: Path, name: str) -> Path:
    return root / "molebench-replicas" / name


def storage_dtype() -> str:
    value = os.environ.get("MOLEBENCH_REPLICA_DTYPE", "float16")
    if value not in DTYPES:
        raise InputError(f"MOLEBENCH_REPLICA_DTYPE={value}: use one of {', '.join(DTYPES)}")
    return value


def read_manifest(root: Path, name: str) -> dict | None:
    try:
        manifest = json.loads((state_dir(root) / f"{name}.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if manifest.get("version") != VERSION or not Path(manifest.get("path", "")).exists():
        return None
    return manifest


@contextlib.contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """One builder per cache at a time (another process waits, then finds the replica built)."""
    with open(state_dir(root) / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(name: str, root: Path) -> Path:
    if name not in SPECS:
        raise InputError(f"no replica '{name}'; replicas: {', '.join(SPECS)}")
    found = read_manifest(root, name)
    if found is not None and found["dtype"] == storage_dtype():
        return Path(found["path"])
    for need in SPECS[name].needs:
        ensure_built(need, root)
    with build_lock(root):
        found = read_manifest(root, name)
        if found is not None and found["dtype"] == storage_dtype():
            return Path(found["path"])
        return _build(name, root)


def _check_disk(name: str, root: Path) -> None:
    need = SPECS[name].gigabytes * (2 if storage_dtype() == "float32" else 1) + MARGIN_GB
    free = shutil.disk_usage(root).free / 1e9
    if free < need:
        raise InputError(f"replica {name} needs about {need:.1f} GB of free disk in {root}; {free:.1f} GB are free")


def _function(reference: str):
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(f"molebench.replicas.{module}"), function)


def _build(name: str, root: Path) -> Path:
    import torch

    spec = SPECS[name]
    _check_disk(name, root)
    dtype = getattr(torch, storage_dtype())
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=state_dir(root)))
    revisions: dict[str, str] = {}
    try:
        if not spec.builders:  # written by the replica it needs (one repository or file shared by two scorers)
            path = Path(read_manifest(root, spec.needs[0])["path"])  # type: ignore[index]
        elif not spec.repos:
            path = external_folder(root, name)
            path.mkdir(parents=True, exist_ok=True)
            _function(spec.builders[0])(path, dtype, seed)
        else:
            paths = [_build_repo(root, repo, builder, dtype, seed, scratch, spec.needs)
                     for repo, builder in zip(spec.repos, spec.builders)]
            path = paths[0]
            revisions = {repo: p.name for repo, p in zip(spec.repos, paths)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    folders = [repo_folder(root, repo) for repo in spec.repos] or [path]
    atomic_write_json(state_dir(root) / f"{name}.json", {
        "name": name, "version": VERSION, "kind": spec.kind, "path": str(path), "repos": revisions,
        "dtype": storage_dtype(), "bytes": sum(folder_bytes(f) for f in folders),
        "build_seconds": round(time.perf_counter() - started, 1)})
    return path


def _build_repo(root: Path, repo: str, builder: str, dtype, seed: int, scratch: Path, needs: tuple[str, ...]) -> Path:
    function = _function(builder)
    writer = RepoWriter(root, repo)
    kwargs = {}
    if needs and "base" in inspect.signature(function).parameters:
        kwargs["base"] = Path(read_manifest(root, needs[0])["path"])  # type: ignore[index]
    function(writer, scratch, dtype, seed, **kwargs)
    return writer.commit()
