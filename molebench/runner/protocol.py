"""The MoLE paper's evaluation protocol (`molebench run --protocol paper`): 3 independent random samples of 3,000
prompts from a benchmark's pool, every sampled prompt generated and scored, each sample's mean reported, and the
mean ± standard error over the 3 repeats (the form of the paper's tables), in the paper's units (HPS ×100,
ImageReward ×100).

Why a run option and not a benchmark variant: the samples are drawn from a benchmark's whole pool (the
`*-paper` definitions keep every human prompt), so one built pool serves the protocol at any sample size, and the
repeats are a property of how a run uses the pool, recorded in that run's folder.

- Sampling: repeat r (sample seed r = 0, 1, 2) ranks the pool by sha256("r:<prompt id>") and keeps the lowest
  `sample_size`, the rule `molebench prompts build` samples with; reproducible anywhere, independent of file order.
- Images: the run's prompt set is the samples one after another (repeat 0's prompts in pool order, then repeat
  1's, then repeat 2's), so every repeat has images of its own: the paper repeats the whole process, and an image
  shared by two repeats would correlate them and bias the standard error low. The repeat index is part of each
  image's generator seed (sha256('molebench:<seed>:repeat<r>:<prompt index>')) and of its content key, so a prompt
  drawn by two repeats is two independent images.
- Standard error: the sample standard deviation (ddof=1) of the 3 repeat means divided by sqrt(3).
- Record: `repeats.parquet` in the run folder (repeat, sample_seed, prompt_index, prompt_id) and the manifest's
  `protocol` entry (pool size and hash, sample size, seeds, each repeat's prompt indices), so any number can be
  recomputed; `repeats.csv` holds per-repeat means, mean ± s.e. and the per-prompt bootstrap CIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from rich.table import Table

from molebench.benchmarks.base import PromptSet
from molebench.benchmarks.builder import sample_rank
from molebench.errors import UsageError
from molebench.stats import decimals
from molebench.store.summary import REPEAT_ALL as ALL

PAPER_REPEATS = 3
PAPER_SAMPLE_SIZE = 3000
REPEAT_COLUMNS = ["repeat", "sample_seed", "prompt_index", "prompt_id"]


@dataclass(frozen=True)
class Repeats:
    """The drawn samples: the prompt set the run generates (the samples in turn), and each repeat's part of it."""

    prompt_set: PromptSet  # the repeats' samples one after another
    members: tuple[tuple[int, ...], ...]  # per repeat: its prompt indices into `prompt_set` (disjoint ranges)
    sample_seeds: tuple[int, ...]
    sample_size: int
    pool_size: int
    pool_sha256: str

    def table(self) -> pd.DataFrame:
        rows = [{"repeat": r, "sample_seed": self.sample_seeds[r], "prompt_index": i,
                 "prompt_id": self.prompt_set.items[i].id} for r, members in enumerate(self.members) for i in members]
        return pd.DataFrame(rows, columns=REPEAT_COLUMNS)

    def to_json(self) -> dict[str, Any]:
        """The manifest's `protocol` entry."""
        distinct = len({item.id for item in self.prompt_set.items})
        return {"name": "paper", "repeats": len(self.members), "sample_size": self.sample_size,
                "sample_seeds": list(self.sample_seeds), "pool_size": self.pool_size, "pool_sha256": self.pool_sha256,
                "distinct_prompts": distinct, "prompts_drawn_more_than_once": len(self.prompt_set) - distinct,
                "sampling": "repeat r keeps the sample_size pool prompts with the lowest sha256('<sample_seed>:<id>')",
                "images": "independent per repeat: the repeat index is in every image's generator seed and content "
                          "key, so a prompt drawn by two repeats has an image in each",
                "se": "sample standard deviation (ddof=1) of the repeat means / sqrt(repeats)",
                "members": [list(m) for m in self.members]}

    def repeat_of(self) -> tuple[int, ...]:
        """The repeat of each prompt of `prompt_set` (part of its images' seeds and keys)."""
        owner = {i: r for r, members in enumerate(self.members) for i in members}
        return tuple(owner[i] for i in range(len(self.prompt_set)))


