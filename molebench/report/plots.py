"""Score-distribution figures as PNG bytes (matplotlib's object API on the Agg canvas: no pyplot global state)."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def distribution_png(
    series: list[tuple[str, np.ndarray]],
    differences: list[tuple[str, np.ndarray]],
    xlabel: str,
    dpi: int = 90,
) -> bytes:
    """Histogram and box plot of per-image scores per run; with a reference, the per-prompt differences too."""
    panels = 3 if differences else 2
    fig = Figure(figsize=(4.0 * panels, 3.2), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)
    finite = [(label, v[np.isfinite(v)]) for label, v in series]
    everything = np.concatenate([v for _, v in finite]) if finite else np.zeros(0)
    if everything.size:
        low, high = float(everything.min()), float(everything.max())
        bins = np.linspace(low, high if high > low else low + 1e-9, 30)
        for index, (label, values) in enumerate(finite):
            axes[0].hist(values, bins=bins, histtype="step", linewidth=1.6, color=COLORS[index % len(COLORS)],
                         label=label)
    axes[0].set_xlabel(xlabel)
    axes[0].set_ylabel("images")
    axes[0].legend(fontsize=7, loc="best")
    axes[1].boxplot([v for _, v in finite], showmeans=True)  # default orientation: stable across matplotlib 3.8+
    axes[1].set_xticks(range(1, len(finite) + 1), [_short(label) for label, _ in finite], rotation=15, fontsize=7)
    axes[1].set_ylabel(xlabel)
    if differences:
        for index, (label, values) in enumerate(differences):
            axes[2].hist(values[np.isfinite(values)], bins=20, histtype="step", linewidth=1.6,
                         color=COLORS[(index + 1) % len(COLORS)], label=label)
        axes[2].axvline(0.0, color="black", linewidth=0.8)
        axes[2].set_xlabel(f"per-prompt Δ vs reference ({xlabel})")
        axes[2].set_ylabel("prompts")
        axes[2].legend(fontsize=7, loc="best")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _short(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
