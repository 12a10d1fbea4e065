"""`molebench prompts build`: source rows -> filtered, de-duplicated, sampled prompt set, written to the cache.

The same steps run for every benchmark, in this order, each counted in the build info:
whitespace normalised -> empty dropped -> too long dropped -> special symbols dropped (when the definition lists
them) -> no human word dropped -> duplicates dropped ->
one prompt per image (when the definition asks) -> sample. Sampling ranks each prompt by sha256("SEED:ID") and keeps
the lowest ranks: the result depends only on the source, the definition and the seed (not on file order, Python
version or platform), and the written order is the rank order, so `--limit N` takes a random subset too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molebench import __version__, ui
from molebench.atomic import atomic_write_json, atomic_write_text
from molebench.benchmarks import coco, diffusiondb
from molebench.benchmarks.base import PromptItem, PromptSet, load_prompt_set_jsonl
from molebench.benchmarks.definition import Definition, load_definition
from molebench.benchmarks.download import fetch_source
from molebench.benchmarks.source import Candidate, normalise
from molebench.errors import InputError
from molebench.paths import cache_dir


def dedup_key(prompt: str) -> str:
    """Prompts that differ only in case, spacing or a trailing full stop are the same prompt."""
    return prompt.casefold().rstrip(" .")


def sample_rank(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode("utf-8")).hexdigest()


def select(definition: Definition, candidates: list[Candidate], seed: int) -> tuple[list[PromptItem], dict[str, int]]:
    """Apply the definition's filters, de-duplication and sampling; returns the items in rank order and the counts."""
    counts = {"candidates": len(candidates)}
    kept: list[tuple[Candidate, str, list[str]]] = []
    empty = too_long = symbols = no_word = 0
    for cand in candidates:
        prompt = normalise(cand.prompt)
        if not prompt:
            empty += 1
        elif definition.max_words is not None and len(prompt.split(" ")) > definition.max_words:
            too_long += 1
        elif definition.has_special_symbols(prompt):
            symbols += 1
        elif not (words := definition.words.match(prompt)):
            no_word += 1
        else:
            kept.append((cand, prompt, words))
    counts.update(dropped_empty=empty, dropped_too_long=too_long)
    if definition.drop_symbols or definition.drop_patterns:
        counts["dropped_special_symbols"] = symbols
    counts.update(dropped_no_human_word=no_word, human=len(kept))
    if definition.dedup:
        best: dict[str, tuple[Candidate, str, list[str]]] = {}
        for entry in kept:
            key = dedup_key(entry[1])
            if key not in best or entry[0].order < best[key][0].order:
                best[key] = entry
        counts["dropped_duplicate"] = len(kept) - len(best)
        kept = list(best.values())
    if definition.one_per_image:
        first: dict[Any, tuple[Candidate, str, list[str]]] = {}
        ungrouped = [entry for entry in kept if entry[0].group is None]  # sources without images: nothing to merge
        for entry in kept:
            group = entry[0].group
            if group is not None and (group not in first or entry[0].order < first[group][0].order):
                first[group] = entry
        counts["dropped_same_image"] = len(kept) - len(first) - len(ungrouped)
        kept = list(first.values()) + ungrouped
    kept.sort(key=lambda entry: entry[0].order)
    counts["pool"] = len(kept)
    shared = _shared_source_ids(kept)
    items = []
    for cand, prompt, words in kept:
        item_id = f"{definition.id_prefix}-{cand.source_id}"
        if cand.source_id in shared:  # edited copies of one source row: keep both, tell them apart
            item_id += "-" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8]
        meta = {"source_id": cand.source_id, "matched_words": words, **cand.extra}
        items.append(PromptItem(item_id, prompt, meta))
    items.sort(key=lambda item: sample_rank(seed, item.id))
    items = items[: definition.sample_size]
    counts["sampled"] = len(items)
    return items, counts


def _shared_source_ids(kept: list[tuple[Candidate, str, list[str]]]) -> set[str]:
    seen: set[str] = set()
    shared: set[str] = set()
    for cand, _, _ in kept:
        (shared if cand.source_id in seen else seen).add(cand.source_id)
    return shared


def built_paths(name: str) -> tuple[Path, Path]:
    folder = cache_dir("prompts")
    return folder / f"{name}.jsonl", folder / f"{name}.build.json"


@dataclass
class BuildResult:
    prompt_set: PromptSet
    info: dict[str, Any]
    path: Path


def build(name: str, sources: list[Path] | None = None, seed: int | None = None) -> BuildResult:
    """Build prompt set `name` from `sources` (or the official files, downloaded when needed) and store it."""
    definition = load_definition(name)
    reader = {"coco-captions": coco, "diffusiondb": diffusiondb}[definition.format]
    seed = definition.seed if seed is None else seed
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    downloaded = not sources
    paths = fetch_source(definition) if downloaded else reader.resolve(definition, [Path(p) for p in sources])
    where = ", ".join(str(p) for p in paths)
    with ui.err.status(f"reading {where}"):
        read = reader.read(definition, paths)
    with ui.err.status(f"selecting from {len(read.candidates):,} prompts"):
        items, counts = select(definition, read.candidates, seed)
    if not items:
        raise InputError(f"{where}: no prompts left after filtering for '{name}' "
                         f"({', '.join(f'{k} {v}' for k, v in {**read.counts, **counts}.items())})")
    prompt_set = PromptSet(name, tuple(items))
    jsonl, info_path = built_paths(name)
    info = {
        "name": name,
        "title": definition.title,
        "prompt_set_sha256": prompt_set.sha256,
        "n_prompts": len(prompt_set),
        "seed": seed,
        "sample_size": definition.sample_size,
        "definition": {"file": definition.path.name, "sha256": definition.sha256, "settings": definition.raw},
        "source": {"downloaded": downloaded, "files": read.files},
        "counts": {**read.counts, **counts},
        "notes": read.notes,
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "molebench_version": __version__,
    }
    atomic_write_text(jsonl, prompt_set.to_jsonl())
    atomic_write_json(info_path, info)
    return BuildResult(prompt_set, info, jsonl)


def load_built(name: str) -> tuple[PromptSet, dict[str, Any]]:
    """The stored prompt set and its build info; a clear error when it has not been built."""
    jsonl, info_path = built_paths(name)
    if not jsonl.exists() or not info_path.exists():
        raise InputError(f"prompt set '{name}' is not built yet (no {jsonl}): run `molebench prompts build {name}` "
                         "(add --source PATH to build from a local copy of the source data)")
    prompt_set = load_prompt_set_jsonl(name, jsonl)
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read build info {info_path}: {exc}; rebuild with `molebench prompts build {name}`")
    if info.get("prompt_set_sha256") != prompt_set.sha256:
        raise InputError(f"{jsonl} does not match its build info {info_path} (sha256 {prompt_set.sha256[:12]} vs "
                         f"{str(info.get('prompt_set_sha256'))[:12]}); rebuild with `molebench prompts build {name}`")
    return prompt_set, info
