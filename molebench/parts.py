"""Body parts and region-scorer names: the vocabulary the run config, the scorers and the reports share.

`NAME@face` / `NAME@hand` names scorer NAME run on the face / hand crops of each image (molebench.scoring.regions).
Kept at the ground floor (no torch): the run config checks such names before anything heavy is imported.
"""

from __future__ import annotations

from molebench.errors import InputError

PARTS: tuple[str, ...] = ("face", "hand")
SEPARATOR = "@"


def split_region(name: str) -> tuple[str, str | None]:
    """`hps-v2.1@face` -> ("hps-v2.1", "face"); a plain name -> (name, None). An unknown part is an InputError."""
    base, sep, part = name.partition(SEPARATOR)
    if not sep:
        return name, None
    if part not in PARTS:
        raise InputError(f"scorer '{name}': unknown region '{part}' (regions: {', '.join(PARTS)})")
    return base, part


def check_parts(parts: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The parts of `--regions`, each once, in order; an unknown one is an InputError naming the known ones."""
    for part in parts:
        if part not in PARTS:
            raise InputError(f"unknown region '{part}' (regions: {', '.join(PARTS)})")
    return tuple(dict.fromkeys(parts))


def with_regions(names: tuple[str, ...] | list[str], regions: tuple[str, ...] | list[str], kinds: dict[str, str]
                 ) -> tuple[str, ...]:
    """`names` plus `NAME@part` for each region and each scorer among them that measures the whole image
    (`kinds`: scorer name -> "image" / "set" / "people"; the face and hand scorers are not cropped again)."""
    extra = [f"{name}{SEPARATOR}{part}" for part in check_parts(regions) for name in names
             if SEPARATOR not in name and kinds.get(name) in ("image", "set")]
    return tuple(dict.fromkeys([*names, *extra]))
