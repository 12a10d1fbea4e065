"""Report figures with matplotlib's object API on the Agg canvas (no pyplot global state), as SVG and PNG.

Every figure is one row of panels at page width with a single legend *outside* the panels (so it never hides a
series), each run in the colour `labels.colours` gave it (the same in every figure), and integer ticks on count axes.
SVG elements carry ids that name their role and run (`legend-handle-runK`, `legend-text-runK`, `series-P-runK`,
`axes-P`; K = the run's index in the colour map, P = the panel), which is how the browser test checks that a legend
entry and its series share a colour and that the legend stays clear of the plot areas.
"""

from __future__ import annotations

import functools
import io
import re
import textwrap
from dataclasses import dataclass

import matplotlib
import matplotlib.colors
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

WIDTH_IN = 12.0  # inches at page width; the SVG scales to the page, the PNG is 150 dpi
PANEL_HEIGHT_IN = 3.4
PNG_DPI = 150
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 9, "svg.fonttype": "none",
         "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True)
class Rendered:
    """One figure as PNG bytes and SVG text (the SVG's ids are unique to `name`)."""

    name: str
    png: bytes
    svg: str


@dataclass(frozen=True)
class Series:
    """Values of one run in one panel, with the run's label and colour index."""

    label: str
    run: int
    values: np.ndarray


def styled(build):
    """Build the figure under the report style (matplotlib reads rc settings as artists are created)."""
    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)
    return wrapper


def new_figure(panels: int, height: float = PANEL_HEIGHT_IN) -> tuple[Figure, list]:
    fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    for index, ax in enumerate(axes):
        ax.set_gid(f"axes-{index}")
    return fig, list(axes)


def run_legend(fig: Figure, entries: list[tuple[str, int]], colours: list[str], kind: str = "line") -> None:
    """One legend for the figure, below the panels; entries are (label, run index)."""
    handles = [Line2D([], [], color=colours[run], linewidth=2.2) if kind == "line"
               else Patch(facecolor=colours[run], edgecolor=colours[run]) for _, run in entries]
    legend = fig.legend(handles, [label for label, _ in entries], loc="outside lower center",
                        ncols=min(len(entries), 4), frameon=False)
    legend.set_gid("legend")
    for handle, text, (_, run) in zip(legend.legend_handles, legend.get_texts(), entries):
        handle.set_gid(f"legend-handle-run{run}")
        text.set_gid(f"legend-text-run{run}")


def render(fig: Figure, name: str) -> Rendered:
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        png, svg = io.BytesIO(), io.StringIO()
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        fig.set_layout_engine("none")  # the layout is done: the PNG reuses it instead of solving it again
        fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return Rendered(name, png.getvalue(), svg.getvalue())


def inline_svg(svg: str, prefix: str) -> str:
    """The SVG element alone, every id (and reference to one) prefixed, so several figures can share a page."""
    body = svg[svg.index("<svg"):]
    body = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', body)
    body = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", body)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', body)


