"""CSV cells that a spreadsheet will not run: text starting with =, +, -, @ (or a tab or carriage return) is
prefixed with an apostrophe, as OWASP advises against CSV injection.

Run folder names, benchmark names, labels, prompts and rater names reach CSV files that people open in a spreadsheet,
where a cell like `=HYPERLINK(...)` would be a formula. Numbers are written as numbers (a negative mean stays
`-0.5`): only text that is not a number is changed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(TRIGGERS) or _is_number(value):
        return value
    return "'" + value


def safe_row(row: dict[str, Any]) -> dict[str, Any]:
    return {key: safe_cell(value) for key, value in row.items()}


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(safe_cell)
    return frame


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def direction_text(direction: bool | None) -> str:
    """A metric's direction as every molebench CSV spells it: `true`, `false` or empty (no direction)."""
    return "" if direction is None else str(bool(direction)).lower()
