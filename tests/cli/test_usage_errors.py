"""Bad values told at once (issue 27, group C): every option value that can never work is a usage error — exit 2,
one line naming the option and the help command, nothing written — before any model, scorer or run is loaded."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import exit_code_and_error
from molebench.errors import InputError, UsageError
from molebench.runner.config import RunConfig
from report_runs import make_run

RUN = ["run", "--model", "tiny-sd15", "--steps", "1"]
RUN_CASES = {
    "--size 0x0": (["--size", "0x0"], "size"),
    "--size 7x8": (["--size", "7x8"], "multiples of 8"),
    "--size abc": (["--size", "abc"], "--size"),
    "--guidance nan": (["--guidance", "nan"], "guidance"),
    "--guidance inf": (["--guidance", "inf"], "guidance"),
    "--guidance -1": (["--guidance", "-1"], "guidance"),
    "--seeds -1": (["--seeds", "-1"], "seeds"),
    "--seeds x": (["--seeds", "x"], "--seeds"),
    "--seeds 3-1": (["--seeds", "3-1"], "empty range"),
    "--seeds 0,0": (["--seeds", "0,0"], "distinct"),
    "--seeds 0-100000000": (["--seeds", "0-100000000"], "more than 10,000 seeds"),
    "--limit 0": (["--limit", "0"], "--limit"),
    "--steps 0": (["--steps", "0"], "--steps"),
    "--batch-size 0": (["--batch-size", "0"], "--batch-size"),
    "--threads 0": (["--threads", "0"], "--threads"),
    "--num-processes 0": (["--num-processes", "0"], "--num-processes"),
    "--scorer-batch-size 0": (["--scorer-batch-size", "0"], "--scorer-batch-size"),
    "--sample-size 0": (["--protocol", "paper", "--sample-size", "0"], "--sample-size"),
    "--sample-size over the pool": (["--protocol", "paper", "--sample-size", "9"], "fewer than the protocol's"),
    "--sample-size without --protocol": (["--sample-size", "3"], "only with protocol"),
    "--protocol nope": (["--protocol", "nope"], "protocol"),
    "--protocol with --limit": (["--protocol", "paper", "--limit", "2"], "contradict"),
    "--device tpu": (["--device", "tpu"], "device"),
    "--dtype fp8": (["--dtype", "fp8"], "dtype"),
    "--scorers empty": (["--scorers", ""], "--scorers is empty"),
    "--scorers comma": (["--scorers", ","], "--scorers is empty"),
    "--scorers unknown": (["--scorers", "hps-v21"], "hps-v2.1"),
    "--no-score with --scorers": (["--no-score", "--scorers", "hps-tiny"], "contradict"),
    "--benchmark unknown": (["--benchmark", "no-such-bench"], "no-such-bench"),
    "--option malformed": (["--option", "novalue"], "KEY=VALUE"),
    "--option unknown": (["--option", "vae_tilling=true"], "vae_tilling"),
    "--option bad value": (["--option", "prompt_text=loud"], "prompt_text"),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_every_bad_run_option_is_a_usage_error(case, tmp_path, capsys):
    args, what = RUN_CASES[case]
    out = tmp_path / "run"
    code, err = exit_code_and_error(capsys, *RUN, *args, "--out", str(out))
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and what in lines[0], err
    assert "`molebench run --help`" in lines[0] and not out.exists()


def test_unknown_model_is_a_usage_error(tmp_path, capsys):
    code, err = exit_code_and_error(capsys, "run", "--model", "tiny-sd151", "--out", str(tmp_path / "r"))
    assert code == 2 and "tiny-sd15" in err and not (tmp_path / "r").exists()


def test_out_naming_a_regular_file_says_so(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("mine")
    code, err = exit_code_and_error(capsys, *RUN, "--limit", "1", "--out", str(target))
    assert code == 2 and f"--out {target} is a file, not a folder" in " ".join(err.split())
    assert "read-only" not in err and target.read_text() == "mine"


def test_a_huge_seed_range_is_refused_before_it_is_expanded():
    """The CLI checks the range's size before building it, the API the list's length, and the planner the number
    of images (prompts × seeds) before it builds one row."""
    from molebench.benchmarks.base import PromptItem, PromptSet
    from molebench.cli.run import parse_seeds
    from molebench.runner.plan_step import MAX_PLANNED_IMAGES, plan_items

    with pytest.raises(UsageError, match="more than 10,000 seeds"):
        parse_seeds("0-100000000000000")  # expanded, this would not fit in any memory
    with pytest.raises(UsageError, match="more than 10,000"):
        RunConfig(model="tiny-sd15", seeds=range(20_000))
    prompts = PromptSet("big", tuple(PromptItem(f"p{i}", "a person") for i in range(2_000)))
    with pytest.raises(UsageError, match=f"more than the {MAX_PLANNED_IMAGES:,}"):
        plan_items(prompts, tuple(range(1_000)), None, {}, {})


def test_run_says_how_many_images_it_plans_before_it_starts(tmp_path, capsys):
    from molebench.cli import main

    main([*RUN, "--limit", "1", "--seeds", "0-1", "--no-score", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert "planned: 2 images (1 prompts × 2 seeds)" in err
    assert err.index("planned: 2 images") < err.index("generat")


def test_api_usage_errors_are_input_errors_too():
    """Python callers that catch InputError keep working: a usage error is one."""
    with pytest.raises(InputError):
        RunConfig(model="tiny-sd15", guidance=float("nan"))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "a", np.linspace(0.2, 0.3, 6), model="a")


@pytest.mark.parametrize("argv, what, command", [
    (["compare", "{run}", "--format", "xml"], "--format", "compare"),
    (["compare", "{run}", "--confidence", "2"], "--confidence", "compare"),
    (["compare", "{run}", "--resamples", "5"], "--resamples", "compare"),
    (["compare", "{run}", "--alpha", "0"], "--alpha", "compare"),
    (["compare", "{run}", "--out", "{tmp}/x.txt"], "--out", "compare"),
    (["report", "{run}", "--top", "0"], "--top", "report"),
    (["report", "{run}", "--resamples", "5", "--out", "{tmp}/r.html"], "--resamples", "report"),
    (["leaderboard", "export", "{run}", "--resamples", "5", "--out", "{tmp}/b.csv"], "--resamples",
     "leaderboard export"),
    (["score", "{run}", "--scorers", ""], "--scorers is empty", "score"),
    (["score", "{run}", "--batch-size", "0"], "--batch-size", "score"),
])
def test_every_bad_report_option_is_a_usage_error(argv, what, command, run_folder, tmp_path, capsys):
    argv = [a.format(run=run_folder, tmp=tmp_path) for a in argv]
    code, err = exit_code_and_error(capsys, *argv)
    assert code == 2 and what in err and f"`molebench {command} --help`" in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, what", [(["--max-drop", "-1"], "--max-drop"), (["--alpha", "0.7"], "--alpha")])
def test_bad_regress_options_cannot_compare(args, what, run_folder, capsys):
    code, err = exit_code_and_error(capsys, "regress", "--baseline", str(run_folder), "--candidate",
                                    str(run_folder), *args)
    assert code == 2 and what in err
