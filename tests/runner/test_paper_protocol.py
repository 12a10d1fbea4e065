"""The MoLE paper's protocol: `run --protocol paper` draws 3 samples (seeds 0, 1, 2), generates each repeat's images
independently (no image shared between repeats), records the membership, and reports per repeat and mean ± s.e. in the paper's units; `compare --paper` puts
the paper's Appendix A.5 numbers beside measured ones, marking runs measured another way."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from molebench.benchmarks.base import PromptItem, PromptSet
from molebench.benchmarks.builder import sample_rank
from molebench.cli import main
from molebench.errors import InputError
from molebench.runner.plan_step import generator_seed
from molebench.runner.protocol import draw
from report_runs import make_run


def test_draw_samples_with_the_builder_rule_one_repeat_after_another():
    pool = PromptSet("pool", tuple(PromptItem(f"p{i:02d}", f"prompt {i}") for i in range(40)))
    repeats = draw(pool, sample_size=10)
    assert repeats == draw(pool, sample_size=10)  # reproducible
    assert repeats.members == (tuple(range(10)), tuple(range(10, 20)), tuple(range(20, 30)))
    for seed, members in zip((0, 1, 2), repeats.members):
        expected = sorted(pool.items, key=lambda item: sample_rank(seed, item.id))[:10]
        ids = [repeats.prompt_set.items[i].id for i in members]
        assert ids == sorted(item.id for item in expected)  # each sample in pool order
    assert repeats.repeat_of() == (0,) * 10 + (1,) * 10 + (2,) * 10
    distinct = {item.id for item in repeats.prompt_set.items}
    record = repeats.to_json()
    assert record["distinct_prompts"] == len(distinct) < 30 and record["prompts_drawn_more_than_once"] == 30 - len(
        distinct)
    assert record["sample_seeds"] == [0, 1, 2] and record["pool_sha256"] == pool.sha256
    with pytest.raises(InputError, match="has 40 prompts, fewer than"):
        draw(pool, sample_size=41)


def test_tiny_paper_protocol_run_has_three_repeats_and_mean_se(tmp_path, capsys):
    out = tmp_path / "run"
    main(["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--protocol", "paper", "--sample-size", "2",
          "--steps", "2", "--scorers", "hps-v1-tiny", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "3 repeats × 2 prompts" in printed and "mean ± s.e. (3 repeats)" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    protocol = manifest["protocol"]
    assert protocol["repeats"] == 3 and protocol["sample_seeds"] == [0, 1, 2] and protocol["pool_size"] == 8
    assert protocol["members"] == [[0, 1], [2, 3], [4, 5]]
    items, scores = pd.read_parquet(out / "items.parquet"), pd.read_parquet(out / "scores.parquet")
    assert len(items) == 6 and items["key"].is_unique and items["gen_seed"].is_unique  # no image shared
    assert protocol["prompts_drawn_more_than_once"] > 0  # with a pool of 8 some prompt is in two repeats ...
    twice = items[items["prompt_id"].duplicated(keep=False)]
    assert twice["key"].nunique() == len(twice)  # ... and has an image in each
    assert len(list((out / "images").glob("*.png"))) == 6
    assert list(items["gen_seed"]) == [generator_seed(0, i, repeat=i // 2) for i in range(6)]  # repeat in the seed
    membership = pd.read_parquet(out / "repeats.parquet")
    assert sorted(membership.groupby("repeat")["prompt_index"].apply(list)) == sorted(protocol["members"])
    summary = pd.read_csv(out / "repeats.csv", dtype={"repeat": str})
    assert list(summary["repeat"]) == ["0", "1", "2", "mean"]
    values = scores.set_index("prompt_index")["value"]
    means = [values.loc[members].mean() for members in protocol["members"]]
    np.testing.assert_allclose(summary["mean"].iloc[:3], means, rtol=0, atol=1e-12)
    overall = summary.iloc[3]
    assert overall["mean"] == pytest.approx(np.mean(means), abs=1e-12)
    assert overall["se"] == pytest.approx(np.std(means, ddof=1) / np.sqrt(3), abs=1e-12)
    assert overall["paper_scale"] == 100 and overall["ci_low"] <= overall["mean"] <= overall["ci_high"]
    main(["compare", str(out), "--paper", "-f", "json"])
    row = json.loads(capsys.readouterr().out)["tables"][0]["rows"][0]
    assert row["n_repeats"] == 3 and row["repeats_mean"] == pytest.approx(overall["mean"] * 100, abs=1e-9)


@pytest.mark.parametrize("args, message", [
    (["--protocol", "nope"], "protocol: expected one of paper"),
    (["--protocol", "paper", "--limit", "2"], "limit and protocol contradict"),
    (["--sample-size", "3"], "--sample-size applies only with protocol 'paper'"),
    (["--protocol", "paper", "--sample-size", "9"], "has 8 prompts, fewer than the protocol's sample of 9"),
])
def test_protocol_options_are_checked(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--model", "tiny-sd15", "--steps", "1", "--out", str(tmp_path / "run"), *args])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_compare_paper_shows_appendix_a5_numbers_in_paper_units(tmp_path, capsys):
    rng = np.random.default_rng(5)
    hps, reward = 0.2 + 0.01 * rng.standard_normal((2, 30)), 0.5 + 0.3 * rng.standard_normal((2, 30))
    runs = {name: make_run(tmp_path / name, hps[i], model=name, benchmark="coco-human-paper", scorer="hps-v1",
                           version="hps-v1/ckpt-aaaaaaaaaaaa", extra={"imagereward/imagereward": reward[i]})
            for i, name in enumerate(("sd21", "pixart-alpha"))}
    main(["compare", str(runs["sd21"]), str(runs["pixart-alpha"]), "--paper", "-f", "json"])
    tables = {t["scorer"]: t for t in json.loads(capsys.readouterr().out)["tables"]}
    sd21, pixart = tables["hps-v1"]["rows"]
    assert (sd21["paper"], sd21["paper_se"], sd21["paper_table"]) == (20.17, 0.08, "Appendix A.5")
    assert (pixart["paper"], pixart["paper_se"]) == (21.33, 0.08)
    assert sd21["mean"] == pytest.approx(hps[0].mean() * 100)  # measured in the paper's units too
    assert sd21["paper_differences"] == ["not --protocol paper (mean over all prompts, no repeats)"]
    reward_sd21, reward_pixart = tables["imagereward"]["rows"]
    assert tables["imagereward"]["scale"] == 100 and reward_sd21["mean"] == pytest.approx(reward[0].mean() * 100)
    assert (reward_sd21["paper"], reward_sd21["paper_se"]) == (58.36, 0.51) and reward_pixart["paper"] is None
    main(["compare", str(runs["sd21"]), str(runs["pixart-alpha"]), "--paper"])
    text = capsys.readouterr().out
    assert "20.17 ± 0.08 *" in text and "21.33 ± 0.08 *" in text and "58.36 ± 0.51 *" in text
    assert "imagereward ×100" in text and "measured differently from the paper" in text


def test_paper_match_marks_benchmark_and_sample_size_differences():
    from molebench.report.paper import load_paper_results

    paper = load_paper_results()
    protocol = {"name": "paper", "repeats": 3, "sample_size": 3000}
    entry, differences = paper.match("sd21", "coco-human-paper", "hps-v1", "hps", protocol)
    assert entry["value"] == 20.17 and differences == []
    entry, differences = paper.match("mole-sd21", "coco-human", "imagereward", "imagereward", {**protocol,
                                                                                               "sample_size": 500})
    assert entry["value"] == 62.08 and entry["scale"] == 100
    assert differences == ["benchmark coco-human (the paper's set is coco-human-paper)",
                           "3 repeats of 500 prompts (the paper: 3 of 3,000)"]
    assert paper.match("sd21", "coco-human-paper", "hps-v2", "hps", protocol) == (None, [])  # another instrument
    assert paper.match("sd21", "diffusiondb-human-paper", "hps-v1", "hps", protocol) == (None, [])
    tables = [m for m in paper.missing if m["table"].startswith("Table ")]
    assert [m["table"][:8] for m in tables] == ["Table 1:", "Table 2:", "Table 3:", "Table 4:"]  # one entry each
    assert all(m["reason"].startswith("unverified") and m["protocol_basis"] for m in tables)
    assert tables[0]["protocol_basis"] == "stated" and "clip-t" in tables[3]["metrics"]


def test_paper_numbers_say_whether_their_protocol_is_stated_or_implied():
    from molebench.report.paper import load_paper_results

    basis = {(e["table"], e["model"]): e["protocol_basis"] for e in load_paper_results().results}
    assert basis[("Appendix A.5", "pixart-alpha")] == basis[("Appendix A.5", "mole-pixart-alpha")] == "stated"
    assert basis[("Appendix A.5", "sd21")] == basis[("Appendix A.5", "mole-sd21")] == "implied"
    assert {b for (table, _), b in basis.items() if table == "Appendix A.7"} == {"implied"}


def test_compare_paper_flags_prompt_text_and_weighting_that_differ_from_the_papers(tmp_path, capsys):
    from molebench.report.paper import load_paper_results

    paper = load_paper_results()
    protocol = {"name": "paper", "repeats": 3, "sample_size": 3000}
    official = {"prompt_suffix": " best quality, 8K", "negative_prompt": " poor quality, unclear hand, bad face ",
                "prompt_weighting": "official", "mole": {}}
    assert paper.match("mole-sd21", "coco-human-paper", "hps-v1", "hps", protocol, official)[1] == []
    _, plain = paper.match("mole-sd21", "coco-human-paper", "hps-v1", "hps", protocol,
                           {"prompt_suffix": "", "negative_prompt": "", "mole": {}})
    assert plain == ["prompt text: suffix '', negative prompt '' (the paper's official MoLE scripts: ' best quality, "
                     "8K', ' poor quality, unclear hand, bad face ')",
                     "prompt weighting none (the official scripts read (x), [x], (x:w) marks)"]
    assert paper.match("sd21", "coco-human-paper", "hps-v1", "hps", protocol, {})[1] == []  # weighting unknown there
    _, baseline = paper.match("sd21", "coco-human-paper", "hps-v1", "hps", protocol, official)
    assert baseline[0].startswith("prompt text: suffix ' best quality, 8K'") and len(baseline) == 1
    assert paper.match("sd21", "coco-human-paper", "hps-v1-fp16norm", "hps", protocol, {})[0]["value"] == 20.17

    run = make_run(tmp_path / "mole", 0.2 + 0.01 * np.arange(30), model="mole-sd21", benchmark="coco-human-paper",
                   scorer="hps-v1", version="hps-v1/ckpt-aaaaaaaaaaaa")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.setdefault("settings", {})["extra"] = {k: v for k, v in official.items() if k != "prompt_weighting"}
    (run / "manifest.json").write_text(json.dumps(manifest))  # a MoLE run made without weighting
    main(["compare", str(run), "--paper", "-f", "json"])
    row = json.loads(capsys.readouterr().out)["tables"][0]["rows"][0]
    assert row["paper_differences"][1] == "prompt weighting none (the official scripts read (x), [x], (x:w) marks)"
