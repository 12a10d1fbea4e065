"""Number and LaTeX text shared by the table renderers (formats, overview): one precision rule, one escaper."""

from __future__ import annotations

import math


def decimals(values: list[float]) -> int:
    """Two decimals when the largest |value| is ≥ 10 (HPS ×100), three below (ImageReward)."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return 2 if finite and max(finite) >= 10 else 3


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "--", "Δ": r"$\Delta$",
        "α": r"$\alpha$", "×": r"$\times$", "<": r"$<$"}


def tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)
