"""The settings a reader needs to trust a number: what was run, how, and on what — one flat dict of strings per run.

Counts and seeds come from the stored scores (what the folder actually holds), the rest from the manifest. Missing
facts (an older manifest) are empty strings, never guesses. `SETTING_COLUMNS` is the order used by `compare`,
`report` and the leaderboard CSV; new facts are appended at the end.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import pandas as pd

from molebench.store.manifest import Manifest


class LoadedRun(Protocol):
    """What the settings are read from (report.runs.LoadedRun; not imported: runs imports this module)."""

    manifest: Manifest
    scores: pd.DataFrame

SETTING_COLUMNS = ["weights", "steps", "guidance", "size", "scheduler", "dtype", "seeds", "n_prompts", "n_images",
                   "git_commit", "device", "prompt_suffix", "negative_prompt", "prompt_weighting", "options"]
# Short headers for the runs table of `compare` and `report`.
SETTING_HEADERS = {"weights": "weights", "steps": "steps", "guidance": "guidance", "size": "size",
                   "scheduler": "scheduler", "dtype": "dtype", "seeds": "seeds", "n_prompts": "prompts",
                   "n_images": "images", "git_commit": "git commit", "device": "device",
                   "prompt_suffix": "prompt suffix", "negative_prompt": "negative prompt",
                   "prompt_weighting": "prompt weighting", "options": "other options"}
# Settings that change the images other than the model itself: runs that differ in one are compared with a warning.
IMAGE_SETTINGS = ["prompt_suffix", "negative_prompt", "prompt_weighting", "steps", "guidance", "size", "scheduler",
                  "dtype", "seeds", "options"]
PROMPT_SETTINGS = ("prompt_suffix", "negative_prompt", "prompt_weighting")
# Generation settings with a column of their own, and `settings.extra` entries that describe the model (MoLE's
# experts and gates): neither goes into `options`.
_OWN_COLUMN = {"steps", "guidance", "width", "height", "scheduler", "dtype", "extra", *PROMPT_SETTINGS}
_MODEL_EXTRAS = {"mole"}


def run_settings(run: LoadedRun) -> dict[str, str]:
    """The run's settings as display strings, keyed by SETTING_COLUMNS."""
    manifest = run.manifest
    settings = manifest.settings
    width, height = settings.get("width"), settings.get("height")
    return {
        "weights": weights_id(manifest),
        "steps": _text(settings.get("steps")),
        "guidance": _text(settings.get("guidance")),
        "size": f"{width}x{height}" if width and height else "",
        "scheduler": _text(settings.get("scheduler")),
        "dtype": _text(settings.get("dtype")),
        "seeds": seed_ranges(sorted(int(s) for s in run.scores["seed"].unique())),
        "n_prompts": str(int(run.scores["prompt_id"].nunique())),
        "n_images": str(int(run.scores["key"].nunique())),
        "git_commit": _short_commit(manifest.git_commit),
        "device": device_text(manifest.device),
        **prompt_settings(settings),
        "options": other_options(settings),
    }


def prompt_settings(settings: dict[str, Any]) -> dict[str, str]:
    """Prompt suffix, negative prompt and prompt weighting as recorded (top level or in `extra`); empty when the run
    recorded none (a model run with plain prompts records nothing)."""
    extra = settings.get("extra") or {}
    return {key: _text(extra.get(key, settings.get(key))) for key in PROMPT_SETTINGS}


def other_options(settings: dict[str, Any]) -> str:
    """Every other recorded setting that changes pixels (model options such as a sampler or VAE tiling), as
    `key=value; ...` sorted by key, so a setting added later is shown without code here knowing its name."""
    found = {k: v for k, v in settings.items() if k not in _OWN_COLUMN}
    found.update({k: v for k, v in (settings.get("extra") or {}).items()
                  if k not in _OWN_COLUMN and k not in _MODEL_EXTRAS})
    return "; ".join(f"{k}={_text(v) if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True)}"
                     for k, v in sorted(found.items()))


def shown(key: str, value: str) -> str:
    """A setting as a table cell: prompt text quoted (its spaces matter), `none` where the run adds none."""
    if key in PROMPT_SETTINGS:
        return "none" if not value else f'"{value}"' if key != "prompt_weighting" else value
    return value


def setting_differences(runs: list[Any]) -> list[str]:
    """Every setting other than the model that changes the images and differs between the first run (the
    reference) and another, naming the setting and both values; empty when the comparison is like for like."""
    if len(runs) < 2:
        return []
    first, found = runs[0], []
    for other in runs[1:]:
        for key in IMAGE_SETTINGS:
            a, b = first.settings.get(key, ""), other.settings.get(key, "")
            if a != b:
                found.append(f"{SETTING_HEADERS[key]} differs: {first.label} {shown(key, a) or '?'} vs "
                             f"{other.label} {shown(key, b) or '?'}")
    return found


def weights_id(manifest: Manifest) -> str:
    """The hub repository the weights came from, else the local weights folder's name given with --weights."""
    model = manifest.model
    for key in ("repo_id", "hub_id"):  # repo_id: the repository actually used, where the manifest records it
        if model.get(key):
            return str(model[key])
    local = manifest.config.get("weights") or model.get("path")
    return str(local).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] if local else ""


def device_text(device: dict[str, Any]) -> str:
    """'cuda (NVIDIA H100)' or 'cpu'; the processor name of a CPU says little and is left out. A folder made by
    several commands on different GPUs records a list of names: all are shown."""
    kind = _joined(device.get("type"))
    if kind == "cuda" and device.get("name"):
        return f"cuda ({_joined(device['name'])})"
    return kind


def _joined(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def seed_ranges(seeds: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (the `--seeds` syntax)."""
    parts: list[str] = []
    for seed in seeds:
        if parts and seed == _last(parts) + 1:
            start = parts[-1].split("-")[0]
            parts[-1] = f"{start}-{seed}"
        else:
            parts.append(str(seed))
    return ",".join(parts)


def _last(parts: list[str]) -> int:
    return int(parts[-1].rsplit("-", 1)[-1])


def _short_commit(commit: Any) -> str:
    if not commit:
        return ""
    text = str(commit)
    head, _, dirty = text.partition("+")
    return head[:12] + (f"+{dirty}" if dirty else "")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
