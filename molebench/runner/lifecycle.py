"""One command's life in a run folder, shared by `run` and `score`: open (history entry `running`), work, close.

Closing is the same for both commands: the summary, the repeat summary of a protocol run, the command's history
entry closed with what the folder gained, the manifest marked complete, the tables printed. A command stopped on the
way (Ctrl-C, SIGTERM) closes as `interrupted` instead: the manifest says so, its counts are what the folder holds,
and one line says what was finished and how to continue.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd

from molebench import faults, ui
from molebench.runner.environment import device_info, git_commit, utc_now
from molebench.runner.protocol import protocol_title, repeats_table
from molebench.store import RunStore
from molebench.store.history import finish_history, start_history
from molebench.store.manifest import INTERRUPTED, Manifest
from molebench.store.summary import headline_texts, summarise, summary_table, write_repeats_summary


@dataclass
class Command:
    """The folder one command works on, and the manifest it keeps (the main process only)."""

    store: RunStore
    manifest: dict[str, Any]
    items: pd.DataFrame
    timings: dict[str, Any] = field(default_factory=dict)
    closed: bool = False  # the manifest says complete: a stop after that (while printing) changes nothing


def open_history(previous: Manifest | None, store: RunStore, items: pd.DataFrame, stage: str,
                 options: dict[str, Any], scorers: tuple[str, ...] | list[str], device: Any, processes: int,
                 scores: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """The folder's history with this command appended as `running` (a killed command's entry closed first)."""
    return start_history(previous, stage, options, scorers, device_info(device), processes, utc_now(), git_commit(),
                         store.contents(items, scores))


def close(command: Command, title: str, empty_note: str | None = None) -> None:
    """Summary, repeat summary, history and manifest (marked complete: the last write), then the tables."""
    store, manifest = command.store, command.manifest
    scores = store.read_scores()  # read once: the summary, the repeat summary and the counts all rest on it
    summary = summarise(scores, manifest["scorers"], store.read_set_scores())
    store.write_summary(summary)
    repeats = write_repeats_summary(store, manifest["scorers"], scores)
    faults.reached("summary")
    finish_history(manifest, command.items, utc_now(), store.contents(command.items, scores), command.timings)
    store.write_manifest(manifest)
    command.closed = True
    if summary.empty and empty_note:
        ui.out.print(empty_note, soft_wrap=True, markup=False)
    else:
        ui.out.print(summary_table(summary, title, headline_texts(repeats) if repeats is not None else None))
    if repeats is not None:
        ui.out.print(repeats_table(repeats, protocol_title(manifest.get("protocol") or {})))


@contextlib.contextmanager
def stopping_says_so(command: Command | None) -> Iterator[None]:
    """A command stopped by Ctrl-C or SIGTERM: mark its history entry and the manifest `interrupted` (counts from
    the folder's contents), say in one line what the folder holds and how to continue, and let the stop go on."""
    try:
        yield
    except KeyboardInterrupt:
        if command is not None and not command.closed:
            with contextlib.suppress(Exception):  # a second failure must not hide the stop
                mark_interrupted(command)
        raise


def mark_interrupted(command: Command) -> None:
    store, items = command.store, command.items
    contents = store.contents(items)
    finish_history(command.manifest, items, utc_now(), contents, command.timings, status=INTERRUPTED)
    store.write_manifest(command.manifest)
    scored = f", {contents['scored']} (image, scorer) pairs scored" if contents["scored"] else ""
    ui.err.print(f"interrupted: {store.root} holds {contents['generated']} of {len(items)} images{scored}; run the "
                 f"same command again to continue:  {shlex.join(['molebench', *sys.argv[1:]])}", soft_wrap=True,
                 markup=False)
