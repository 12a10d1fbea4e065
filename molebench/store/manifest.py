"""A run folder's manifest.json, typed: the one place that knows its fields, their types and its status values.

The runner writes the manifest (a plain JSON object built by `molebench.store.history`); every other layer reads it
through `Manifest`, whose accessors give each fact with the fallbacks older folders need (a manifest from before
histories, identities or benchmark records still reads). A manifest that lacks a required field or holds a field of
the wrong type is refused when read, naming the file and the field, so every command (`verify` included) stops on
it with exit 1 instead of failing somewhere later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from molebench.errors import InputError

FILE_NAME = "manifest.json"
VERSION = 2  # manifest format; folders written before the field existed read as version 1

RUNNING = "running"  # a command is working on the folder (or was killed: the next command marks it interrupted)
COMPLETE = "complete"  # the last command finished: summary, scores and manifest agree
INTERRUPTED = "interrupted"  # the last command was stopped (Ctrl-C, SIGTERM); rerunning it continues
STATUSES = (RUNNING, COMPLETE, INTERRUPTED)

REQUIRED = ("status", "identity_sha256", "prompt_set_sha256")
# the type of every field a reader relies on (absent optional fields read as empty)
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "status": str, "identity_sha256": str, "prompt_set_sha256": str, "version": int, "molebench_version": str,
    "created": str, "updated": str, "identity": dict, "model": dict, "settings": dict, "benchmark": dict,
    "protocol": dict, "scorers": dict, "config": dict, "history": list, "counts": dict, "timings": dict,
    "device": dict, "packages": dict, "git_commit": (str, type(None)), "seeds": list,
}


class ManifestError(InputError):
    """A manifest.json that cannot be read, or lacks or garbles a field the commands rely on (`field`)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def field_error(path: Path, field: str, problem: str) -> ManifestError:
    return ManifestError(f"{path}: field '{field}' {problem}. The manifest was written by hand or damaged; restore "
                         "it from a copy, or delete the folder's manifest.json and rerun the run's `molebench run` "
                         "command to rebuild it", field)


@dataclass(frozen=True)
class Manifest:
    """One run folder's manifest, read and checked; `data` is the whole record (read-only)."""

    data: Mapping[str, Any]
    path: Path

    @classmethod
    def parse(cls, data: Any, path: Path) -> "Manifest":
        """Check the fields every command relies on and return the typed manifest (ManifestError names the field)."""
        if not isinstance(data, dict):
            raise ManifestError(f"{path} is unreadable (not a JSON object); restore it from a copy")
        for name in REQUIRED:
            if name not in data:
                raise field_error(path, name, "is missing")
        for name, kind in FIELD_TYPES.items():
            if name not in data:
                continue
            value = data[name]
            if not isinstance(value, kind) or (kind is str and not value):
                raise field_error(path, name, f"is {json.dumps(value)[:40]}, not a {_type_name(kind)}")
        if data["status"] not in STATUSES:
            raise field_error(path, "status", f"is '{data['status']}', not one of {', '.join(STATUSES)}")
        for name, value in (("model.name", _name(data, "model")), ("benchmark.name", _name(data, "benchmark"))):
            if not isinstance(value, str) or not value:
                raise field_error(path, name, "is missing (nor is it in 'config')")
        for index, entry in enumerate(data.get("history") or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
                raise field_error(path, f"history[{index}]", "is not a command record")
        return cls(MappingProxyType(data), path)

    @classmethod
    def read(cls, path: Path) -> "Manifest | None":
        """The manifest at `path` (None when the file does not exist)."""
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise ManifestError(f"{path} is unreadable ({exc}); it was left as it is. Restore it from a copy, or "
                                "delete it and rerun the same `molebench run` command to rebuild it") from None
        return cls.parse(data, path)

    def to_json(self) -> dict[str, Any]:
        """A deep, writable copy of the record (the runner extends it for the next command)."""
        return json.loads(json.dumps(dict(self.data)))

    # --- status -----------------------------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def is_complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def version(self) -> int:
        return int(self.data.get("version", 1))

    # --- identity ---------------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return str(_name(self.data, "model"))

    @property
    def benchmark_name(self) -> str:
        return str(_name(self.data, "benchmark"))

    @property
    def identity_sha256(self) -> str:
        return str(self.data["identity_sha256"])

    @property
    def prompt_set_sha256(self) -> str:
        return str(self.data["prompt_set_sha256"])

    @property
    def identity(self) -> dict[str, Any]:
        return dict(self.data.get("identity") or {})

    @property
    def model(self) -> dict[str, Any]:
        """The model's fingerprint (name, weights hashes, repository, warnings, ...)."""
        return dict(self.data.get("model") or {})

    @property
    def benchmark(self) -> dict[str, Any]:
        return dict(self.data.get("benchmark") or {})

    @property
    def settings(self) -> dict[str, Any]:
        """Generation settings (steps, guidance, size, scheduler, dtype, extra), from the identity in older folders."""
        return dict(self.data.get("settings") or self.identity.get("settings") or {})

    @property
    def protocol(self) -> dict[str, Any] | None:
        """The `--protocol paper` record, None for other runs."""
        return self.data.get("protocol") or None

    # --- what made it -----------------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return dict(self.data.get("config") or {})

    @property
    def scorers(self) -> dict[str, dict[str, Any]]:
        """Scorer name -> fingerprint (version, directions, display and paper scales) as recorded when scored."""
        return dict(self.data.get("scorers") or {})

    @property
    def history(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self.data.get("history") or []]

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self.data.get("counts") or {})

    @property
    def timings(self) -> dict[str, Any]:
        return dict(self.data.get("timings") or {})

    @property
    def device(self) -> dict[str, Any]:
        return dict(self.data.get("device") or {})

    @property
    def git_commit(self) -> str | None:
        return self.data.get("git_commit")

    @property
    def molebench_version(self) -> str:
        return str(self.data.get("molebench_version") or "")

    @property
    def created(self) -> str | None:
        return self.data.get("created")

    @property
    def date(self) -> str:
        """When the folder last changed (else when it was made)."""
        return str(self.data.get("updated") or self.data.get("created") or "")

    def recorded_reference(self) -> str | None:
        """The reference image set the folder's last command that had one used (set-level scorers reuse it)."""
        for entry in reversed(self.history):
            if (entry.get("config") or {}).get("reference"):
                return str(entry["config"]["reference"])
        return self.config.get("reference")


def complete_runs(folders: Iterable[Path]) -> list[Path]:
    """The folders among `folders` that hold a complete run (unreadable or unfinished ones are left out)."""
    found = []
    for folder in folders:
        try:
            manifest = Manifest.read(Path(folder) / FILE_NAME)
        except InputError:
            continue
        if manifest is not None and manifest.is_complete:
            found.append(Path(folder))
    return found


def _name(data: Mapping[str, Any], part: str) -> Any:
    record = data.get(part)
    name = record.get("name") if isinstance(record, dict) else None
    return name or (data.get("config") or {}).get(part)


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "non-empty string", int: "whole number", dict: "JSON object", list: "JSON list",
             type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)
