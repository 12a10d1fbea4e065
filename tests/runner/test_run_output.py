"""What `molebench run` tells the user: the dtype it really uses on CPU, what to do after `--no-score`, and no
library noise (mediapipe's native logs, diffusers' deprecation warnings) in between."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT
from molebench.cli import main
from molebench.registry import MODELS


def test_cpu_honours_an_explicit_half_dtype_and_says_so(tmp_path, capsys):
    model = MODELS.get("tiny-sd15")()
    assert model.settings(dtype="auto", device="cpu").dtype == "float32"
    settings = model.settings(dtype="float16", device="cpu")
    model.load(torch.device("cpu"), settings)
    assert model.pipe.unet.dtype == torch.float16 and model.pipe.vae.dtype == torch.float16

    out = tmp_path / "half"
    main(["run", "--model", "tiny-sd15", "--limit", "1", "--steps", "1", "--dtype", "float16", "--no-score",
          "--out", str(out)])
    captured = capsys.readouterr()
    assert json.loads((out / "manifest.json").read_text())["settings"]["dtype"] == "float16"
    assert "note: running float16 on the CPU as asked" in " ".join(captured.err.split())


def test_no_score_says_what_was_made_and_how_to_score_it(tmp_path, capsys):
    out = tmp_path / "unscored"
    main(["run", "--model", "tiny-sd15", "--limit", "2", "--steps", "2", "--no-score", "--out", str(out)])
    printed = " ".join(capsys.readouterr().out.split())
    assert f"tiny-sd15 on tiny-human: 2 images in {out / 'images'}, not scored yet" in printed
    assert f"molebench score {out}" in printed and "hps-tiny" in printed
    assert "┏" not in printed, "no empty table"


def test_deprecated_pipelines_warn_nothing(tmp_path, recwarn):
    main(["run", "--model", "tiny-vq-diffusion", "--limit", "1", "--steps", "2", "--no-score",
          "--out", str(tmp_path)])
    leaked = [str(w.message) for w in recwarn if issubclass(w.category, (FutureWarning, DeprecationWarning))
              and "diffusers" in w.filename]
    assert not leaked


def test_mediapipe_native_logs_are_dropped(capfd):
    """Building the detectors (a new graph each time) and running them: TFLite/absl write to fd 2 from C++."""
    from molebench.scoring.detect.mediapipe_legacy import MediaPipeLegacy

    assert MediaPipeLegacy().detect([Image.new("RGB", (64, 64))]) == [[]]
    err = capfd.readouterr().err
    for noise in ("TensorFlow Lite", "absl::InitializeLog", "inference_feedback_manager"):
        assert noise not in err, err


def test_make_demo_ends_with_where_things_are_and_a_report_command_that_works(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("GNU make is not installed: the demo's closing message is a Makefile recipe")
    out = tmp_path / "demo"
    main(["run", "--model", "tiny-sd15", "--limit", "2", "--steps", "1", "--out", str(out)])
    molebench = f"{sys.executable} -m molebench"
    done = subprocess.run(["make", "-s", "--no-print-directory", "demo-next", f"DEMO_OUT={out}",
                           f"MOLEBENCH={molebench}"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    said = done.stdout
    for where in (f"{out}/images/*.png", f"{out}/summary.csv", f"{out}/manifest.json"):
        assert where in said
    report = next(line.strip() for line in said.splitlines() if line.strip().startswith(f"{molebench} report {out} "))
    ran = subprocess.run(shlex.split(report), cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert (out / "report.html").stat().st_size > 0
