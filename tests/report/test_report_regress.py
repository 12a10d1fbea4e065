"""`molebench regress`: exit 1 on a significant drop, 0 on an identical candidate, 2 when runs cannot be compared."""

from __future__ import annotations

import numpy as np
import pytest

from molebench.cli import main
from report_runs import make_run

RNG = np.random.default_rng(7)
BASE = RNG.normal(0.26, 0.02, size=(40, 2))


def _regress(capsys, baseline, candidate, *extra: str) -> tuple[int, str, str]:
    try:
        main(["regress", "--baseline", str(baseline), "--candidate", str(candidate), *extra])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("regress")
    drop = BASE - 0.004 + RNG.normal(0, 0.002, size=BASE.shape)  # -0.4 HPS points (×100), consistently
    return {
        "base": make_run(root / "base", BASE, model="mole-sd15", seeds=(0, 1),
                         extra={"aux/score": RNG.normal(size=BASE.shape)}),
        "same": make_run(root / "same", BASE, model="mole-sd15-new", seeds=(0, 1),
                         extra={"aux/score": RNG.normal(size=BASE.shape)}),
        "drop": make_run(root / "drop", drop, model="mole-sd15-bad", seeds=(0, 1)),
        "noise": make_run(root / "noise", BASE + RNG.normal(0, 0.01, size=BASE.shape), model="n", seeds=(0, 1)),
        "other_set": make_run(root / "other_set", BASE, model="o", seeds=(0, 1), prompt_set="set-2"),
        "other_ckpt": make_run(root / "other_ckpt", BASE, model="c", seeds=(0, 1), checkpoint_sha256="d" * 64),
    }


def test_identical_candidate_passes(runs, capsys):
    code, out, _ = _regress(capsys, runs["base"], runs["same"])
    assert code == 0
    assert "not significantly worse" in out and "verdict: PASS" in out
    assert "hps-tiny/hps ×100" in out and "aux/score" in out  # every shared metric is gated by default


def test_significant_drop_fails(runs, capsys):
    code, out, _ = _regress(capsys, runs["base"], runs["drop"], "--metric", "hps-tiny")
    assert code == 1
    assert "SIGNIFICANTLY WORSE" in out and "exit 1" in out and "over 40 prompts" in out


def test_tolerated_drop_passes(runs, capsys):
    # the drop is ~0.4 display points; allowing 1.0 point makes it acceptable, allowing 0.1 does not
    assert _regress(capsys, runs["base"], runs["drop"], "--max-drop", "1.0")[0] == 0
    assert _regress(capsys, runs["base"], runs["drop"], "--max-drop", "0.1")[0] == 1


def test_noise_without_a_shift_passes(runs, capsys):
    code, out, _ = _regress(capsys, runs["base"], runs["noise"], "--alpha", "0.01")
    assert code == 0, out


def test_improvement_is_not_a_regression(runs, capsys):
    assert _regress(capsys, runs["drop"], runs["base"], "--metric", "hps-tiny/hps")[0] == 0


@pytest.mark.parametrize("other,named", [
    ("other_set", "prompt sets differ"),
    ("other_ckpt", "checkpoint_sha256"),
])
def test_incomparable_runs_exit_2(runs, capsys, other, named):
    code, out, err = _regress(capsys, runs["base"], runs[other])
    assert code == 2
    assert named in err and "CANNOT COMPARE" in out


def test_anything_that_is_not_a_verdict_exits_2(runs, capsys, tmp_path):
    code, _, err = _regress(capsys, runs["base"], tmp_path / "missing")
    assert code == 2 and "run folder not found" in err
    code, _, err = _regress(capsys, runs["base"], runs["same"], "--metric", "imagereward")
    assert code == 2 and "available" in err
    code, _, err = _regress(capsys, runs["base"], runs["same"], "--max-drop", "-1")
    assert code == 2 and "--max-drop" in err


@pytest.mark.parametrize("direction", [False, None])
def test_gate_and_verdict_follow_the_recorded_direction(tmp_path, capsys, direction):
    """A lower-is-better metric (direction False in the run's scorer fingerprint): the drop is an improvement and the
    rise the regression; a metric without a direction is shown but never gated."""
    import json

    base = make_run(tmp_path / "base", BASE, model="a", seeds=(0, 1))
    shifted = BASE - 0.01 + RNG.normal(0, 0.002, size=BASE.shape)
    lower = make_run(tmp_path / "lower", shifted, model="b", seeds=(0, 1))
    for run in (base, lower):
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["scorers"]["hps-tiny"]["higher_is_better"] = {"hps": direction}
        (run / "manifest.json").write_text(json.dumps(manifest))
    down, out, _ = _regress(capsys, base, lower)
    up, out_up, _ = _regress(capsys, lower, base)
    main(["compare", str(base), str(lower), "--format", "json", "--resamples", "200"])
    row = json.loads(capsys.readouterr().out)["tables"][0]["rows"][1]
    if direction is False:
        assert (down, up) == (0, 1) and "lower is better" in out_up and row["verdict"] == "better"
    else:
        assert (down, up) == (0, 0) and "not gated" in out and row["verdict"] == "lower"
