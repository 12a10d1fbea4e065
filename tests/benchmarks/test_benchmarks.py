"""COCO Human Prompts and DiffusionDB Human Prompts built from the real files in ../shared/data.

Every count is checked against an independent re-implementation written here with json, re, hashlib and tomllib
only (no molebench code): the definitions' TOML is data both sides read, the selection rules are coded twice.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from molebench.benchmarks.builder import build, built_paths, load_built
from molebench.cli import main
from molebench.errors import InputError
from molebench.registry import BENCHMARKS

DDB_FILES = ("imagereward_benchmark_prompts.json", "imagereward_refl_data.json", "imagereward_test.json")


# ---------------------------------------------------------------- the independent reference (plain Python only)

def reference_words(name: str) -> dict[str, str]:
    definition = REPO_ROOT / "molebench" / "benchmarks" / "definitions" / f"{name}.toml"
    table = tomllib.loads(definition.read_text())["words"]
    return {form.lower(): canonical for canonical, forms in table.items() for form in forms}


def reference_match(text: str, forms: dict[str, str]) -> list[str]:
    """A form counts when no letter touches it on either side (lookarounds + IGNORECASE, not tokenising)."""
    pattern = _reference_pattern(tuple(sorted(forms)))
    return sorted({forms[m.group(1).lower()] for m in pattern.finditer(text)})


@functools.lru_cache(maxsize=4)
def _reference_pattern(forms: tuple[str, ...]) -> re.Pattern:
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(r"(?<![^\W\d_])(" + alternatives + r")(?![^\W\d_])", flags=re.IGNORECASE)


def reference_select(rows, forms, seed, size, prefix, one_per_group, max_words=40):
    """rows: (order_key, source_id, group, raw_text) -> (stage counts, [(id, prompt, words)] in sample order)."""
    counts = {"empty": 0, "long": 0, "no_word": 0}
    human = []
    for order, source_id, group, raw in sorted(rows, key=lambda r: r[0]):
        text = re.sub(r"\s+", " ", raw).strip()
        if text == "":
            counts["empty"] += 1
        elif len(text.split()) > max_words:
            counts["long"] += 1
        elif not reference_match(text, forms):
            counts["no_word"] += 1
        else:
            human.append((order, source_id, group, text))
    seen_keys, unique = set(), []
    for entry in human:  # rows are in order already: the first copy is the smallest
        key = entry[3].casefold().rstrip(" .")
        if key not in seen_keys:
            seen_keys.add(key)
            unique.append(entry)
    counts["duplicate"] = len(human) - len(unique)
    pool = unique
    if one_per_group:
        seen_groups, pool = set(), []
        for entry in unique:
            if entry[2] not in seen_groups:
                seen_groups.add(entry[2])
                pool.append(entry)
    counts["pool"] = len(pool)
    id_uses: dict[str, int] = {}
    for entry in pool:
        id_uses[entry[1]] = id_uses.get(entry[1], 0) + 1
    items = []
    for _, source_id, _, text in pool:
        item_id = f"{prefix}-{source_id}"
        if id_uses[source_id] > 1:
            item_id += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
        items.append((item_id, text, reference_match(text, forms)))
    items.sort(key=lambda item: hashlib.sha256(f"{seed}:{item[0]}".encode()).hexdigest())
    return counts, items[:size]


def coco_rows(path: Path):
    annotations = json.loads(path.read_text())["annotations"]
    return [(a["id"], str(a["id"]), a["image_id"], a["caption"]) for a in annotations]


def ddb_rows(folder: Path):
    rows = []
    for name in DDB_FILES:
        for record in json.loads((folder / name).read_text()):
            source_id = record.get("id", record.get("image"))
            text = record.get("prompt", record.get("text"))
            rows.append(((source_id, re.sub(r"\s+", " ", text).strip()), source_id, None, text))
    return rows


def assert_same_stage_counts(got: dict, reference: dict) -> None:
    assert (got["dropped_empty"], got["dropped_too_long"], got["dropped_no_human_word"], got["dropped_duplicate"],
            got["pool"]) == (reference["empty"], reference["long"], reference["no_word"], reference["duplicate"],
                             reference["pool"])


def jsonl_items(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def coco_file(shared_data) -> Path:
    return shared_data / "coco" / "captions_val2017.json"


@pytest.fixture(scope="module")
def ddb_folder(shared_data) -> Path:
    return shared_data / "diffusiondb"


@pytest.fixture(scope="module")
def coco_built(coco_file):
    main(["prompts", "build", "coco-human", "--source", str(coco_file)])
    return load_built("coco-human")


@pytest.fixture(scope="module")
def ddb_built(ddb_folder):
    main(["prompts", "build", "diffusiondb-human", "--source", str(ddb_folder)])
    return load_built("diffusiondb-human")


# ---------------------------------------------------------------- counts and contents against the reference

def check_against_reference(name: str, built, rows, prefix: str, one_per_group: bool, source_count: str):
    """Stage counts and the exact (id, prompt, matched words) list, in order, against the reference."""
    prompt_set, info = built
    counts, expected = reference_select(rows, reference_words(name), seed=0, size=1000, prefix=prefix,
                                        one_per_group=one_per_group)
    got = info["counts"]
    assert got[source_count] == len(rows)
    assert_same_stage_counts(got, counts)
    assert [(item.id, item.prompt, item.meta["matched_words"]) for item in prompt_set.items] == expected
    assert len(prompt_set) == 1000 < counts["pool"]
    return info


def test_coco_human_matches_independent_count(coco_built, coco_file):
    rows = coco_rows(coco_file)
    assert len(rows) == 25014
    info = check_against_reference("coco-human", coco_built, rows, "coco", True, "source_captions")
    built = jsonl_items(built_paths("coco-human")[0])
    assert len({r["image_id"] for r in built}) == len(built), "one caption per image"
    record = info["source"]["files"][0]
    assert record["split"] == "val2017" and record["matches_official"] is True
    assert record["md5"] == "176452de5364139ed60f607cfa663196"


def test_diffusiondb_human_matches_independent_count(ddb_built, ddb_folder):
    rows = ddb_rows(ddb_folder)
    assert len(rows) == 10000 + 466 + 100
    info = check_against_reference("diffusiondb-human", ddb_built, rows, "ddb", False, "source_rows")
    assert "dropped_nsfw" not in info["counts"], "no NSFW column in prompt-only files: nothing may claim it ran"
    assert len(info["notes"]) == 3 and all("nsfw filter not applicable" in n for n in info["notes"])
    assert {f["name"]: f["nsfw_filter"].split(":")[0] for f in info["source"]["files"]} == {
        name: "not applicable" for name in DDB_FILES}


@pytest.mark.parametrize("name", ["coco-human", "diffusiondb-human"])
def test_kept_prompts_hold_a_word_and_dropped_ones_none(name, coco_built, ddb_built, coco_file, ddb_folder):
    """Over every source prompt, molebench's matcher and the reference agree; kept prompts all match."""
    from molebench.benchmarks.definition import load_definition

    rows = coco_rows(coco_file) if name == "coco-human" else ddb_rows(ddb_folder)
    forms = reference_words(name)
    words = load_definition(name).words
    texts = {re.sub(r"\s+", " ", row[3]).strip() for row in rows}
    disagreements = [t for t in texts if words.match(t) != reference_match(t, forms)]
    assert disagreements == []
    prompt_set, _ = coco_built if name == "coco-human" else ddb_built
    for item in prompt_set.items:
        assert reference_match(item.prompt, forms) == item.meta["matched_words"] != []
    kept = {item.prompt for item in prompt_set.items}
    dropped = [t for t in texts if not reference_match(t, forms)]
    assert dropped and not kept & set(dropped)


