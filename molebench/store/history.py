"""What a run folder's manifest says about the folder: one identity, the union of its contents, every command's share.

A folder grows over several commands (`run --seeds 0`, then `run --seeds 0,1`, then `score --scorers x`), so the
manifest's top-level `config`, `seeds`, `device`, `processes` and `timings` are derived from the folder's items and
from `history`, one entry per command that contributed (its command line, full config, thread count, counts and
timings, start and end): a later command adds to the story instead of overwriting it.

Counts are derived from what the folder holds (RunStore.contents), never summed from what commands said they did:
the folder's `counts` are its images and scored (image, scorer) pairs now, and a command's own counts are the
difference between the folder at its start and at its end, so a command that was killed (and the one that resumed
it) still gets its true share.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from molebench import __version__
from molebench.errors import IncompatibleRunsError
from molebench.store.manifest import COMPLETE, INTERRUPTED, RUNNING, Manifest

# RunConfig fields that say how one command worked, not what the folder holds (kept in that command's history entry)
PER_COMMAND = ("limit", "seeds", "batch_size", "device", "threads", "scorers", "scorer_batch_size", "out")
SHOWN_DIFFERENCES = 8


def identity_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Every leaf that differs between two identities, as 'a.b.c: OLD vs NEW' (dicts are compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            lines += identity_differences(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{path}.{key}" if path else str(key))
        return lines
    return [] if old == new else [f"{path or 'identity'}: {_show(old)} vs {_show(new)}"]


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value[:12] if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else value
    return repr(value) if isinstance(value, _Absent) else str(value)


def check_same_identity(root: Any, previous: Manifest, identity: dict[str, Any], identity_hash: str) -> None:
    """A run folder holds one model/prompt-set/settings combination; refuse to mix another into it, naming each
    setting that differs with the folder's value and this command's."""
    if previous.identity_sha256 == identity_hash:
        return
    lines = identity_differences(previous.identity, identity) or ["identity hash (older manifest format)"]
    shown = "; ".join(lines[:SHOWN_DIFFERENCES]) + (f"; and {len(lines) - SHOWN_DIFFERENCES} more"
                                                     if len(lines) > SHOWN_DIFFERENCES else "")
    raise IncompatibleRunsError(
        f"{root} holds a run with other settings (folder vs this command: {shown}); results would be mixed. "
        "Use another --out folder."
    )


def start_history(previous: Manifest | None, stage: str, config: dict[str, Any], scorers: list[str] | tuple,
                  device: dict[str, Any], processes: int, started: str, commit: str | None,
                  contents: dict[str, int]) -> list[dict[str, Any]]:
    """The folder's history with this command (`run` or `score`) appended as `running`; earlier entries still
    `running` belong to commands that were killed: they are marked `interrupted` and get, as their counts, what the
    folder gained between their start and now (`contents`: the folder now, RunStore.contents)."""
    history = [closed(h, INTERRUPTED, contents) if h.get("status") == RUNNING else h
               for h in previous_history(previous)]
    return history + [{"stage": stage, "command": list(sys.argv), "config": config, "scorers": list(scorers),
                       "status": RUNNING, "started": started, "finished": None, "molebench_version": __version__,
                       "git_commit": commit, "device": device, "processes": processes, "at_start": dict(contents),
                       "counts": {"generated": 0, "scored": 0}, "timings": {}}]


def closed(entry: dict[str, Any], status: str, contents: dict[str, int], finished: str | None = None
           ) -> dict[str, Any]:
    """A history entry closed with `status`; its counts are what the folder gained since the entry's start."""
    start = entry.get("at_start")
    counts = ({name: max(0, int(contents.get(name, 0)) - int(start.get(name, 0))) for name in ("generated", "scored")}
              if isinstance(start, dict) else entry.get("counts") or {"generated": 0, "scored": 0})
    return {**entry, "status": status, "counts": counts, "finished": finished or entry.get("finished")}


