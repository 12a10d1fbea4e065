"""Benchmark definitions: one TOML file per built prompt set, shipped as package data in
`molebench/benchmarks/definitions/` (read with importlib.resources, so a wheel install has them too).

A definition says where the source comes from, which words make a prompt human-centric, which filters apply, and how
the sample is drawn; the builder follows it literally, so reading the TOML (and its comments) tells the whole story.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molebench.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 uses the backport declared in pyproject.toml
    import tomli as tomllib

FORMATS = ("coco-captions", "diffusiondb")
_WORD = re.compile(r"[^\W\d_]+")  # a word is a maximal run of letters (digits, '_', '-', "'" separate words)


def definitions_dir() -> Path:
    """`MOLEBENCH_PROMPTS_DIR` (your own definitions), else the definitions shipped inside the package."""
    explicit = os.environ.get("MOLEBENCH_PROMPTS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(str(importlib.resources.files("molebench.benchmarks") / "definitions"))


def available() -> list[str]:
    folder = definitions_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


@dataclass(frozen=True)
class HumanWords:
    """Whole-word, case-insensitive matching of the listed forms; a match reports the canonical word."""

    forms: dict[str, str]  # form (lower case) -> canonical word

    def match(self, text: str) -> list[str]:
        found = {self.forms[w] for w in _WORD.findall(text.lower()) if w in self.forms}
        return sorted(found)

    @property
    def canonical(self) -> list[str]:
        return sorted(set(self.forms.values()))


@dataclass(frozen=True)
class Definition:
    name: str
    path: Path
    sha256: str
    raw: dict[str, Any]
    title: str
    description: str
    format: str
    id_prefix: str
    source: dict[str, Any]
    words: HumanWords
    max_words: int | None
    max_prompt_nsfw: float | None
    dedup: bool
    one_per_image: bool
    sample_size: int | None  # None: keep the whole pool (`size = "all"`)
    seed: int
    max_image_nsfw: float | None = None
    drop_symbols: tuple[str, ...] = ()  # a prompt containing any of these strings is dropped
    drop_patterns: tuple[str, ...] = ()  # ... or matching any of these regular expressions

    def has_special_symbols(self, prompt: str) -> bool:
        return any(s in prompt for s in self.drop_symbols) or any(re.search(p, prompt) for p in self.drop_patterns)


def load_definition(name: str) -> Definition:
    """Read and check `<definitions_dir>/<name>.toml`; every problem names the file and the key."""
    path = definitions_dir() / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(available()) or "none"
        raise InputError(f"no prompt-set definition '{name}' ({path} not found); defined: {known}")
    data = path.read_bytes()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    return parse_definition(name, path, raw, hashlib.sha256(data).hexdigest())


def parse_definition(name: str, path: Path, raw: dict[str, Any], sha256: str) -> Definition:
    """A definition file's table, checked field by field (an error names the file and the field)."""
    if raw.get("name") != name:
        raise InputError(f"{path}: 'name' must be '{name}' (the file name), found {raw.get('name')!r}")
    fmt = _need(path, raw, "format", str, "")
    if fmt not in FORMATS:
        raise InputError(f"{path}: 'format' must be one of {', '.join(FORMATS)}, found '{fmt}'")
    source = _need(path, raw, "source", dict, "")
    words_table = _need(path, raw, "words", dict, "")
    filters = raw.get("filters", {})
    sample = _need(path, raw, "sample", dict, "")
    forms = _word_forms(path, words_table)
    max_words, nsfw, image_nsfw, symbols, patterns = _filters(path, filters)
    size, seed = _sample(path, sample)
    dedup = raw.get("dedup", {})
    return Definition(
        name=name,
        path=path,
        sha256=sha256,
        raw=raw,
        title=_need(path, raw, "title", str, ""),
        description=str(raw.get("description", "")),
        format=fmt,
        id_prefix=_need(path, raw, "id_prefix", str, ""),
        source=source,
        words=HumanWords(forms),
        max_words=max_words,
        max_prompt_nsfw=float(nsfw) if nsfw is not None else None,
        dedup=bool(dedup.get("enabled", True)),
        one_per_image=bool(dedup.get("one_per_image", False)),
        sample_size=size,
        seed=seed,
        max_image_nsfw=float(image_nsfw) if image_nsfw is not None else None,
        drop_symbols=tuple(symbols),
        drop_patterns=tuple(patterns),
    )


def _need(path: Path, table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """`table[key]` when it is a `kind` (a bool is no int here), else an error naming the file and `where` + key."""
    value = table.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise InputError(f"{path}: '{where}{key}' is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _word_forms(path: Path, words_table: dict[str, Any]) -> dict[str, str]:
    """The [words] table as word form -> canonical word; a form under two words or not a single word is refused."""
    forms: dict[str, str] = {}
    for canonical, listed in words_table.items():
        if not isinstance(listed, list) or not listed or not all(isinstance(w, str) for w in listed):
            raise InputError(f"{path}: 'words.{canonical}' must be a non-empty list of word forms")
        for form in listed:
            form = form.strip().lower()
            if not _WORD.fullmatch(form):
                raise InputError(f"{path}: 'words.{canonical}': '{form}' is not a single word of letters")
            if forms.get(form, canonical) != canonical:
                raise InputError(f"{path}: word form '{form}' is listed under both '{forms[form]}' and '{canonical}'")
            forms[form] = canonical
    if not forms:
        raise InputError(f"{path}: the [words] table is empty")
    return forms


def _filters(path: Path, filters: dict[str, Any]) -> tuple[Any, Any, Any, list[str], list[str]]:
    """The [filters] table checked: max_words, max_prompt_nsfw, max_image_nsfw, drop_symbols, drop_patterns."""
    max_words = filters.get("max_words")
    if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
        raise InputError(f"{path}: 'filters.max_words' must be a positive integer")
    nsfw = filters.get("max_prompt_nsfw")
    if nsfw is not None and (not isinstance(nsfw, (int, float)) or not 0 <= nsfw <= 1):
        raise InputError(f"{path}: 'filters.max_prompt_nsfw' must be a number between 0 and 1")
    image_nsfw = filters.get("max_image_nsfw")
    if image_nsfw is not None and (not isinstance(image_nsfw, (int, float)) or not 0 <= image_nsfw <= 1):
        raise InputError(f"{path}: 'filters.max_image_nsfw' must be a number between 0 and 1")
    symbols, patterns = filters.get("drop_symbols", []), filters.get("drop_patterns", [])
    if not isinstance(symbols, list) or not all(isinstance(x, str) and x for x in symbols):
        raise InputError(f"{path}: 'filters.drop_symbols' must be a list of non-empty strings")
    if not isinstance(patterns, list) or not all(isinstance(x, str) for x in patterns):
        raise InputError(f"{path}: 'filters.drop_patterns' must be a list of regular expressions")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InputError(f"{path}: 'filters.drop_patterns': '{pattern}' is not a regular expression ({exc})")
    return max_words, nsfw, image_nsfw, symbols, patterns


def _sample(path: Path, sample: dict[str, Any]) -> tuple[int | None, int]:
    """The [sample] table checked: its size (None: "all", the whole pool) and seed."""
    size = sample.get("size")
    if size == "all":
        size = None
    elif not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InputError(f"{path}: 'sample.size' must be a positive integer or \"all\" (the whole pool)")
    seed = _need(path, sample, "seed", int, "sample.")
    if seed < 0:
        raise InputError(f"{path}: 'sample.seed' must be >= 0")
    return size, seed