def test_whole_word_rules():
    from molebench.benchmarks.definition import load_definition

    words = load_definition("diffusiondb-human").words
    assert words.match("A MAN and two Women.") == ["man", "woman"]
    assert words.match("the woman's hat") == ["woman"]
    assert words.match("anime, 1girl, 2boys") == ["boy", "girl"]
    assert words.match("a manhole, batman, manga, snowman") == []
    assert words.match("spider-man") == ["man"]


# ---------------------------------------------------------------- reproducibility, storage, registry

def test_same_source_same_sha_other_seed_other_sha(ddb_built, ddb_folder):
    first, _ = ddb_built
    again = build("diffusiondb-human", [ddb_folder])
    assert again.prompt_set.sha256 == first.sha256
    jsonl, _ = built_paths("diffusiondb-human")
    assert hashlib.sha256(jsonl.read_bytes()).hexdigest() == first.sha256, "the file is the canonical JSONL"
    try:
        other = build("diffusiondb-human", [ddb_folder], seed=1)
        assert other.prompt_set.sha256 != first.sha256 and other.info["seed"] == 1
        assert len(other.prompt_set) == len(first)
        forms = reference_words("diffusiondb-human")
        _, expected = reference_select(ddb_rows(ddb_folder), forms, seed=1, size=1000, prefix="ddb",
                                       one_per_group=False)
        assert [item.id for item in other.prompt_set.items] == [e[0] for e in expected]
    finally:
        build("diffusiondb-human", [ddb_folder])
    assert load_built("diffusiondb-human")[0].sha256 == first.sha256


