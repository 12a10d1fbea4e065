"""What the face and hand metrics mean in a table: which are rates, which are counts, and which are measured only
where a face or hand was found.

`faces` / `hands` store a count (`faces`, no direction), a rate (`face_found_when_asked`: 1/0 per image whose prompt
asks for a face) and qualities given presence (`face_presence`, `face_quality`, `hand_anatomy`, ...: NaN where none
was found); a region scorer (`hps-v2.1@face`) is NaN where the part was not found too. Reports read NaN as "not
measured" (LoadedRun.values drops it), so a conditional metric's mean and n are over the images where the part was
found, and its table is placed right after the rate it depends on: "not found" never reads as "good".
"""

from __future__ import annotations

from molebench.parts import PARTS, SEPARATOR


def part_scorer(part: str) -> str:
    """The scorer that counts `part` (`faces`, `hands`)."""
    return f"{part}s"


def rate_metric(part: str) -> str:
    """The per-image 1/0 among prompts that ask for `part`: its mean is the detection rate."""
    return f"{part}_found_when_asked"


def _split(scorer: str) -> tuple[str, str | None]:
    """`hps-v2.1@hand` -> ("hps-v2.1", "hand"); a part this molebench does not know is no part (a report never fails
    on a name a newer version wrote)."""
    base, sep, part = scorer.partition(SEPARATOR)
    return (base, part) if sep and part in PARTS else (scorer, None)


def given(scorer: str, metric: str) -> str | None:
    """The part a metric is measured on only where it was found (`face`, `hand`), else None (whole-image metrics,
    counts and rates)."""
    base, part = _split(scorer)
    if part is not None:
        return part
    for part in PARTS:
        if base == part_scorer(part) and metric not in (rate_metric(part), part_scorer(part)):
            return part
    return None


def partial(scorer: str, metric: str) -> bool:
    """Whether the metric has a value on some images only: a rate (prompts that ask) or a metric given a part."""
    return given(scorer, metric) is not None or any(
        scorer == part_scorer(part) and metric == rate_metric(part) for part in PARTS)


def order(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(scorer, metric) pairs: whole-image metrics first in their stored order, then per part its rate, its count,
    the metrics given the part and the region scorers on it, so a quality is always read after its rate."""
    def rank(pair: tuple[str, str]) -> tuple[int, int]:
        scorer, metric = pair
        base, region = _split(scorer)
        for number, part in enumerate(PARTS):
            if base == part_scorer(part):
                return 1 + number, 0 if metric == rate_metric(part) else 1 if metric == part_scorer(part) else 2
            if region == part:
                return 1 + number, 3
        return 0, 0

    return sorted(pairs, key=rank)  # stable: the stored order within a rank


def note(pairs: list[tuple[str, str]]) -> str:
    """The sentence under tables that hold metrics given a part ('' when there is none)."""
    parts = [part for part in PARTS if any(given(s, m) == part for s, m in pairs)]
    if not parts:
        return ""
    rates = " / ".join(f"{part_scorer(p)}/{rate_metric(p)}" for p in parts)
    return (f"{' and '.join(part + ' metrics' for part in parts).capitalize()} (quality, presence, anatomy, "
            f"NAME@{'/@'.join(parts)}) are measured only on the images where the part was found: mean, CI and n are "
            f"over those images, Δ over the prompts where both runs found it. Read them beside the rate ({rates}: "
            "share of the prompts asking for the part where it was found); a run that finds none has no quality, not "
            "a good one. Counts (faces, hands) have no direction and are never gated.")
