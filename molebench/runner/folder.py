"""What a run folder's manifest says about the folder: one identity, the union of its contents, every command's share.

A folder grows over several commands (`run --seeds 0`, then `run --seeds 0,1`, then `score --scorers x`), so the
manifest's top-level `config`, `seeds`, `device`, `processes`, `counts` and `timings` are derived from the folder's
items and from `history`, one entry per command that contributed (its command line, full config, thread count,
counts and timings, start and end): a later command adds to the story instead of overwriting it.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from molebench import __version__
from molebench.errors import IncompatibleRunsError

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


def check_same_identity(root: Any, previous: dict[str, Any], identity: dict[str, Any], identity_hash: str) -> None:
    """A run folder holds one model/prompt-set/settings combination; refuse to mix another into it, naming each
    setting that differs with the folder's value and this command's."""
    if previous.get("identity_sha256") == identity_hash:
        return
    lines = identity_differences(previous.get("identity", {}), identity) or ["identity hash (older manifest format)"]
    shown = "; ".join(lines[:SHOWN_DIFFERENCES]) + (f"; and {len(lines) - SHOWN_DIFFERENCES} more"
                                                     if len(lines) > SHOWN_DIFFERENCES else "")
    raise IncompatibleRunsError(
        f"{root} holds a run with other settings (folder vs this command: {shown}); results would be mixed. "
        "Use another --out folder."
    )


def start_history(previous: dict[str, Any] | None, stage: str, config: dict[str, Any], scorers: list[str] | tuple,
                  device: dict[str, Any], processes: int, started: str, commit: str | None) -> list[dict[str, Any]]:
    """The folder's history with this command (`run` or `score`) appended as `running`; earlier entries still
    `running` belong to commands that were killed and are marked `interrupted`."""
    history = [{**h, "status": "interrupted"} if h.get("status") == "running" else h for h in previous_history(previous)]
    return history + [{"stage": stage, "command": list(sys.argv), "config": config, "scorers": list(scorers),
                       "status": "running", "started": started, "finished": None, "molebench_version": __version__,
                       "git_commit": commit, "device": device, "processes": processes,
                       "counts": {"generated": 0, "scored": 0}, "timings": {}}]


def finish_history(manifest: dict[str, Any], items: pd.DataFrame, finished: str, generated: int, scored: int,
                   timings: dict[str, Any]) -> None:
    """Close this command's (the last) history entry and re-derive the folder's description from the history."""
    entry = manifest["history"][-1]
    entry.update(status="complete", finished=finished, counts={"generated": generated, "scored": scored},
                 timings=timings)
    manifest.update(folder_fields(manifest["history"], items), status="complete", updated=finished)


def previous_history(previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The history of a manifest; a manifest from before histories becomes one entry rebuilt from its fields."""
    if not previous:
        return []
    if "history" in previous:
        return list(previous["history"])
    counts = previous.get("counts") or {}
    return [{"stage": "run", "command": previous.get("command"), "config": previous.get("config") or {},
             "scorers": list((previous.get("config") or {}).get("scorers") or []), "status": previous.get("status"),
             "started": previous.get("created"), "finished": previous.get("updated"),
             "molebench_version": previous.get("molebench_version"), "git_commit": previous.get("git_commit"),
             "device": previous.get("device") or {}, "processes": previous.get("processes"),
             "counts": {"generated": counts.get("generated_this_run", 0), "scored": counts.get("scored_this_run", 0)},
             "timings": previous.get("timings") or {}}]


def folder_fields(history: list[dict[str, Any]], items: pd.DataFrame) -> dict[str, Any]:
    """The manifest's top-level description of the folder, derived from its items and the history of commands."""
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
                   "generated": sum(h["counts"].get("generated", 0) for h in history),
                   "scored": sum(h["counts"].get("scored", 0) for h in history)},
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


def thread_counts(previous: dict[str, Any]) -> list[int]:
    """CPU thread counts of the commands that made the folder's images (for the thread-change note)."""
    runs = [h for h in previous_history(previous) if h.get("stage") == "run"]
    return list(dict.fromkeys(h["device"]["torch_threads"] for h in runs
                              if (h.get("device") or {}).get("torch_threads")))
