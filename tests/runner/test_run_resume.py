"""The spine end to end: run, rerun (nothing regenerated, same scores), batch invariance (kill -9 and resume: see
test_reliability.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import exit_code_and_error
from molebench.cli import main


def _run(out: Path, *extra: str) -> None:
    """tiny-sd15 with 2 denoising steps: what these tests check does not depend on the step count."""
    main(["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--steps", "2", "--out", str(out), *extra])


def test_rerun_generates_nothing_and_keeps_scores(tmp_path, capsys):
    out = tmp_path / "r"
    _run(out, "--limit", "4")
    first = pd.read_parquet(out / "scores.parquet")
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()}
    capsys.readouterr()
    _run(out, "--limit", "4")
    err = capsys.readouterr().err
    assert "generated 0 images" in err
    assert "scored 0 images" in err
    second = pd.read_parquet(out / "scores.parquet")
    pd.testing.assert_frame_equal(first, second)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()} == stamps
    assert len(first) == 4 and first["value"].notna().all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["prompt_set_sha256"] == manifest["benchmark"]["prompt_set_sha256"]
    assert manifest["model"]["weights_sha256"], "weight hashes recorded"
    for key in ("packages", "device", "config", "seeds", "git_commit", "scorers"):
        assert key in manifest
    summary = pd.read_csv(out / "summary.csv")
    assert summary.loc[0, "n"] == 4


def test_batch_size_does_not_change_images(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _run(a, "--limit", "3", "--seeds", "0,1", "--batch-size", "1", "--no-score")
    _run(b, "--limit", "3", "--seeds", "0,1", "--batch-size", "2", "--no-score")
    names = sorted(p.name for p in (a / "images").iterdir())
    assert len(names) == 6 and names == sorted(p.name for p in (b / "images").iterdir())
    for name in names:
        pixels_a = np.asarray(Image.open(a / "images" / name))
        pixels_b = np.asarray(Image.open(b / "images" / name))
        assert np.array_equal(pixels_a, pixels_b), name


def test_seeds_give_different_images(tmp_path):
    _run(tmp_path, "--limit", "1", "--seeds", "0,1", "--no-score")
    first, second = (np.asarray(Image.open(p)) for p in sorted((tmp_path / "images").iterdir()))
    assert not np.array_equal(first, second)


def test_other_settings_refuse_the_same_folder(tmp_path, capsys):
    _run(tmp_path, "--limit", "1", "--no-score")
    code, err = exit_code_and_error(capsys, "run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit", "1",
                                    "--steps", "3", "--no-score", "--out", str(tmp_path))
    assert code == 2
    assert "other settings" in err and "settings.steps: 2 vs 3" in " ".join(err.split())


def test_missing_hub_weights_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    code, err = exit_code_and_error(capsys, "run", "--model", "sd15", "--benchmark", "tiny-human", "--out", str(out))
    assert code == 2, err
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in err
    assert "hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --include" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("bad, needle", [("--seeds=a,b", "--seeds: cannot read 'a,b'"),
                                         ("--size=513x512", "positive multiples of 8"),
                                         ("--dtype=float8", "dtype must be one of auto, float32")])
def test_bad_options_are_clear(bad, needle, tmp_path, capsys):
    code, err = exit_code_and_error(capsys, "run", "--model", "tiny-sd15", bad, "--out", str(tmp_path / "never"))
    assert code == 2  # a usage error
    assert "error:" in err and needle in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "never").exists()
