"""`molebench prompts`: a rebuild says what it replaced and warns about a short set; the embedded set is listed and
shown like the built ones."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from molebench.benchmarks.builder import load_built
from molebench.cli import main

PEOPLE = ("man", "woman", "girl", "boy", "child", "person", "kid", "lady", "player", "teenager", "guy", "toddler")


def _source(path: Path, n: int) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt"])
        for index in range(n):
            writer.writerow([f"row{index}", f"a portrait of a {PEOPLE[index % len(PEOPLE)]} number {index}"])
    return path


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Builds go to a cache of their own: the session's built sets stay as other tests built them."""
    monkeypatch.setenv("MOLEBENCH_CACHE", str(tmp_path / "cache"))


def test_rebuild_names_what_it_replaces_and_warns_when_short(private_cache, tmp_path, capsys):
    main(["prompts", "build", "diffusiondb-human", "--source", str(_source(tmp_path / "big.csv", 12))])
    first = load_built("diffusiondb-human")[1]
    err = " ".join(capsys.readouterr().err.split())
    assert "replaced:" not in err and "warning: diffusiondb-human has 12 prompts, fewer than the definition's " \
                                      "sample size 1000" in err

    main(["prompts", "build", "diffusiondb-human", "--source", str(_source(tmp_path / "small.csv", 5))])
    second = load_built("diffusiondb-human")[1]
    err = " ".join(capsys.readouterr().err.split())
    assert second["n_prompts"] == 5 and second["prompt_set_sha256"] != first["prompt_set_sha256"]
    assert (f"replaced: the stored diffusiondb-human had 12 prompts sha256 {first['prompt_set_sha256']}" in err
            and "big.csv" in err)
    assert f"it now has 5 prompts sha256 {second['prompt_set_sha256']}" in err
    assert "5 prompts, fewer than the definition's sample size 1000" in err

    main(["prompts", "build", "diffusiondb-human", "--source", str(tmp_path / "small.csv")])
    assert "unchanged: the stored diffusiondb-human was the same set" in " ".join(capsys.readouterr().err.split())


def test_tiny_human_is_listed_and_shown_without_a_build(private_cache, capsys):
    from molebench.registry import BENCHMARKS

    prompt_set = BENCHMARKS.get("tiny-human")().load()
    main(["prompts", "list"])
    row = next(line for line in capsys.readouterr().out.splitlines() if "tiny-human" in line)
    assert "embedded" in row and str(len(prompt_set)) in row and prompt_set.sha256[:16] in row
    main(["prompts", "show", "tiny-human", "--sample", "2"])
    captured = capsys.readouterr()
    assert f"{len(prompt_set)} prompts  sha256 {prompt_set.sha256}" in captured.out
    assert prompt_set.items[1].prompt in captured.out and "length in words" in captured.out
    assert "prompts build" not in captured.out + captured.err


def test_show_of_an_unknown_set_names_the_known_ones(private_cache, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["prompts", "show", "no-such-set"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "no prompt set 'no-such-set'" in err and "tiny-human" in err and "prompts build" not in err


def test_a_whole_pool_definition_has_no_sample_size_to_fall_short_of():
    from molebench.cli.prompts import replacement_notes

    info = {"n_prompts": 5, "sample_size": None, "prompt_set_sha256": "a" * 64, "built_at": "then",
            "source": {"files": [{"name": "x.csv"}]}}
    assert replacement_notes("coco-human-paper", None, info) == []
    assert replacement_notes("coco-human-paper", info, {**info, "prompt_set_sha256": "b" * 64})[0].startswith(
        "replaced: the stored coco-human-paper had 5 prompts sha256 " + "a" * 64)
