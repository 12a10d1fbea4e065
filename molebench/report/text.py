"""Number and LaTeX text shared by the table renderers (formats, overview): one precision rule, one escaper."""

from __future__ import annotations

import math
import re


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "--", "Δ": r"$\Delta$",
        "α": r"$\alpha$", "×": r"$\times$", "<": r"$<$", ">": r"$>$", "↑": r"$\uparrow$", "↓": r"$\downarrow$",
        "±": r"$\pm$", "·": r"$\cdot$", "≥": r"$\geq$", "≤": r"$\leq$", "–": "--", "−": "$-$", "◇": r"$\diamond$",
        "…": r"\ldots{}", "\u2019": "'", "\u201c": "``", "\u201d": "''", "|": r"\textbar{}"}
_MINUS = re.compile(r"(?<![\w.])-(?=\d)")  # a minus sign before a number, not a hyphen inside a word


def tex(text: str) -> str:
    """Text safe for pdflatex with no extra packages: special characters escaped, the symbols molebench prints as
    math, a number's minus sign as a math minus; a character beyond Latin-1 becomes `?` (pdflatex without
    extra packages cannot set it) rather than an error in the user's build."""
    text = _MINUS.sub("\u2212", text)
    return "".join(_TEX.get(ch, ch if ord(ch) < 256 else "?") for ch in text)