def draw(pool: PromptSet, sample_size: int = PAPER_SAMPLE_SIZE, repeats: int = PAPER_REPEATS) -> Repeats:
    """`repeats` independent samples of `sample_size` prompts (sample seeds 0..repeats-1) from `pool`, one after
    another in the run's prompt set."""
    if sample_size < 1:
        raise UsageError(f"--sample-size must be at least 1, got {sample_size}")
    if sample_size > len(pool):
        raise UsageError(f"benchmark '{pool.name}' has {len(pool)} prompts, fewer than the protocol's sample of "
                         f"{sample_size}: use a benchmark that keeps its whole pool (the *-paper definitions) or a "
                         "smaller --sample-size")
    seeds = tuple(range(repeats))
    chosen = [sorted(sorted(range(len(pool)), key=lambda i: sample_rank(seed, pool.items[i].id))[:sample_size])
              for seed in seeds]  # each sample in pool order
    members = tuple(tuple(range(r * sample_size, (r + 1) * sample_size)) for r in range(repeats))
    items = tuple(pool.items[i] for sample in chosen for i in sample)
    return Repeats(PromptSet(pool.name, items), members, seeds, sample_size, len(pool), pool.sha256)


def repeats_table(summary: pd.DataFrame, title: str) -> Table:
    """The terminal view, one column per scorer metric: each repeat's mean, mean ± s.e., the pooled bootstrap CI."""
    repeat_ids = [r for r in dict.fromkeys(summary["repeat"]) if r != ALL]
    caption = (f"mean ± s.e.: mean of the {len(repeat_ids)} repeat means ± their standard error (sample s.d. / "
               f"√{len(repeat_ids)}, the paper's form, the run's headline number); pooled 95% CI: molebench's "
               "per-prompt BCa bootstrap over every repeat's prompts")
    table = Table(title=title, caption=caption)
    table.add_column("")
    columns = []
    for (scorer, metric), group in summary.groupby(["scorer", "metric"], sort=False):
        scale = float(group["paper_scale"].iloc[0])
        table.add_column(f"{scorer}\n{metric}" + (f" ×{scale:g}" if scale != 1 else ""), justify="right")
        columns.append((scale, {row.repeat: row for row in group.itertuples()}))
    first = columns[0][1] if columns else {}
    places = [decimals([rows[ALL].mean * scale]) for scale, rows in columns]  # compare's precision rule
    for r in repeat_ids:
        label = f"repeat {r} (seed {first[r].sample_seed})"
        table.add_row(label, *[f"{rows[r].mean * scale:.{p}f}" for (scale, rows), p in zip(columns, places)])
    table.add_row(f"mean ± s.e. ({len(repeat_ids)} repeats)",
                  *[f"{rows[ALL].mean * scale:.{p}f} ± {rows[ALL].se * scale:.{p}f}"
                    for (scale, rows), p in zip(columns, places)])
    table.add_row(f"pooled 95% CI ({first[ALL].n_prompts} prompts)" if columns else "pooled 95% CI",
                  *[f"[{rows[ALL].ci_low * scale:.{p}f}, {rows[ALL].ci_high * scale:.{p}f}]"
                    for (scale, rows), p in zip(columns, places)])
    return table


def protocol_title(protocol: dict[str, Any]) -> str:
    """The title of a protocol run's repeat table, from the manifest's `protocol` record."""
    seeds = ", ".join(map(str, protocol.get("sample_seeds", [])))
    return (f"paper protocol: {protocol.get('repeats')} repeats × {protocol.get('sample_size')} prompts (sample "
            f"seeds {seeds}) from a pool of {protocol.get('pool_size')}, independent images per repeat "
            f"({protocol.get('distinct_prompts')} distinct prompts) — paper units (HPS ×100, ImageReward ×100)")
