"""Name -> class registries in the lm-evaluation-harness style.

Models, scorers and benchmarks register themselves with a decorator at import time; `load_plugins()` imports the
modules that hold them, so the CLI can list everything without knowing each module.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

from molebench.errors import InputError

T = TypeVar("T")

# Modules whose import registers entries. New families add their module here (one line, no other wiring).
PLUGIN_MODULES: list[str] = [
    "molebench.benchmarks.tiny",
    "molebench.benchmarks.human",
    "molebench.models.tiny_sd",
    "molebench.models.stable_diffusion",
    "molebench.models.sdxl",
    "molebench.models.pixart",
    "molebench.models.legacy",
    "molebench.scoring.hps",
    "molebench.scoring.hps_v1",
    "molebench.scoring.imagereward",
    "molebench.scoring.human",
    "molebench.models.mole.models",
]


class Registry(Generic[T]):
    """A named collection of factories (classes) of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            try:
                setattr(obj, "registry_name", name)
            except (AttributeError, TypeError):
                pass
            return obj

        return decorator

    def get(self, name: str) -> T:
        load_plugins()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise InputError(f"unknown {self.kind} '{name}'; registered: {known}")
        return self._entries[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        load_plugins()
        return sorted(self._entries.items())


MODELS: Registry = Registry("model")
SCORERS: Registry = Registry("scorer")
BENCHMARKS: Registry = Registry("benchmark")

register_model = MODELS.register
register_scorer = SCORERS.register
register_benchmark = BENCHMARKS.register

_loaded = False


def load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in PLUGIN_MODULES:
        importlib.import_module(module)
