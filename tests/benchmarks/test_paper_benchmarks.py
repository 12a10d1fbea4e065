"""The paper's benchmark definitions (`coco-human-paper`, `diffusiondb-human-paper`) built from the real files in
../shared/data, checked against the independent reference of test_benchmarks.py: every human caption kept (several
per image), the paper's seven words, no length limit, DiffusionDB's NSFW scores and the special-symbol filter."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from conftest import REPO_ROOT
from molebench.benchmarks.builder import build
from molebench.runner.protocol import draw
from test_benchmarks import coco_rows, ddb_rows, reference_select, reference_words

NO_LIMIT = 10**9
SYMBOLS = re.compile(r"[\[\]{}<>]|::|:\s*\d")  # the definition's drop_symbols + drop_patterns, written again


@pytest.fixture(scope="module")
def coco_paper(shared_data):
    return build("coco-human-paper", [shared_data / "coco" / "captions_val2017.json"])


@pytest.fixture(scope="module")
def ddb_paper(shared_data):
    return build("diffusiondb-human-paper", [shared_data / "diffusiondb"])


def test_coco_human_paper_keeps_every_human_caption(coco_paper, shared_data):
    rows = coco_rows(shared_data / "coco" / "captions_val2017.json")
    counts, expected = reference_select(rows, reference_words("coco-human-paper"), seed=0, size=None,
                                        prefix="coco", one_per_group=False, max_words=NO_LIMIT)
    info = coco_paper.info
    assert sorted(reference_words("coco-human-paper")) == ["boy", "boys", "girl", "girls", "kid", "kids", "man", "men",
                                                          "people", "person", "persons", "teenager", "teenagers",
                                                          "woman", "women"]
    assert info["counts"]["pool"] == counts["pool"] == len(coco_paper.prompt_set) == 8265
    assert info["counts"]["human"] == 8422 and info["sample_size"] is None
    assert [(i.id, i.prompt) for i in coco_paper.prompt_set.items] == [(e[0], e[1]) for e in expected]
    images = {item.meta["image_id"] for item in coco_paper.prompt_set.items}
    assert len(images) < len(coco_paper.prompt_set) / 2  # several captions per image: not one per image


def test_diffusiondb_human_paper_drops_weighting_symbols_not_length(ddb_paper, shared_data):
    rows = [row for row in ddb_rows(shared_data / "diffusiondb") if not SYMBOLS.search(" ".join(row[3].split()))]
    counts, expected = reference_select(rows, reference_words("diffusiondb-human-paper"), seed=0, size=None,
                                        prefix="ddb", one_per_group=False, max_words=NO_LIMIT)
    info = ddb_paper.info
    assert info["counts"]["dropped_special_symbols"] == info["counts"]["candidates"] - len(rows) == 61
    assert info["counts"]["pool"] == counts["pool"] == len(ddb_paper.prompt_set)
    assert [(i.id, i.prompt) for i in ddb_paper.prompt_set.items] == [(e[0], e[1]) for e in expected]
    assert max(len(i.prompt.split()) for i in ddb_paper.prompt_set.items) > 40  # no length limit
    assert not any(SYMBOLS.search(i.prompt) for i in ddb_paper.prompt_set.items)
    assert any("(" in i.prompt for i in ddb_paper.prompt_set.items)  # ordinary parentheses stay
    for record in info["source"]["files"]:
        assert record["nsfw_filter"].startswith("not applicable") and record["image_nsfw_filter"].startswith(
            "not applicable")


def test_diffusiondb_human_paper_applies_both_nsfw_scores(tmp_path):
    frame = pd.DataFrame({
        "image_name": [f"{i:06d}-0001.png" for i in range(6)],
        "prompt": ["a man smiling", "a woman [laughing]", "a girl reading", "a boy running", "a kid painting",
                   "portrait of a person, trending on artstation:8"],
        "prompt_nsfw": [0.1, 0.1, 0.7, 0.1, None, 0.1],
        "image_nsfw": [0.2, 0.2, 0.2, 2.0, 0.2, 0.2],
    })
    path = tmp_path / "metadata.parquet"
    frame.to_parquet(path)
    result = build("diffusiondb-human-paper", [path])
    counts = result.info["counts"]
    assert (counts["dropped_nsfw"], counts["dropped_nsfw_unknown"], counts["dropped_image_nsfw"]) == (1, 1, 1)
    assert counts["dropped_special_symbols"] == 2 and [i.prompt for i in result.prompt_set.items] == ["a man smiling"]
    record = result.info["source"]["files"][0]
    assert record["nsfw_filter"] == "applied: kept prompt_nsfw <= 0.5"
    assert record["image_nsfw_filter"] == "applied: kept image_nsfw <= 0.5"


def test_paper_protocol_draws_three_samples_of_3000_from_the_coco_pool(coco_paper):
    repeats = draw(coco_paper.prompt_set)
    assert [len(m) for m in repeats.members] == [3000, 3000, 3000]
    assert len(repeats.prompt_set) == 9000 and repeats.pool_size == 8265  # each repeat its own prompts (and images)


def test_docs_state_the_paper_pools(coco_paper, ddb_paper):
    docs = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    for name, result in (("coco-human-paper", coco_paper), ("diffusiondb-human-paper", ddb_paper)):
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{name}` |") and
                   re.search(r"`[0-9a-f]{64}`", line))
        assert result.prompt_set.sha256 in row and f"| {result.info['counts']['pool']:,} |" in row, name


def _explained(name, source):
    from molebench.benchmarks.definition import load_definition
    from molebench.benchmarks.explain import explain

    rows, counts, notes = explain(load_definition(name), [source])
    return rows, {c.rule.name: c.pool for c in counts}, notes


def test_prompts_explain_counts_the_pool_as_the_builder_does_on_the_shared_sample(ddb_paper, shared_data, capsys):
    from molebench.cli import main

    rows, pools, notes = _explained("diffusiondb-human-paper", shared_data / "diffusiondb")
    assert rows == ddb_paper.info["counts"]["candidates"]
    assert pools["the definition's rule"] == ddb_paper.info["counts"]["pool"] == len(ddb_paper.prompt_set)
    assert pools["symbols: none removed"] - pools["the definition's rule"] > 0  # the shared files hold [ ] prompts
    assert pools["no de-duplication (rows)"] >= pools["the definition's rule"]
    assert pools["NSFW: both scores <= 0.2"] is None and any("no prompt_nsfw column" in n for n in notes)
    main(["prompts", "explain", "diffusiondb-human-paper", "--source", str(shared_data / "diffusiondb")])
    out = capsys.readouterr().out
    pool = pools["the definition's rule"]
    assert "pool size under candidate rules" in out and f"{pool:,}" in out


def test_prompts_explain_varies_symbols_nsfw_level_dedup_and_parts(tmp_path):
    frame = pd.DataFrame({
        "image_name": ["000001-0001.png", "000003-0002.png", "000600-0001.png", "000002-0001.png",
                       "001500-0001.png", "000004-0001.png"],
        "prompt": ["a man smiling", "a man smiling", "a woman reading", "a girl [laughing]", "a boy (running)",
                   "a cat"],
        "prompt_nsfw": [0.1, 0.1, 0.3, 0.1, 0.1, 0.1],
        "image_nsfw": [0.2, 0.9, 0.3, 0.1, 0.1, 0.1],
    })
    frame.to_parquet(tmp_path / "metadata.parquet")
    rows, pools, _ = _explained("diffusiondb-human-paper", tmp_path / "metadata.parquet")
    assert rows == 6 and pools["the definition's rule"] == len(build("diffusiondb-human-paper",
                                                                    [tmp_path / "metadata.parquet"]).prompt_set) == 3
    assert (pools["symbols: only [ ]"], pools["symbols: any bracket, ( ) too"], pools["symbols: none removed"]) == (
        3, 2, 4)
    assert (pools["NSFW: none removed"], pools["NSFW: both scores <= 0.2"], pools["NSFW: both scores <= 0.1"]) == (
        3, 2, 1)
    assert pools["NSFW: per prompt (any row over 0.5 drops it)"] == 2  # the man's second image is NSFW
    assert pools["no de-duplication (rows)"] == 3
    assert [pools[f"parts 1-{n} only" + tail] for n, tail in (
        (2000, " (DiffusionDB 2M, not Large)"), (1000, " (2M's first half)"), (500, " (2M's first quarter)"))] == [
        3, 2, 1]
