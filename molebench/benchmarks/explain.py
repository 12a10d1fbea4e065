"""`molebench prompts explain diffusiondb-human-paper --source metadata.parquet`: the pool size under other rules.

The paper says its DiffusionDB Human Prompts pool holds about 64k prompts; the rule its text states (human words,
NSFW removed with DiffusionDB's indicators, prompts with special symbols such as `[` `]` removed), applied to the
shared 10k-prompt sample and scaled to DiffusionDB 2M's 2M rows, gives about 260k. No rule the paper states explains
the gap, so this command counts the pool under candidate rules — symbol sets, which NSFW score and threshold,
row- or prompt-level NSFW, de-duplication, subsets of DiffusionDB's parts — for a user who has the real metadata to
see which one lands near 64k. The first row is the definition's own rule (what `prompts build` keeps).

Counting follows the builder (`select`): text normalised, empty prompts dropped, the definition's human words
matched whole-word, one prompt per de-duplication key. Columns a source lacks (prompt-only files have no NSFW
scores, not every file has part ids) make their rules "n/a" instead of silently equal to another row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from molebench.benchmarks import diffusiondb
from molebench.benchmarks.builder import dedup_key
from molebench.benchmarks.definition import Definition
from molebench.benchmarks.source import normalise
from molebench.errors import InputError

DIFFUSIONDB_2M_ROWS = 2_000_000
IMAGES_PER_PART = 1000  # DiffusionDB parts hold 1,000 images each; 2M is parts 1-2000 (Large goes on to 14000)
PAPER_POOL = 64_000  # "about 64k" in the paper's text
BRACKETS = ("[", "]")
ALL_BRACKETS = ("[", "]", "{", "}", "<", ">", "(", ")")
SYNTAX = ALL_BRACKETS + ("::", "|", ":")
_PART = re.compile(r"^(?:part-)?(\d{6})[-_/]")


@dataclass(frozen=True)
class Rule:
    """One candidate rule: a symbol filter, an NSFW filter, de-duplication and a part subset."""

    name: str
    symbols: tuple[str, ...] | None = None  # None: the definition's symbols and patterns
    patterns: tuple[str, ...] = ()
    prompt_nsfw: float | None = 0.5
    image_nsfw: float | None = 0.5
    nsfw_per_prompt: bool = False  # drop every row of a prompt any of whose rows is over the threshold
    dedup: bool = True
    max_part: int | None = None
    varies_nsfw: bool = False  # a rule about the NSFW filter: n/a when the source has no NSFW scores


@dataclass
class Count:
    rule: Rule
    pool: int | None  # None: not applicable to this source
    note: str = ""
    scaled: float | None = None  # the pool scaled linearly to the rows of DiffusionDB 2M (or of the parts kept)


def candidate_rules(definition: Definition) -> list[Rule]:
    prompt, image = definition.max_prompt_nsfw, definition.max_image_nsfw
    base = Rule("the definition's rule", prompt_nsfw=prompt, image_nsfw=image, dedup=definition.dedup)
    return [
        base,
        Rule("symbols: only [ ]", symbols=BRACKETS, prompt_nsfw=prompt, image_nsfw=image),
        Rule("symbols: any bracket, ( ) too", symbols=ALL_BRACKETS, prompt_nsfw=prompt, image_nsfw=image),
        Rule("symbols: any bracket, ':' and '|'", symbols=SYNTAX, prompt_nsfw=prompt, image_nsfw=image),
        Rule("symbols: none removed", symbols=(), prompt_nsfw=prompt, image_nsfw=image),
        Rule("NSFW: none removed", varies_nsfw=True, prompt_nsfw=None, image_nsfw=None),
        Rule("NSFW: prompt score only <= 0.5", varies_nsfw=True, image_nsfw=None),
        Rule("NSFW: image score only <= 0.5", varies_nsfw=True, prompt_nsfw=None),
        Rule("NSFW: both scores <= 0.2", prompt_nsfw=0.2, image_nsfw=0.2, varies_nsfw=True),
        Rule("NSFW: both scores <= 0.1", prompt_nsfw=0.1, image_nsfw=0.1, varies_nsfw=True),
        Rule("NSFW: per prompt (any row over 0.5 drops it)", prompt_nsfw=prompt, image_nsfw=image,
             nsfw_per_prompt=True, varies_nsfw=True),
        Rule("no de-duplication (rows)", prompt_nsfw=prompt, image_nsfw=image, dedup=False),
        Rule("parts 1-2000 only (DiffusionDB 2M, not Large)", prompt_nsfw=prompt, image_nsfw=image, max_part=2000),
        Rule("parts 1-1000 only (2M's first half)", prompt_nsfw=prompt, image_nsfw=image, max_part=1000),
        Rule("parts 1-500 only (2M's first quarter)", prompt_nsfw=prompt, image_nsfw=image, max_part=500),
    ]


def load_rows(definition: Definition, paths: list[Path]):
    """The sources as one table: prompt (normalised), dedup key, human match, NSFW scores and part (NaN if absent)."""
    import pandas as pd

    source = definition.source
    prompt_columns = tuple(source.get("prompt_columns", diffusiondb.DEFAULT_PROMPT_COLUMNS))
    id_columns = tuple(source.get("id_columns", diffusiondb.DEFAULT_ID_COLUMNS))
    nsfw = {"prompt_nsfw": source.get("nsfw_column", "prompt_nsfw"),
            "image_nsfw": source.get("image_nsfw_column", "image_nsfw")}
    frames = []
    for path in diffusiondb.resolve(definition, paths):
        frame = diffusiondb.read_table(path, prompt_columns + id_columns + tuple(nsfw.values()) + ("part_id",))
        prompt_column = next((c for c in prompt_columns if c in frame.columns), None)
        if prompt_column is None:
            raise InputError(f"{path}: no prompt column (looked for {', '.join(prompt_columns)})")
        id_column = next((c for c in id_columns if c in frame.columns), None)
        out = pd.DataFrame({"prompt": [normalise(p) if isinstance(p, str) else "" for p in frame[prompt_column]]})
        for key, column in nsfw.items():
            out[key] = pd.to_numeric(frame[column], errors="coerce") if column in frame.columns else float("nan")
            out[f"has_{key}"] = column in frame.columns
        out["part"] = _parts(frame, id_column)
        frames.append(out)
    rows = pd.concat(frames, ignore_index=True)
    rows["key"] = [dedup_key(p) for p in rows["prompt"]]
    human = {p: bool(definition.words.match(p)) for p in dict.fromkeys(rows["prompt"])}
    rows["human"] = [bool(p) and human[p] and _short_enough(definition, p) for p in rows["prompt"]]
    return rows


def _parts(frame, id_column: str | None):
    import pandas as pd

    if "part_id" in frame.columns:
        return pd.to_numeric(frame["part_id"], errors="coerce")
    if id_column is None:
        return float("nan")
    return pd.to_numeric(frame[id_column].astype(str).str.extract(_PART)[0], errors="coerce")


def _short_enough(definition: Definition, prompt: str) -> bool:
    return definition.max_words is None or len(prompt.split(" ")) <= definition.max_words


def count(definition: Definition, rows, rule: Rule) -> Count:
    """The pool size of `rule` on `rows` (see `load_rows`)."""
    keep = rows["human"].copy()
    symbols = definition.drop_symbols if rule.symbols is None else rule.symbols
    patterns = definition.drop_patterns if rule.symbols is None else rule.patterns
    if symbols or patterns:
        has = rows["prompt"].apply(lambda p: any(s in p for s in symbols) or any(re.search(x, p) for x in patterns))
        keep &= ~has
    notes = []
    for key, threshold in (("prompt_nsfw", rule.prompt_nsfw), ("image_nsfw", rule.image_nsfw)):
        if threshold is None:
            continue
        if not rows[f"has_{key}"].all():  # as the builder: the filter does not apply to a prompt-only source
            if rule.varies_nsfw:
                return Count(rule, None, f"n/a: the source has no {key} column")
            continue
        bad = rows[key].isna() | (rows[key] > threshold)
        if rule.nsfw_per_prompt:
            bad = bad.groupby(rows["key"]).transform("any")
        keep &= ~bad
    considered, target = len(rows), DIFFUSIONDB_2M_ROWS
    if rule.max_part is not None:
        if rows["part"].isna().all():
            return Count(rule, None, "n/a: no part ids in the source")
        in_parts = rows["part"] <= rule.max_part
        keep &= in_parts
        considered, target = int(in_parts.sum()), rule.max_part * IMAGES_PER_PART
        notes.append(f"{considered:,} source rows in these parts")
    kept = rows[keep]
    pool = int(kept["key"].nunique()) if rule.dedup else int(len(kept))
    return Count(rule, pool, "; ".join(notes), pool * target / considered if considered else None)


def explain(definition: Definition, paths: list[Path]) -> tuple[int, list[Count], list[str]]:
    """Source rows, the pool size under each candidate rule, and notes on the source."""
    rows = load_rows(definition, paths)
    notes = [f"the source has no {key} column: that NSFW filter does not apply (as in `prompts build`)"
             for key in ("prompt_nsfw", "image_nsfw") if not rows[f"has_{key}"].all()]
    if rows["part"].notna().any():
        notes.append(f"DiffusionDB parts in the source: {int(rows['part'].min())}-{int(rows['part'].max())}")
    return len(rows), [count(definition, rows, rule) for rule in candidate_rules(definition)], notes
