"""The MoLE paper's reported numbers (molebench/data/paper_results.json), looked up beside measured results.

The file lists only numbers read from a cited table; the ones that could not be verified are named under `missing`
with the reason, and `compare --paper` says so instead of showing a number nobody checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from molebench.errors import InputError

SCHEMA = "molebench paper results 1"
PAPER_SAMPLE = 3000  # prompts per repeat in the paper's protocol
# scorers that are the paper's instrument under another name (the same network and weights)
SCORER_ALIASES = {"hps-v1-fp16norm": "hps-v1"}
# The prompts the paper's models were given. MoLE: the official scripts (gen_img_diffusers_moe.py,
# moe_sdxl_gen_img.py) append the suffix, use the negative prompt and weight (x)/[x]/(x:w) marks. Baselines: no
# text; SD v1.5 and SDXL are implied to come from the same repository's kohya base-model scripts, which weight marks
# too; for the others the paper says nothing about weighting.
OFFICIAL_SUFFIX, OFFICIAL_NEGATIVE = " best quality, 8K", " poor quality, unclear hand, bad face "
WEIGHTED_BASELINES = ("sd15", "sdxl")


def family(benchmark: str) -> str:
    """`coco-human-paper` and `coco-human` are one benchmark family (the same source, other definitions)."""
    return benchmark.removesuffix("-paper")


def entry_scale(entry: dict[str, Any]) -> float | None:
    """The factor the entry's value carries over the raw score (None: an older file in display units)."""
    scale = entry.get("scale")
    return float(scale) if isinstance(scale, (int, float)) and scale > 0 else None
RESULT_KEYS = ("model", "benchmark", "scorer", "metric", "value", "table")


@dataclass
class PaperResults:
    source: dict[str, Any]
    results: list[dict[str, Any]]
    missing: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""

    def lookup(self, model: str, benchmark: str, scorer: str, metric: str) -> dict[str, Any] | None:
        """The paper's entry for exactly this model/benchmark/scorer/metric, if any."""
        for entry in self.results:
            if (entry["model"], entry["benchmark"], entry["scorer"], entry["metric"]) == (model, benchmark, scorer,
                                                                                           metric):
                return entry
        return None

    def match(self, model: str, benchmark: str, scorer: str, metric: str, protocol: dict[str, Any] | None,
              extra: Mapping[str, Any] | None = None) -> tuple[dict[str, Any] | None, list[str]]:
        """The paper's entry for a run, and how the run differs from the way the paper measured it.

        The same model, scorer and metric match; a run on the same benchmark family (`coco-human` for the paper's
        `coco-human-paper`) matches too, with the difference named. The scorer must be the paper's own (HPS v1 is
        another instrument than HPS v2: no number is shown beside hps-v2). `extra`: the run's `settings.extra`,
        whose prompt text and weighting are checked against the paper's (see `prompt_differences`)."""
        scorer = SCORER_ALIASES.get(scorer, scorer)
        entry = self.lookup(model, benchmark, scorer, metric)
        if entry is None:
            entry = next((e for e in self.results if (e["model"], e["scorer"], e["metric"]) == (model, scorer, metric)
                          and family(e["benchmark"]) == family(benchmark)), None)
        if entry is None:
            return None, []
        differences = []
        if entry["benchmark"] != benchmark:
            differences.append(f"benchmark {benchmark} (the paper's set is {entry['benchmark']})")
        if entry.get("protocol", "").startswith("paper"):
            if not protocol or protocol.get("name") != "paper":
                differences.append("not --protocol paper (mean over all prompts, no repeats)")
            elif protocol.get("sample_size") != PAPER_SAMPLE:
                differences.append(f"{protocol.get('repeats')} repeats of {protocol.get('sample_size')} prompts "
                                   f"(the paper: 3 of {PAPER_SAMPLE:,})")
        if extra is not None:
            differences += prompt_differences(entry["model"], extra)
        return entry, differences

    def citation(self) -> str:
        """`authors. title. venue, arXiv:id` from the fields the source has (a file without them prints no empty
        punctuation); `unnamed source` when it has none."""
        s = {k: str(self.source.get(k) or "").strip().rstrip(".") for k in ("authors", "title", "venue", "arxiv")}
        tail = ", ".join(filter(None, [s["venue"], f"arXiv:{s['arxiv']}" if s["arxiv"] else ""]))
        return ". ".join(filter(None, [s["authors"], s["title"], tail])) or "unnamed source"

    def missing_note(self) -> str:
        if not self.missing:
            return ""
        return "; ".join(f"{m.get('table')}: {m.get('reason')}" for m in self.missing)


def prompt_differences(paper_model: str, extra: Mapping[str, Any]) -> list[str]:
    """How a run's prompt text and weighting (its `settings.extra`) differ from what the paper's `paper_model` got."""
    mole = paper_model.startswith("mole")
    text = (extra.get("prompt_suffix", ""), extra.get("negative_prompt", ""))
    expected = (OFFICIAL_SUFFIX, OFFICIAL_NEGATIVE) if mole else ("", "")
    differences = []
    if text != expected:
        differences.append(f"prompt text: suffix {text[0]!r}, negative prompt {text[1]!r} (the paper's "
                           f"{'official MoLE scripts' if mole else 'baselines, implied'}: {expected[0]!r}, "
                           f"{expected[1]!r})")
    weighting = extra.get("prompt_weighting", "none")
    if (mole or paper_model in WEIGHTED_BASELINES) and weighting != "official":
        differences.append(f"prompt weighting {weighting} (the official scripts read (x), [x], (x:w) marks"
                           f"{'' if mole else '; implied for this baseline'})")
    return differences


def load_paper_results(path: str | Path | None = None) -> PaperResults:
    """The shipped file, or another file of the same schema (to add numbers locally)."""
    try:
        if path is None:
            text = resources.files("molebench").joinpath("data/paper_results.json").read_text(encoding="utf-8")
            where = "molebench/data/paper_results.json"
        else:
            text = Path(path).read_text(encoding="utf-8")
            where = str(path)
    except OSError as exc:
        raise InputError(f"cannot read paper results {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"paper results {where}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"paper results {where}: expected \"schema\": \"{SCHEMA}\"")
    results = data.get("results") or []
    for number, entry in enumerate(results):
        absent = [k for k in RESULT_KEYS if k not in entry]
        if absent:
            raise InputError(f"paper results {where}: entry {number} lacks {', '.join(absent)}")
        if not isinstance(entry["value"], (int, float)):
            raise InputError(f"paper results {where}: entry {number} value is not a number")
    return PaperResults(source=data.get("source") or {}, results=results, missing=data.get("missing") or [],
                        path=where)
