"""What a source reader hands the builder: candidate prompts and the facts the build info records.

Its own module so the readers (coco, diffusiondb) and the builder that calls them depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """One source prompt. `order` decides which copy survives de-duplication (the smallest); `group` is the image."""

    source_id: str
    prompt: str
    order: tuple
    group: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceRead:
    """What a reader found: candidates plus the facts the build info records."""

    candidates: list[Candidate]
    files: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    """Collapse every run of whitespace (newlines, tabs, doubled spaces) to one space and trim the ends."""
    return " ".join(text.split())
