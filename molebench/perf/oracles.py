"""The bench's way to the test oracles: `molebench_testing.reference`, which lives beside `molebench/` in a source
checkout and is not in the wheel (it wraps packages that are not molebench dependencies)."""

from __future__ import annotations

import importlib
from types import ModuleType

from molebench.errors import MolebenchError


class NoTestSupportError(MolebenchError):
    """A bench section needs the test-support package of a source checkout, and this install has none."""


def reference_module(section: str) -> ModuleType:
    """`molebench_testing.reference`, or an error naming the section and where the package is found."""
    try:
        return importlib.import_module("molebench_testing.reference")
    except ModuleNotFoundError as exc:
        if exc.name not in ("molebench_testing", "molebench_testing.reference"):
            raise
        raise NoTestSupportError(
            f"bench section '{section}' compares with the reference scorers of molebench_testing, the test-support "
            "package of a source checkout (it is not in the wheel): run `make bench` or `python -m molebench.perf "
            f"{section}` from the repository root") from None
