"""The check's outputs: the JSON record, the README rows, and the block of README.md they replace."""

from __future__ import annotations

import math
from typing import Any

from molebench.perf.gpu_check.sources import PAPER_SCORERS

BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"
MODEL_FIELDS = ("load_s", "s_per_step", "best_batch", "images_per_s", "peak_memory_gib", "harness_vs_raw",
                "harness_vs_raw_at_default_steps", "gpu_hours_generation", "gpu_hours_scoring", "gpu_hours_total")
SCORER_FIELDS = ("images_per_s", "reference_images_per_s", "batched_vs_reference", "low_vs_fp32_max_abs",
                 "low_vs_fp32_mean_abs")


def add_gpu_hours(models: list[dict[str, Any]], scorers: list[dict[str, Any]], images: int) -> None:
    """Scoring hours of the paper protocol (its scorers, HPS v1 and ImageReward, at their measured images/s) and the
    total, on every model row that was measured."""
    rates = {s["scorer"]: s.get("images_per_s") for s in scorers if s.get("status") == "ok"}
    scoring = (sum(images / rates[name] for name in PAPER_SCORERS) / 3600
               if all(rates.get(name) for name in PAPER_SCORERS) else None)
    for row in models:
        if row.get("status") != "ok":
            continue
        row["gpu_hours_scoring"] = scoring
        row["gpu_hours_total"] = None if scoring is None else row["gpu_hours_generation"] + scoring


def _cell(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 0.01 and value else f"{value:.{digits}f}"
    return str(value)


def _escaped(text: str) -> str:
    """A message inside a Markdown table cell (a pipe would start a new cell)."""
    return str(text).replace("|", "\\|")


def readme_rows(record: dict[str, Any]) -> str:
    """Two Markdown tables (models, scorers) for README's performance section, naming the device."""
    device = record["device"]["name"]
    stopped = "" if record.get("complete", True) else ", stopped at its time limit"
    lines = [f"`make gpu-check` on {device} ({record['mode']} mode, {record['created']}, "
             f"{record['seconds']:.0f} s in all{stopped}; "
             f"paper protocol = {record['protocol']['images']:,} images):", "",
             "| model | dtype | size | load s | s/step (batch) | best batch | img/s | peak GiB | harness/raw "
             "(at default steps) | GPU-h generation + scoring |", "| --- | --- | --- | --- | --- | --- | --- | --- | "
             "--- | --- |"]
    for m in record["models"]:
        if m.get("status") != "ok":
            lines.append(f"| {m['model']} ({m['run_as']}) | {_escaped(m['status'])} |  |  |  |  |  |  |  |  |")
            continue
        lines.append(
            f"| {m['model']} ({m['run_as']}) | {m['dtype']} | {m['size'][0]}×{m['size'][1]} | "
            f"{_cell(m['load_s'], 1)} | "
            f"{_cell(m['s_per_step'], 3)} | {m['best_batch']} | {_cell(m['images_per_s'])} | "
            f"{_cell(m['peak_memory_gib'])} | {_cell(m['harness_vs_raw'], 3)} "
            f"({_cell(m['harness_vs_raw_at_default_steps'], 3)}) | {_cell(m['gpu_hours_generation'])} + "
            f"{_cell(m.get('gpu_hours_scoring'))} |")
    lines += ["", "| scorer | dtype | img/s batched | reference img/s | batched / reference "
                  "| max (mean) abs(low − fp32) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for s in record["scorers"]:
        if s.get("status") != "ok":
            lines.append(f"| {s['scorer']} ({s['run_as']}) | {_escaped(s['status'])} |  |  |  |  |")
            continue
        ref = _cell(s["reference_images_per_s"]) if s["reference"] else f"— ({_escaped(s['reference_note'])})"
        lines.append(f"| {s['scorer']} ({s['run_as']}) | {s['dtype']} | {_cell(s['images_per_s'])} | {ref} | "
                     f"{_cell(s['batched_vs_reference'])} | {_cell(s['low_vs_fp32_max_abs'], 2)} "
                     f"({_cell(s['low_vs_fp32_mean_abs'], 2)}) |")
    return "\n".join(lines)


def replace_block(text: str, rows: str) -> str:
    """README text with the block between the gpu-check markers replaced by `rows` (markers kept)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {BEGIN} … {END} block to replace")
    return text[: start + len(BEGIN)] + "\n" + rows + "\n" + text[end:]
