"""Fair comparisons (issue 27, group A): every table shows the prompt text a run used, `compare`, `report` and
`regress` warn when runs differ in more than the model, `--allow-mismatch` numbers rest on the same images, and
several seeds are broken down per seed."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from molebench.cli import main
from molebench.store import RunStore
from report_runs import make_run

RNG = np.random.default_rng(27)
BASE = RNG.normal(0.25, 0.02, size=(10, 2))
SETTINGS = {"steps": 2, "guidance": 7.5, "width": 64, "height": 64, "scheduler": "DDIMScheduler", "dtype": "float32"}
MOLE_TEXT = {"prompt_suffix": " best quality, 8K", "negative_prompt": " poor quality, unclear hand, bad face "}


def with_settings(root, settings=None, extra=None):
    """Record generation settings in a synthetic run's manifest, as `molebench run` does."""
    store = RunStore(root)
    manifest = store.read_manifest().to_json()
    manifest["settings"] = {**SETTINGS, **(settings or {}), "extra": dict(extra or {})}
    store.write_manifest(manifest)
    return root


@pytest.fixture()
def pair(tmp_path):
    """A baseline with plain prompts and a MoLE-like run with the official suffix and negative prompt."""
    base = with_settings(make_run(tmp_path / "base", BASE, model="sd15", seeds=(0, 1)))
    mole = with_settings(make_run(tmp_path / "mole", BASE + 0.01, model="mole-sd15", seeds=(0, 1)),
                         extra={**MOLE_TEXT, "mole": {"experts": ["face", "hand"]}, "prompt_weighting": "a1111"})
    return base, mole


def _out(capsys, *argv):
    main(list(argv))
    return capsys.readouterr()


def test_prompt_text_is_in_every_runs_table_csv_and_leaderboard(pair, tmp_path, capsys):
    base, mole = pair
    md = _out(capsys, "compare", str(base), str(mole), "-f", "md", "--resamples", "200").out
    runs_header = next(line for line in md.splitlines() if line.startswith("| run | model"))
    assert "prompt suffix" in runs_header and "negative prompt" in runs_header and "prompt weighting" in runs_header
    assert '"\u00a0best quality, 8K"'.replace("\u00a0", " ") in md and "none" in md
    rows = list(csv.DictReader(io.StringIO(_out(capsys, "compare", str(base), str(mole), "-f", "csv",
                                                "--resamples", "200").out)))
    by_model = {r["model"]: r for r in rows}
    assert by_model["mole-sd15"]["prompt_suffix"] == " best quality, 8K"
    assert by_model["mole-sd15"]["negative_prompt"] == " poor quality, unclear hand, bad face "
    assert by_model["mole-sd15"]["prompt_weighting"] == "a1111" and by_model["sd15"]["prompt_suffix"] == ""
    assert by_model["sd15"]["higher_is_better"] == "true"  # the leaderboard's spelling
    latex = _out(capsys, "compare", str(base), str(mole), "-f", "latex", "--resamples", "200").out
    assert "prompt suffix" in latex and "best quality, 8K" in latex
    board = tmp_path / "board.csv"
    main(["leaderboard", "export", str(base), str(mole), "--out", str(board), "--resamples", "200"])
    rows = {r["model"]: r for r in csv.DictReader(board.open())}
    assert rows["mole-sd15"]["prompt_suffix"] == " best quality, 8K" and rows["sd15"]["negative_prompt"] == ""
    assert rows["mole-sd15"]["prompt_weighting"] == "a1111"


def test_compare_report_and_regress_warn_about_prompt_text(pair, tmp_path, capsys):
    base, mole = pair
    printed = _out(capsys, "compare", str(base), str(mole), "--resamples", "200").out
    assert "WARNING: the runs differ in more than the model" in printed
    assert 'prompt suffix differs: sd15 none vs mole-sd15 " best quality, 8K"' in " ".join(printed.split())
    result = json.loads(_out(capsys, "compare", str(base), str(mole), "-f", "json", "--resamples", "200").out)
    assert any("negative prompt differs" in w for w in result["setting_differences"])
    assert any("prompt weighting differs: sd15 none vs mole-sd15 a1111" in w for w in result["setting_differences"])
    assert not any("mole" in w.split("differs")[0] for w in result["setting_differences"])  # the model is the model
    err = _out(capsys, "report", str(base), str(mole), "--out", str(tmp_path / "r.html"), "--resamples", "200").err
    assert "prompt suffix differs" in " ".join(err.split())
    page = (tmp_path / "r.html").read_text()
    assert "id='setting-differences'" in page and "best quality, 8K" in page
    main(["regress", "--baseline", str(base), "--candidate", str(mole), "--resamples", "200"])  # passes (exit 0)
    err = " ".join(capsys.readouterr().err.split())
    assert 'prompt suffix differs: baseline none vs candidate " best quality, 8K"' in err


@pytest.mark.parametrize("setting, value, shown", [
    ({"steps": 50}, None, "steps differs: a 2 vs b 50"),
    ({"guidance": 5.0}, None, "guidance differs: a 7.5 vs b 5"),
    ({"width": 128}, None, "size differs: a 64x64 vs b 128x64"),
    ({"scheduler": "EulerDiscreteScheduler"}, None, "scheduler differs: a DDIMScheduler vs b EulerDiscreteScheduler"),
    ({"dtype": "float16"}, None, "dtype differs: a float32 vs b float16"),
    ({}, {"prompt_suffix": " x"}, 'prompt suffix differs: a none vs b " x"'),
    ({}, {"negative_prompt": "ugly"}, 'negative prompt differs: a none vs b "ugly"'),
    ({}, {"sampler": "official-ddim"}, "other options differs: a ? vs b sampler=official-ddim"),
])
def test_every_image_setting_that_differs_is_named_with_both_values(tmp_path, capsys, setting, value, shown):
    a = with_settings(make_run(tmp_path / "a", BASE, model="a", seeds=(0, 1)))
    b = with_settings(make_run(tmp_path / "b", BASE, model="b", seeds=(0, 1)), setting, value)
    result = json.loads(_out(capsys, "compare", str(a), str(b), "-f", "json", "--resamples", "200").out)
    assert result["setting_differences"] == [f"bench-x: {shown}"]


