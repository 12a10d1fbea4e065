"""Run the benchmark sections (all, or those named on the command line)."""

from __future__ import annotations

import importlib
import sys

from molebench.errors import MolebenchError
from molebench.perf import SECTIONS, section_module
from molebench.ui import err, out


def main(argv: list[str]) -> int:
    chosen = argv or SECTIONS
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        out.print(f"unknown bench section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        return 1
    failed = 0
    for name in chosen:
        out.rule(f"bench: {name}")
        try:
            importlib.import_module(section_module(name)).run(out)
        except MolebenchError as exc:  # e.g. a section that needs a source checkout's test support, run from a wheel
            err.print(f"error: {exc}", markup=False)
            failed = max(failed, exc.exit_code)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