@styled
def distribution(series: list[Series], differences: list[Series], xlabel: str, colours: list[str]) -> Figure:
    """Histogram and box plot of per-image scores per run; with a reference, the per-prompt differences too."""
    fig, axes = new_figure(3 if differences else 2)
    finite = [Series(s.label, s.run, s.values[np.isfinite(s.values)]) for s in series]
    everything = np.concatenate([s.values for s in finite]) if finite else np.zeros(0)
    if everything.size:
        bins = bin_edges(everything, 30)
        for s in finite:
            _, _, patches = axes[0].hist(s.values, bins=bins, histtype="step", linewidth=1.6, color=colours[s.run])
            for patch in patches:
                patch.set_gid(f"series-0-run{s.run}")
    else:
        no_data(axes[0])
    axes[0].set_xlabel(xlabel)
    axes[0].set_ylabel("images")
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    boxes = axes[1].boxplot([s.values for s in finite], patch_artist=True, showmeans=True, widths=0.6,
                            medianprops={"color": "black"},
                            meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black"})
    for s, box in zip(finite, boxes["boxes"]):
        box.set(facecolor=matplotlib.colors.to_rgba(colours[s.run], 0.35), edgecolor=colours[s.run], linewidth=1.6)
        box.set_gid(f"series-1-run{s.run}")
    axes[1].set_xticks(range(1, len(finite) + 1), [""] * len(finite))
    half = max(len(finite), 3) / 2  # boxes keep one width whatever the number of runs
    axes[1].set_xlim((len(finite) + 1) / 2 - half, (len(finite) + 1) / 2 + half)
    axes[1].tick_params(axis="x", length=0)
    axes[1].set_ylabel(xlabel)
    if not everything.size:
        no_data(axes[1])
    if differences:
        finite_differences = [s.values[np.isfinite(s.values)] for s in differences]
        pooled = np.concatenate(finite_differences)
        for s, values in zip(differences, finite_differences):
            if not values.size:
                continue
            _, _, patches = axes[2].hist(values, bins=bin_edges(pooled, 20), histtype="step", linewidth=1.6,
                                         color=colours[s.run])
            for patch in patches:
                patch.set_gid(f"series-2-run{s.run}")
        if not pooled.size:
            no_data(axes[2])
        axes[2].axvline(0.0, color="black", linewidth=0.8)
        axes[2].set_xlabel(f"per-prompt Δ vs reference ({xlabel})")
        axes[2].set_ylabel("prompts")
        axes[2].yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax, title in zip(axes, ("per image", "per image", "per prompt, paired")):
        ax.set_title(title, loc="left")
    run_legend(fig, [(s.label, s.run) for s in series], colours)
    return fig


def panel_title(title: str, panels: int) -> str:
    """A panel title wrapped to its panel's width (about 11 characters per inch at the title size), so the titles
    of many panels side by side are never clipped."""
    width = max(12, int(WIDTH_IN / panels * 11))
    return "\n".join(textwrap.wrap(title, width, break_on_hyphens=False)) or title


def bin_edges(values: np.ndarray, count: int) -> np.ndarray:
    """Histogram edges over the values' range; values that are all equal (identical runs, a count that never
    varies) get bins of width 1 around them instead of a 1e-9-wide range that puts an offset like ×1e-9 on the axis."""
    low, high = float(values.min()), float(values.max())
    if high > low:
        return np.linspace(low, high, count)
    return np.linspace(low - 0.5, low + 0.5, 2)


def no_data(ax) -> None:
    """Label an empty panel (a metric without any finite value) instead of leaving a bare or flat plot."""
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#666", gid="no-data")
    ax.set_xticks([])
    ax.set_yticks([])


@dataclass(frozen=True)
class Estimate:
    """A mean or a difference with its CI, for one run in one panel."""

    label: str
    run: int
    value: float
    low: float
    high: float


@styled
def means(panels: list[tuple[str, list[Estimate]]], colours: list[str]) -> Figure:
    """Bars of each run's mean with its CI, one panel per metric (the title names metric and units)."""
    fig, axes = new_figure(len(panels))
    entries: dict[int, str] = {}
    for index, (ax, (title, estimates)) in enumerate(zip(axes, panels)):
        x = np.arange(len(estimates))
        for position, e in zip(x, estimates):
            bar = ax.bar(position, e.value, width=0.7, color=colours[e.run])
            bar.patches[0].set_gid(f"series-{index}-run{e.run}")
            lines = ax.errorbar(position, e.value, yerr=[[e.value - e.low], [e.high - e.value]], color="black",
                                capsize=4, linewidth=1.2)
            lines.lines[2][0].set_gid(f"ci-{index}-run{e.run}")
            entries.setdefault(e.run, e.label)
        ax.set_xticks(x, [""] * len(x))
        ax.tick_params(axis="x", length=0)
        half = max(len(x), 3) / 2  # bars keep one width whatever the number of runs
        ax.set_xlim((len(x) - 1) / 2 - half, (len(x) - 1) / 2 + half)
        ax.set_title(panel_title(title, len(panels)), loc="left")
        ax.axhline(0.0, color="black", linewidth=0.8)
        if not any(np.isfinite(e.value) for e in estimates):
            no_data(ax)
    run_legend(fig, [(label, run) for run, label in entries.items()], colours, kind="patch")
    return fig


@styled
def forest(panels: list[tuple[str, list[Estimate]]], reference: str, colours: list[str]) -> Figure:
    """Each candidate's paired Δ vs the reference with its CI, one row per candidate and one panel per metric."""
    rows = max(len(estimates) for _, estimates in panels)
    fig, axes = new_figure(len(panels), height=max(2.4, 1.5 + 0.45 * rows))
    entries: dict[int, str] = {}
    for index, (ax, (title, estimates)) in enumerate(zip(axes, panels)):
        y = np.arange(len(estimates))[::-1]
        for position, e in zip(y, estimates):
            line = ax.errorbar(e.value, position, xerr=[[e.value - e.low], [e.high - e.value]], fmt="o",
                               color=colours[e.run], markersize=7, capsize=4, linewidth=2)
            line.lines[0].set_gid(f"series-{index}-run{e.run}")
            line.lines[2][0].set_gid(f"ci-{index}-run{e.run}")
            entries.setdefault(e.run, e.label)
        ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yticks(y, [e.label for e in estimates] if index == 0 else [""] * len(y))
        ax.set_ylim(-0.7, len(estimates) - 0.3)
        ax.set_xlabel(f"Δ vs {reference}")
        ax.set_title(panel_title(title, len(panels)), loc="left")
        bounds = [v for e in estimates for v in (e.low, e.high) if np.isfinite(v)]
        low, high = min(bounds + [0.0]), max(bounds + [0.0])
        pad = 0.08 * (high - low or 1.0)
        ax.set_xlim(low - pad, high + pad)
    run_legend(fig, [(label, run) for run, label in entries.items()], colours)
    return fig