def test_coco_builds_twice_to_the_same_sha(coco_built, coco_file, capsys):
    main(["prompts", "build", "coco-human", "--source", str(coco_file)])
    out = capsys.readouterr().out
    assert f"1000 prompts  sha256 {coco_built[0].sha256}" in out
    seeded = build("coco-human", [coco_file], seed=7)
    try:
        assert seeded.prompt_set.sha256 != coco_built[0].sha256
    finally:
        build("coco-human", [coco_file])


def test_registered_benchmarks_load_the_built_sets(coco_built, ddb_built):
    for name, (prompt_set, info) in (("coco-human", coco_built), ("diffusiondb-human", ddb_built)):
        benchmark = BENCHMARKS.get(name)()
        assert benchmark.load().sha256 == prompt_set.sha256
        facts = benchmark.info()
        assert facts["seed"] == 0 and facts["sample_size"] == 1000
        assert facts["settings"]["filters"]["max_words"] == 40 and "man" in facts["settings"]["words"]
        assert facts["definition"]["sha256"] == info["definition"]["sha256"]
        assert [f["sha256"] for f in facts["source"]["files"]] == [f["sha256"] for f in info["source"]["files"]]


def test_not_built_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOLEBENCH_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(InputError, match=r"run `molebench prompts build coco-human`"):
        BENCHMARKS.get("coco-human")().load()
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "tiny-sd15", "--benchmark", "diffusiondb-human", "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 1
    assert "molebench prompts build diffusiondb-human" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_show_and_list(coco_built, capsys):
    main(["prompts", "show", "coco-human", "--sample", "3"])
    out = capsys.readouterr().out
    prompt_set, _ = coco_built
    assert f"1000 prompts  sha256 {prompt_set.sha256}" in out
    assert "matched word" in out and "length in words" in out and "man" in out
    for item in prompt_set.items[:3]:
        assert item.prompt in out
    main(["prompts", "list"])
    listing = capsys.readouterr().out
    assert "coco-human" in listing and prompt_set.sha256[:16] in listing


# ---------------------------------------------------------------- the run: manifest hash, refusing to mix

@pytest.fixture
def one_torch_thread():
    """On the shared 2-core machine, torch's intra-op threads spin against other processes (measured: 86 s of CPU
    for these 8 tiny images with 2 threads, 9.5 s with 1); the images do not depend on the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_run_on_coco_human_then_refuse_other_seed(coco_built, coco_file, tmp_path, capsys, one_torch_thread):
    prompt_set, info = coco_built
    out = tmp_path / "run"
    main(["run", "--model", "tiny-sd15", "--benchmark", "coco-human", "--limit", "8", "--steps", "2",
          "--out", str(out)])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["prompt_set_sha256"] == prompt_set.sha256 == manifest["benchmark"]["prompt_set_sha256"]
    assert manifest["benchmark"]["source"]["files"][0]["sha256"] == hashlib.sha256(coco_file.read_bytes()).hexdigest()
    assert manifest["benchmark"]["seed"] == 0
    import pandas as pd

    items = pd.read_parquet(out / "items.parquet")
    assert list(items["prompt_id"]) == [item.id for item in prompt_set.items[:8]]
    assert len(pd.read_parquet(out / "scores.parquet")) == 8
    try:
        build("coco-human", [coco_file], seed=3)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--model", "tiny-sd15", "--benchmark", "coco-human", "--limit", "8", "--steps", "2",
                  "--no-score", "--out", str(out)])
        assert exit_info.value.code == 2
        assert "prompt_set_sha256" in capsys.readouterr().err
    finally:
        build("coco-human", [coco_file])
    assert len(pd.read_parquet(out / "items.parquet")) == 8, "the refused run wrote nothing"


def test_docs_state_the_current_hashes(coco_built, ddb_built):
    """docs/benchmarks.md quotes the sets built from the shared files; a definition change must update it."""
    docs = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    for name, (prompt_set, info) in (("coco-human", coco_built), ("diffusiondb-human", ddb_built)):
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name}` |") and "sha256" not in line
                   and re.search(r"`[0-9a-f]{64}`", line))
        assert prompt_set.sha256 in row, name
        assert f"| {info['counts']['human']:,} | {info['counts']['pool']:,} | {len(prompt_set):,} |" in row, name
