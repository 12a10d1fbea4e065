"""Prompt sets and the benchmark interface."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molebench.errors import InputError


@dataclass(frozen=True)
class PromptItem:
    """One prompt. `id` is stable across rebuilds; `meta` holds builder extras (source id, matched words)."""

    id: str
    prompt: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, **self.meta}


@dataclass(frozen=True)
class PromptSet:
    name: str
    items: tuple[PromptItem, ...]

    def __len__(self) -> int:
        return len(self.items)

    def to_jsonl(self) -> str:
        return "".join(json.dumps(item.to_json(), sort_keys=True, ensure_ascii=False) + "\n" for item in self.items)

    @property
    def sha256(self) -> str:
        """Hash of the canonical JSONL: the identity of the prompt set in manifests."""
        return hashlib.sha256(self.to_jsonl().encode("utf-8")).hexdigest()


def load_prompt_set_jsonl(name: str, path: str | Path) -> PromptSet:
    """Read a built prompt set (JSONL with at least `id` and `prompt` per line), naming the file on any problem."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"prompt file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read prompt file {path}: {exc}") from None
    items: list[PromptItem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or "id" not in record:
            raise InputError(f"{path}:{number}: each line needs an 'id' and a string 'prompt'")
        item_id = str(record.pop("id"))
        if item_id in seen:
            raise InputError(f"{path}:{number}: duplicate id '{item_id}'")
        seen.add(item_id)
        prompt = record.pop("prompt")
        items.append(PromptItem(item_id, prompt, record))
    if not items:
        raise InputError(f"prompt file {path} holds no prompts")
    return PromptSet(name, tuple(items))


class Benchmark:
    """A registered benchmark. Subclasses implement `load()`; `description` shows in `molebench benchmarks`."""

    registry_name: str = ""
    description: str = ""

    def load(self) -> PromptSet:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Extra facts for the manifest (source files, builder settings)."""
        return {}