def test_seeds_that_differ_are_named(tmp_path, capsys):
    a = with_settings(make_run(tmp_path / "a", BASE, model="a", seeds=(0, 1)))
    b = with_settings(make_run(tmp_path / "b", BASE, model="b", seeds=(0, 2)))
    result = json.loads(_out(capsys, "compare", str(a), str(b), "-f", "json", "--allow-mismatch",
                             "--resamples", "200").out)
    assert "bench-x: seeds differs: a 0-1 vs b 0,2" in result["setting_differences"]


def test_like_for_like_runs_get_no_warning(tmp_path, capsys):
    a = with_settings(make_run(tmp_path / "a", BASE, model="a", seeds=(0, 1)), extra=MOLE_TEXT)
    b = with_settings(make_run(tmp_path / "b", BASE, model="b", seeds=(0, 1)), extra=MOLE_TEXT)
    printed = _out(capsys, "compare", str(a), str(b), "--resamples", "200").out
    assert "WARNING" not in printed


def test_allow_mismatch_means_delta_and_tests_rest_on_the_shared_images(tmp_path, capsys):
    big = RNG.normal(0.2, 0.05, size=(12, 2))
    small = big[:1] + 0.1  # one prompt, two seeds: 2 images against 24
    a = make_run(tmp_path / "a", big, model="a", seeds=(0, 1))
    b = make_run(tmp_path / "b", small, model="b", seeds=(0, 1))
    result = json.loads(_out(capsys, "compare", str(a), str(b), "-f", "json", "--allow-mismatch",
                             "--resamples", "200").out)
    ref, cand = result["tables"][0]["rows"]
    assert ref["n"] == cand["n"] == 2 and ref["n_prompts"] == cand["n_prompts"] == 1
    assert ref["mean"] == pytest.approx(big[0].mean() * 100) and cand["mean"] == pytest.approx(small[0].mean() * 100)
    assert cand["diff"] == pytest.approx(cand["mean"] - ref["mean"])
    printed = " ".join(_out(capsys, "compare", str(a), str(b), "--allow-mismatch", "--resamples", "200").out.split())
    assert "Means, Δ and tests use only the (prompt, seed) pairs every run of a table scored" in printed


def test_several_seeds_show_prompts_images_and_a_seed_breakdown(tmp_path, capsys):
    values = RNG.normal(0.2, 0.05, size=(8, 3))
    a = make_run(tmp_path / "a", values, model="a", seeds=(0, 1, 2))
    result = json.loads(_out(capsys, "compare", str(a), "-f", "json", "--resamples", "200").out)
    row = result["tables"][0]["rows"][0]
    per_seed = values.mean(axis=0) * 100
    assert row["n"] == 24 and row["n_prompts"] == 8
    assert [row["seed_means"][str(s)] for s in range(3)] == pytest.approx(per_seed)
    assert row["seed_sd"] == pytest.approx(np.std(per_seed, ddof=1))
    printed = _out(capsys, "compare", str(a), "--resamples", "200").out
    assert "prompts" in printed and "images" in printed and "per-seed means (s.d.)" in printed
    assert f"(s.d. {np.std(per_seed, ddof=1):.2f})" in printed


def test_report_of_a_mole_run_and_its_baseline_shows_the_prompt_text_and_warns(tmp_path):
    """Real tiny runs: tiny-mole-sd15 adds the MoLE scripts' suffix and negative prompt, tiny-sd15 does not; the
    page opened in Chromium names both texts in its runs table and warns above the tables."""
    from browser import launch_chromium

    args = ["--benchmark", "tiny-human", "--limit", "1", "--steps", "1", "--scorers", "hps-tiny"]
    main(["run", "--model", "tiny-sd15", *args, "--out", str(tmp_path / "sd15")])
    main(["run", "--model", "tiny-mole-sd15", *args, "--out", str(tmp_path / "mole")])
    out = tmp_path / "report.html"
    main(["report", str(tmp_path / "sd15"), str(tmp_path / "mole"), "--out", str(out), "--resamples", "200"])
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(out.resolve().as_uri())
        warning = page.inner_text("#setting-differences")
        runs = page.evaluate("""() => Array.from(document.querySelectorAll('table.runs tr')).map(r =>
            Array.from(r.cells).map(c => c.innerText.trim()))""")
    assert "differ in more than the model" in warning
    assert 'prompt suffix differs: tiny-sd15 none vs tiny-mole-sd15 " best quality, 8K"' in warning
    assert "negative prompt differs" in warning
    header, *rows = runs
    suffix = header.index("prompt suffix")
    by_label = {row[0]: row for row in rows}
    assert by_label["tiny-mole-sd15"][suffix] == '" best quality, 8K"' and by_label["tiny-sd15"][suffix] == "none"
    assert "poor quality, unclear hand, bad face" in by_label["tiny-mole-sd15"][header.index("negative prompt")]
