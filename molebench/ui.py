"""Terminal output: status and progress on stderr, result tables on stdout (so they can be piped)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

PIPED_WIDTH = 160  # result tables written to a pipe or file: wide enough that names are not squeezed (80 is rich's)



class _ResultConsole(Console):
    """stdout: a terminal's own width; a pipe or file (decided at each print) PIPED_WIDTH, whatever COLUMNS says
    (test runners and some shells export COLUMNS=80, which would squeeze names again)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if not self.is_terminal:  # rich would take COLUMNS (read at start-up) as the width
            return ConsoleDimensions(PIPED_WIDTH, size.height)
        return size


err = Console(stderr=True, highlight=False)
out = _ResultConsole(highlight=False)


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@contextlib.contextmanager
def native_stderr_without(noise: tuple[re.Pattern[str], ...]) -> Iterator[None]:
    """Drop the `noise` lines that native (C/C++) libraries write straight to file descriptor 2 during the block.

    Such logs (TFLite, absl) bypass Python's `logging` and `warnings`, so only the descriptor can catch them; every
    other line written meanwhile is printed afterwards, so a real error message is never lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode("utf-8", errors="replace").splitlines()
            kept = [line for line in lines if not any(pattern.search(line) for pattern in noise)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()
