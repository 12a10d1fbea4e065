"""Every weights file a command needs, looked up before torch, diffusers and transformers are imported.

Importing those libraries costs seconds (a run that failed on missing weights took 11-13 CPU seconds on the 2-core
development machine, about 1 s once this check came first; README, *The CLI*); a run whose weights are missing should
fail in about a second and name every missing file at once, so `molebench run` (and `molebench.run`) call
`check_run_weights` first, and `molebench score --scorers` calls `check_scorer_weights`. It asks each model and scorer for its `weights_status()` — the same lookup `molebench
weights` shows and the run itself makes — whose modules import no torch (tests/cli/test_preflight.py checks that).
Other problems (a file that is there but unreadable) are left to the run, which reports them as before.
"""

from __future__ import annotations

from typing import Any, Iterable

from molebench.errors import InputError, MissingWeightsError, UsageError, raise_missing
from molebench.parts import split_region
from molebench.registry import MODELS, SCORERS
from molebench.runner.config import RunConfig


def check_run_weights(config: RunConfig) -> None:
    """Raise one MissingWeightsError naming every missing weights file of `config`'s model and scorers."""
    model = make_model(config)
    names = config.scorers if config.scorers is not None else tuple(getattr(model, "default_scorers", ()))
    raise_missing(missing_weights([model, *scorers_of(names)]))


def check_scorer_weights(names: Iterable[str]) -> None:
    """The same check for a list of scorer names (`molebench score --scorers`)."""
    raise_missing(missing_weights(scorers_of(names)))


def make_model(config: RunConfig) -> Any:
    """The configured model object (no weights read); a bad `--option` is a usage error, as in a run."""
    try:
        return MODELS.get(config.model)(weights=config.weights, **config.model_options)
    except UsageError:
        raise
    except InputError as exc:
        raise UsageError(str(exc)) from None


def scorers_of(names: Iterable[str]) -> list[Any]:
    """One scorer object per distinct base scorer (`hps-v2.1@face` needs hps-v2.1's weights)."""
    bases = dict.fromkeys(split_region(name)[0] for name in names)
    return [SCORERS.get(name)(device="cpu") for name in bases]


def missing_weights(entries: Iterable[Any]) -> list[MissingWeightsError]:
    """The missing-weights errors of `entries` (models or scorers), in order."""
    return [status.error for status in (entry.weights_status() for entry in entries)
            if not status.present and isinstance(status.error, MissingWeightsError)]
