"""`make bench`: speed ratios measured side by side in one run (never timed tests).

Each module in SECTIONS has `run(console) -> None` that measures its pair of implementations in the same process and
prints the ratio; `python -m molebench.perf [section ...]` runs them all or the named ones.
"""

SECTIONS: list[str] = [
    "scorers",
    "scorers-full",
    "mole",
    "scaleout",
    "study-agreement",
    "detectors",
    "people",
    "flops",
    "harness",
]


def section_module(name: str) -> str:
    """The module that implements bench section `name` (`scorers-full` -> molebench.perf.scorers_full)."""
    return f"molebench.perf.{name.replace('-', '_')}"
