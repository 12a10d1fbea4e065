"""`molebench prompts build | explain | show | list`: build the paper's prompt sets from their sources and inspect them."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

prompts_app = typer.Typer(help="Build and inspect the prompt sets defined in molebench/benchmarks/definitions/.",
                          no_args_is_help=True, add_completion=False, rich_markup_mode=None)

LENGTH_BINS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, 40), (41, None))


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")


@prompts_app.command("build")
def build_command(
    name: str = typer.Argument(..., metavar="NAME", help="a defined prompt set, e.g. coco-human (see `prompts list`)"),
    source: List[Path] = typer.Option([], "--source", metavar="PATH", help="local source file or folder (repeatable); "
                                      "without it the official files are downloaded into the cache"),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="N", help="sampling seed (default: the definition's)"),
) -> None:
    """Build NAME from its source, store it in the cache and print its size and sha256."""
    from rich.table import Table

    from molebench import ui
    from molebench.benchmarks.builder import build

    before = _built_or_none(name)
    result = build(name, list(source) or None, seed)
    info = result.info
    table = Table(title=f"{name}: build steps", show_header=False)
    for key, value in info["counts"].items():
        table.add_row(key, f"{value:,}")
    ui.err.print(table)
    for note in info["notes"]:
        ui.err.print(f"note: {note}", markup=False, soft_wrap=True)
    for record in info["source"]["files"]:
        ui.err.print(f"source {record['name']}: sha256 {record['sha256']}", soft_wrap=True)
    ui.out.print(f"{name}: {info['n_prompts']} prompts  sha256 {info['prompt_set_sha256']}  ({result.path})",
                 soft_wrap=True)
    for line in replacement_notes(name, before, info):
        ui.err.print(line, markup=False, soft_wrap=True)


def _built_or_none(name: str) -> dict | None:
    """The build info of the set stored now (None when there is none or it cannot be read)."""
    from molebench.benchmarks.builder import load_built
    from molebench.errors import InputError

    try:
        return load_built(name)[1]
    except InputError:
        return None


def replacement_notes(name: str, before: dict | None, after: dict) -> list[str]:
    """What a build replaced (a stored set is overwritten) and whether the new set is smaller than the definition's
    sample: a partial source silently standing in for the paper's set would make every later run incomparable."""
    lines = []
    if before is not None:
        old = f"{before['n_prompts']} prompts sha256 {before['prompt_set_sha256']} (built {before.get('built_at')} from " \
              f"{', '.join(f['name'] for f in before['source']['files'])})"
        if before["prompt_set_sha256"] == after["prompt_set_sha256"]:
            lines.append(f"unchanged: the stored {name} was the same set ({old})")
        else:
            lines.append(f"replaced: the stored {name} had {old}; it now has {after['n_prompts']} prompts sha256 "
                         f"{after['prompt_set_sha256']}; runs made on the old set refuse to continue with the new one")
    if after.get("sample_size") and after["n_prompts"] < after["sample_size"]:  # None: the whole pool, no target
        lines.append(f"warning: {name} has {after['n_prompts']} prompts, fewer than the definition's sample size "
                     f"{after['sample_size']}: the source holds too few matching prompts (a partial or other copy?); "
                     "results on this set are not comparable with the paper's")
    return lines


@prompts_app.command("explain")
def explain_command(
    name: str = typer.Argument(..., metavar="NAME", help="a DiffusionDB definition, e.g. diffusiondb-human-paper"),
    source: List[Path] = typer.Option(..., "--source", metavar="PATH", help="DiffusionDB metadata.parquet (or "
                                      "any source `prompts build` reads; repeatable)"),
) -> None:
    """Pool size of NAME under candidate rules (symbols, NSFW score/threshold/level, de-duplication, parts)."""
    from rich.table import Table

    from molebench import ui
    from molebench.benchmarks.definition import load_definition
    from molebench.benchmarks.explain import PAPER_POOL, explain
    from molebench.errors import InputError

    definition = load_definition(name)
    if definition.format != "diffusiondb":
        raise InputError(f"prompts explain: {name} is a {definition.format} definition; it explains DiffusionDB pools")
    rows, counts, notes = explain(definition, list(source))
    table = Table(title=f"{name}: pool size under candidate rules ({rows:,} source rows; the paper: about "
                        f"{PAPER_POOL:,})",
                  caption="scaled: the pool scaled linearly to DiffusionDB 2M's 2,000,000 rows (a part rule: to its "
                          "parts' rows); a rough figure for a sample, as duplicates do not scale linearly")
    for column in ("rule", "pool", "scaled", "note"):
        table.add_column(column, justify="right" if column in ("pool", "scaled") else "left")
    for item in counts:
        table.add_row(item.rule.name, "n/a" if item.pool is None else f"{item.pool:,}",
                      "" if item.scaled is None else f"{item.scaled:,.0f}", item.note)
    ui.out.print(table)
    for note in notes:
        ui.out.print(f"note: {note}", markup=False, soft_wrap=True)