def finish_history(manifest: dict[str, Any], items: pd.DataFrame, finished: str, contents: dict[str, int],
                   timings: dict[str, Any], status: str = COMPLETE) -> None:
    """Close this command's (the last) history entry (`complete`, or `interrupted` when it was stopped) and
    re-derive the folder's description from the history and its `contents` (RunStore.contents)."""
    history = manifest["history"]
    history[-1] = {**closed(history[-1], status, contents, finished), "timings": timings}
    manifest.update(folder_fields(history, items, contents), status=status, updated=finished)


def previous_history(previous: Manifest | None) -> list[dict[str, Any]]:
    """The history of a manifest; a manifest from before histories becomes one entry rebuilt from its fields."""
    if previous is None:
        return []
    if "history" in previous.data:
        return previous.history
    old = previous.to_json()
    counts = old.get("counts") or {}
    return [{"stage": "run", "command": old.get("command"), "config": old.get("config") or {},
             "scorers": list((old.get("config") or {}).get("scorers") or []), "status": old.get("status"),
             "started": old.get("created"), "finished": old.get("updated"),
             "molebench_version": old.get("molebench_version"), "git_commit": old.get("git_commit"),
             "device": old.get("device") or {}, "processes": old.get("processes"),
             "counts": {"generated": counts.get("generated_this_run", 0), "scored": counts.get("scored_this_run", 0)},
             "timings": old.get("timings") or {}}]


def folder_fields(history: list[dict[str, Any]], items: pd.DataFrame, contents: dict[str, int]) -> dict[str, Any]:
    """The manifest's top-level description of the folder, derived from its items, what it holds (`contents`:
    RunStore.contents) and the history of commands."""
    runs = [h for h in history if h.get("stage") == "run"] or history
    latest = runs[-1]["config"] if runs else {}
    limits = [h["config"].get("limit") for h in runs]
    scorers = list(dict.fromkeys(name for h in history for name in h.get("scorers") or []))
    config = {**{k: v for k, v in latest.items() if k not in PER_COMMAND},
              "limit": None if not limits or None in limits else max(limits),
              "seeds": sorted(int(s) for s in set(items["seed"])), "scorers": scorers}
    generated = [h["timings"]["generate"] for h in runs if (h.get("timings") or {}).get("generate")]
    images = sum(t.get("images") or 0 for t in generated)
    seconds = sum(t.get("seconds") or 0 for t in generated if t.get("images"))
    return {
        "config": config,
        "seeds": config["seeds"],
        "device": merged([h.get("device") or {} for h in runs]),
        "processes": merged([h.get("processes") for h in runs]),
        "counts": {"items": len(items), "prompts": int(items["prompt_index"].nunique()),
                   "generated": int(contents.get("generated", 0)), "scored": int(contents.get("scored", 0))},
        "timings": {"generate": {"images": images, "seconds": round(seconds, 3) if seconds else None,
                                 "images_per_s": round(images / seconds, 4) if seconds else None,
                                 "commands": len(generated)}},
        "history": history,
    }


def merged(values: list[Any]) -> Any:
    """One value when every command agreed, else the distinct values in order (dicts merged key by key)."""
    if values and all(isinstance(v, dict) for v in values):
        keys = list(dict.fromkeys(k for v in values for k in v))
        return {k: merged([v.get(k) for v in values if k in v]) for k in keys}
    distinct = [v for i, v in enumerate(values) if v not in values[:i]]
    return distinct[0] if len(distinct) == 1 else (distinct or None)


def thread_counts(previous: Manifest) -> list[int]:
    """CPU thread counts of the commands that made the folder's images (for the thread-change note)."""
    runs = [h for h in previous_history(previous) if h.get("stage") == "run"]
    return list(dict.fromkeys(h["device"]["torch_threads"] for h in runs
                              if (h.get("device") or {}).get("torch_threads")))
