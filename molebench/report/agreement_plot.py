"""The agreement figure: per question, each metric's pairwise accuracy with its 95% interval, the human ceiling as a
shaded band, chance (0.5) as a dashed line. Drawn with the report's figure style (matplotlib object API, SVG + PNG).

SVG ids name the parts, so the browser test can find them: `ceiling-P` (the band of panel P), `metric-P-K` (the K-th
metric's point and interval in panel P), `chance-P`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from molebench.report import plots

CEILING_COLOUR = "#9ecae1"
POINT_COLOUR = "#d95f02"


@plots.styled
def agreement_figure(table: pd.DataFrame) -> Figure:
    """One panel per question (questions in table order); metrics top to bottom in table order."""
    questions = list(dict.fromkeys(table["question"]))
    rows = max(int((table["kind"] == "metric").groupby(table["question"]).sum().max()), 1)
    fig, axes = plots.new_figure(len(questions), height=max(2.4, 1.4 + 0.35 * rows))
    for index, (ax, question) in enumerate(zip(axes, questions)):
        part = table[table["question"] == question]
        ceiling = part[part["kind"] == "ceiling"].iloc[0]
        metrics = part[part["kind"] == "metric"]
        if np.isfinite(ceiling.ci_low):
            ax.axvspan(ceiling.ci_low, ceiling.ci_high, color=CEILING_COLOUR, alpha=0.5, linewidth=0,
                       gid=f"ceiling-{index}")
        if np.isfinite(ceiling.accuracy):
            ax.axvline(ceiling.accuracy, color=CEILING_COLOUR, linewidth=1.5)
        ax.axvline(0.5, color="black", linewidth=0.8, linestyle="--", gid=f"chance-{index}")
        y = np.arange(len(metrics))[::-1]
        for k, (position, row) in enumerate(zip(y, metrics.itertuples())):
            if not np.isfinite(row.accuracy):
                continue
            low, high = (row.ci_low, row.ci_high) if np.isfinite(row.ci_low) else (row.accuracy, row.accuracy)
            line = ax.errorbar(row.accuracy, position, xerr=[[row.accuracy - low], [high - row.accuracy]], fmt="o",
                               color=POINT_COLOUR, markersize=6, capsize=3, linewidth=1.6)
            line.lines[0].set_gid(f"metric-{index}-{k}")
        ax.set_yticks(y, list(metrics["name"]) if len(metrics) else [])
        ax.set_ylim(-0.7, max(len(metrics), 1) - 0.3)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("pairwise accuracy vs human votes")
        ax.set_title(str(part["question_label"].iloc[0]), loc="left")
    handles = [Line2D([], [], color=POINT_COLOUR, marker="o", linewidth=1.6), Patch(facecolor=CEILING_COLOUR),
               Line2D([], [], color="black", linewidth=0.8, linestyle="--")]
    fig.legend(handles, ["metric (95% CI)", "human ceiling (95% CI)", "chance"], loc="outside lower center",
               ncols=3, frameon=False).set_gid("legend")
    return fig


def render(table: pd.DataFrame, name: str) -> plots.Rendered:
    return plots.render(agreement_figure(table), name)