@prompts_app.command("show")
def show_command(
    name: str = typer.Argument(..., metavar="NAME", help="a built prompt set (e.g. coco-human) or tiny-human"),
    sample: int = typer.Option(10, "--sample", min=0, metavar="K", help="how many prompts to print"),
) -> None:
    """Print count, sha256, build settings, matched-word histogram, length distribution and a sample."""
    from molebench import ui
    from molebench.benchmarks.builder import load_built

    embedded = embedded_benchmark(name)
    if embedded is not None:
        prompt_set = embedded.load()
        ui.out.print(f"{name}: {len(prompt_set)} prompts  sha256 {prompt_set.sha256}", markup=False, soft_wrap=True)
        ui.out.print(f"embedded in molebench: {embedded.description}", markup=False, soft_wrap=True)
        _print_prompts(prompt_set, sample)
        return
    prompt_set, info = load_built(name)
    ui.out.print(f"{info.get('title', name)} ({name}): {len(prompt_set)} prompts  sha256 {prompt_set.sha256}",
                 markup=False, soft_wrap=True)
    files = ", ".join(f"{f['name']} (sha256 {f['sha256'][:12]}…)" for f in info["source"]["files"])
    ui.out.print(f"built {info['built_at']} from {files}; seed {info['seed']}, sample size "
                 f"{info['sample_size'] or 'all (the whole pool)'}, "
                 f"definition {info['definition']['file']} (sha256 {info['definition']['sha256'][:12]}…)",
                 markup=False, soft_wrap=True)
    for note in info.get("notes", []):
        ui.out.print(f"note: {note}", markup=False, soft_wrap=True)
    ui.out.print(_histogram("matched word", _word_counts(prompt_set), len(prompt_set)))
    _print_prompts(prompt_set, sample)


def _print_prompts(prompt_set, sample: int) -> None:
    from molebench import ui

    ui.out.print(_length_table(prompt_set))
    for item in prompt_set.items[:sample]:
        words = ",".join(item.meta.get("matched_words", []))
        ui.out.print(f"{item.id}  [{words}]  {item.prompt}" if words else f"{item.id}  {item.prompt}", markup=False,
                     soft_wrap=True)


def embedded_benchmark(name: str):
    """The registered benchmark `name` when its prompts ship with molebench (no prompts/NAME.toml to build), else None."""
    from molebench.benchmarks.definition import available
    from molebench.errors import InputError
    from molebench.registry import BENCHMARKS

    if name in available():
        return None
    if name not in BENCHMARKS.names():
        known = ", ".join(sorted({*available(), *BENCHMARKS.names()}))
        raise InputError(f"no prompt set '{name}': neither a definition in prompts/ nor a registered benchmark; "
                         f"known: {known}")
    return BENCHMARKS.get(name)()


@prompts_app.command("list")
def list_command() -> None:
    """List the prompt sets: those built from prompts/*.toml (and whether they are built) and the embedded ones."""
    from rich.table import Table

    from molebench import ui
    from molebench.benchmarks.builder import load_built
    from molebench.benchmarks.definition import available, definitions_dir
    from molebench.errors import InputError
    from molebench.registry import BENCHMARKS

    table = Table(title=f"prompt sets ({definitions_dir()})")
    for column in ("name", "built", "prompts", "sha256"):
        table.add_column(column)
    for name in sorted({*available(), *BENCHMARKS.names()}):
        embedded = embedded_benchmark(name)
        try:
            prompt_set = embedded.load() if embedded is not None else load_built(name)[0]
            table.add_row(name, "embedded" if embedded is not None else "yes", str(len(prompt_set)),
                          prompt_set.sha256[:16])
        except InputError:
            table.add_row(name, "no", "", "")
    ui.out.print(table)


def _word_counts(prompt_set) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in prompt_set.items:
        for word in item.meta.get("matched_words", []):
            counts[word] = counts.get(word, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _histogram(label: str, counts: dict[str, int], total: int, width: int = 30):
    from rich.table import Table

    table = Table(title=f"{label} (prompts containing it; one prompt may hold several)")
    for column in (label, "prompts", "share", ""):
        table.add_column(column, justify="right" if column in ("prompts", "share") else "left")
    top = max(counts.values(), default=1)
    for key, value in counts.items():
        table.add_row(key, str(value), f"{value / total:.1%}", "█" * max(1, round(width * value / top)))
    return table


def _length_table(prompt_set):
    import statistics

    from rich.table import Table

    lengths = [len(item.prompt.split()) for item in prompt_set.items]
    quartiles = statistics.quantiles(lengths, n=4) if len(lengths) > 1 else [lengths[0]] * 3
    table = Table(title=(f"length in words: min {min(lengths)}, quartiles {quartiles[0]:g}/{quartiles[1]:g}/"
                         f"{quartiles[2]:g}, max {max(lengths)}, mean {statistics.fmean(lengths):.1f}"))
    for column in ("words", "prompts", ""):
        table.add_column(column)
    counts = [sum(low <= n and (high is None or n <= high) for n in lengths) for low, high in LENGTH_BINS]
    top = max(counts) or 1
    for (low, high), count in zip(LENGTH_BINS, counts):
        table.add_row(f"{low}-{high}" if high else f">{low - 1}", str(count), "█" * round(30 * count / top))
    return table
