"""molebench as a library: the few functions the README shows, over the same code the CLI runs.

- `get_scorer(name)` -> a loaded-on-first-use `Scorer`; `.score(images, prompts)` gives {metric: values}.
- `score_folder(path, scorers=...)` scores a folder of images; prompts come from the PNG text chunks molebench
  writes, or from a CSV/JSONL file of `file,prompt`.
- `run(model=..., ...)` is `molebench run`: same RunConfig checks, same resumable run folder.

Reached as `molebench.get_scorer` etc.: `import molebench` imports none of this (nor torch) until it is used.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from molebench.errors import InputError, UsageError

if TYPE_CHECKING:
    import pandas as pd

    from molebench.scoring.base import Scorer
    from molebench.store import RunStore

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CHUNK = 64  # images held in memory at once by score_folder


def get_scorer(name: str, *, device: str = "auto", batch_size: int | None = None,
               weights: str | os.PathLike | None = None) -> "Scorer":
    """The registered scorer `name` (see `molebench scorers`) on `device` ("auto": CUDA when present); `weights`: a
    local copy of its weights (file or folder, as `MOLEBENCH_WEIGHTS_<NAME>` takes), else they are looked up as
    the CLI does. Missing weights raise MissingWeightsError naming the files and how to get them."""
    from molebench.runner.config import check_device
    from molebench.runner.environment import resolve_device
    from molebench.runner.score_step import make_scorer

    check_device(device)
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise UsageError(f"get_scorer: batch_size must be a whole number ≥ 1, got {batch_size!r}")
    if weights is not None and not Path(weights).expanduser().exists():
        raise UsageError(f"get_scorer: weights for {name} do not exist: {weights}")
    scorer = make_scorer(name, resolve_device(device), batch_size, weights=weights)
    if scorer.kind != "set":  # set-level scorers look up theirs with their reference images
        scorer.fingerprint()  # weights looked up now: a missing file fails here, not at the first score() call
    return scorer


def score_folder(
    path: str | os.PathLike,
    scorers: Sequence[str] | str = ("hps-v2.1", "imagereward"),
    *,
    prompts: str | os.PathLike | None = None,
    device: str = "auto",
    batch_size: int | None = None,
) -> "pd.DataFrame":
    """Score the images of folder `path` with each scorer; one row per file × scorer × metric (raw values).

    Without `prompts`, every image must carry its prompt in a PNG text chunk named `prompt` (as the images of a
    molebench run folder do); with `prompts`, a CSV (header `file,prompt`) or JSONL (`{"file": ..., "prompt":
    ...}` per line) names the files to score, relative to `path`. Columns: file, prompt, scorer, scorer_version,
    metric, value; `frame.attrs["scorers"]` holds each scorer's fingerprint (version, weights hash, per-metric
    display scale and direction).
    """
    import pandas as pd

    from molebench.scoring.base import load_image_rgb

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"score_folder: {folder} is not a folder")
    names = [scorers] if isinstance(scorers, str) else list(scorers)
    if not names:
        raise InputError("score_folder: name at least one scorer (see `molebench scorers`)")
    pairs = _listed_pairs(folder, Path(prompts)) if prompts is not None else _png_pairs(folder)
    loaded = [get_scorer(name, device=device, batch_size=batch_size) for name in names]
    frames, prints = [], {}
    for scorer in loaded:
        prints[scorer.registry_name] = scorer.fingerprint()
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start : start + CHUNK]
            images = [load_image_rgb(folder / file) for file, _ in chunk]
            values = scorer.score(images, [prompt for _, prompt in chunk])
            for metric, column in values.items():
                frames.append(pd.DataFrame({"file": [f for f, _ in chunk], "prompt": [p for _, p in chunk],
                                            "scorer": scorer.registry_name, "scorer_version": scorer.version,
                                            "metric": metric, "value": column}))
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs["scorers"] = prints
    return frame


def run(config: Any = None, /, **values: Any) -> "RunStore":
    """`molebench run` from Python: `run(model="tiny-sd15", limit=2)` or `run(RunConfig(...))`; returns the store."""
    from molebench.runner.config import RunConfig
    from molebench.runner.preflight import check_run_weights

    if config is None:
        config = RunConfig(**values)
    elif values or not isinstance(config, RunConfig):
        raise InputError("run: pass a RunConfig, or the settings as keyword arguments (model=..., ...), not both")
    check_run_weights(config)  # every missing file named at once, before torch is imported
    from molebench.runner.run_command import run as run_config

    return run_config(config)


def _png_pairs(folder: Path) -> list[tuple[str, str]]:
    from PIL import Image

    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"score_folder: no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    pairs = []
    for name in files:
        try:
            with Image.open(folder / name) as image:
                prompt = image.info.get("prompt")
        except OSError as exc:
            raise InputError(f"unreadable image {folder / name}: {exc}") from None
        if not isinstance(prompt, str):
            raise InputError(f"{folder / name} has no 'prompt' PNG text chunk (molebench writes one); pass "
                             "prompts=FILE, a CSV or JSONL of file,prompt")
        pairs.append((name, prompt))
    return pairs


def _listed_pairs(folder: Path, listing: Path) -> list[tuple[str, str]]:
    rows = _read_listing(listing)
    pairs = []
    for number, row in rows:
        file, prompt = row.get("file"), row.get("prompt")
        if not isinstance(file, str) or not file or not isinstance(prompt, str):
            raise InputError(f"{listing}:{number}: each row needs a 'file' and a text 'prompt'")
        if not (folder / file).is_file():
            raise InputError(f"{listing}:{number}: image {folder / file} not found")
        pairs.append((file, prompt))
    if not pairs:
        raise InputError(f"{listing} lists no images")
    return pairs


def _read_listing(listing: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        text = listing.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read prompt listing {listing}: {exc}") from None
    suffix = listing.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not {"file", "prompt"} <= set(reader.fieldnames or []):
            raise InputError(f"{listing}: the CSV header must name the columns 'file' and 'prompt'")
        return [(number, row) for number, row in enumerate(reader, start=2)]
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{listing}:{number}: not valid JSON ({exc.msg})") from None
                rows.append((number, record if isinstance(record, dict) else {}))
        return rows
    raise InputError(f"{listing}: prompt listing must be .csv or .jsonl")
