"""molebench as a library: a cheap `import molebench`, the README's examples, score_folder's prompt sources and
RunConfig refusing bad values before anything is written."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
from PIL import Image

import molebench
from conftest import REPO_ROOT
from molebench.errors import InputError
from molebench.models.mole.attach import mole_layers
from molebench.registry import MODELS
from molebench.runner.config import RunConfig

# The README uses the real scorers and a hub pipeline; the tests swap in the tiny offline stand-ins.
README_STAND_INS = {'"hps-v2.1"': '"hps-tiny"', '"imagereward"': '"imagereward-tiny"',
                    "num_inference_steps=50": "num_inference_steps=2"}


def test_import_molebench_is_cheap_and_names_the_api():
    code = ("import sys, molebench; print(molebench.get_scorer, molebench.score_folder, molebench.run); "
            "assert 'torch' not in sys.modules and 'pandas' not in sys.modules, 'heavy import'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "<function get_scorer" in result.stdout and "<function score_folder" in result.stdout


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 4
    mole_folder = MODELS.get("tiny-mole-sd15")().files.root  # the tiny release: pipeline, experts and gates
    stand_ins = {**README_STAND_INS, '"stable-diffusion-v1-5/stable-diffusion-v1-5"': repr(str(mole_folder)),
                 '"path/to/mole-sd15"': repr(str(mole_folder))}
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        for real, tiny in stand_ins.items():
            block = block.replace(real, tiny)
        exec(compile(block, "README.md", "exec"), namespace)
    scores = namespace["scores"]
    assert set(scores["scorer"]) == {"hps-tiny", "imagereward-tiny"} and len(scores) == 4
    assert scores.attrs["scorers"]["hps-tiny"]["display_scale"] == {"hps": 100.0}
    run_scores = namespace["store"].read_scores()
    assert sorted(run_scores["value"]) == pytest.approx(sorted(scores.loc[scores["scorer"] == "hps-tiny", "value"]))
    hps = scores[scores["scorer"] == "hps-tiny"].reset_index(drop=True)
    same_prompt = (hps["prompt"] == "a woman waving her hand at the camera in a park").to_numpy()
    assert same_prompt.sum() == 1  # the image made for that prompt scores the same through both functions
    assert namespace["values"]["hps"][same_prompt] == pytest.approx(hps.loc[same_prompt, "value"].to_numpy())
    assert len(mole_layers(namespace["pipe"].unet)) == 72
    assert namespace["image"].size == (64, 64)


def test_score_folder_reads_prompts_from_a_listing(tmp_path):
    colours = {"red.png": (200, 30, 30), "blue.jpg": (30, 30, 200)}
    for name, colour in colours.items():
        Image.new("RGB", (32, 32), colour).save(tmp_path / name)
    (tmp_path / "prompts.csv").write_text("file,prompt\nred.png,a red square\nblue.jpg,\"a blue, square\"\n")
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"file": "blue.jpg", "prompt": "a blue, square"}) + "\n")
    from_csv = molebench.score_folder(tmp_path, "hps-tiny", prompts=tmp_path / "prompts.csv", device="cpu")
    from_jsonl = molebench.score_folder(tmp_path, ["hps-tiny"], prompts=tmp_path / "prompts.jsonl", device="cpu")
    assert list(from_csv["file"]) == ["red.png", "blue.jpg"] and list(from_csv["prompt"])[1] == "a blue, square"
    assert from_jsonl["value"].iloc[0] == pytest.approx(from_csv["value"].iloc[1])
    with pytest.raises(InputError, match="blue.jpg has no 'prompt' PNG text chunk"):
        molebench.score_folder(tmp_path, "hps-tiny", device="cpu")
    (tmp_path / "bad.csv").write_text("file,prompt\ngreen.png,a green square\n")
    with pytest.raises(InputError, match=r"bad.csv:2: image .*green.png not found"):
        molebench.score_folder(tmp_path, "hps-tiny", prompts=tmp_path / "bad.csv", device="cpu")


@pytest.mark.parametrize("field, value, needle", [
    ("dtype", "fp8", "dtype must be one of auto, float32, float16, bfloat16, got 'fp8'"),
    ("device", "gpu", "device must be auto, cpu, mps, cuda or cuda:N"),
    ("seeds", (0, 0), "seeds must be distinct"),
    ("seeds", (-1,), "seeds must be non-negative"),
    ("size", (513, 512), "positive multiples of 8"),
    ("batch_size", 0, "batch_size must be a whole number ≥ 1"),
    ("limit", 2.5, "limit must be a whole number ≥ 1"),
    ("steps", 0, "steps must be a whole number ≥ 1"),
    ("guidance", math.nan, "guidance must be a finite number"),
    ("scorers", ("hps-v21",), "unknown scorer 'hps-v21'; did you mean hps-v2.1"),
    ("scorers", "hps-tiny", "scorers must be a list of scorer names"),
    ("model", "tiny-sd-15", "unknown model 'tiny-sd-15'; did you mean tiny-sd15"),
    ("benchmark", "coco", "unknown benchmark 'coco'"),
])
def test_bad_run_settings_are_refused_before_anything_is_written(tmp_path, field, value, needle):
    out = tmp_path / "run"
    settings = {"model": "tiny-sd15", "out": str(out), field: value}
    with pytest.raises(InputError, match=re.escape(needle)):
        RunConfig(**settings)
    with pytest.raises(InputError, match=re.escape(needle)):
        molebench.run(**settings)
    assert not out.exists()


def test_run_config_normalises_what_it_accepts():
    config = RunConfig(model="tiny-sd15", seeds=[2, 0], size=[64, 64], scorers=["hps-tiny"], guidance=3, out=REPO_ROOT)
    assert config.seeds == (2, 0) and config.size == (64, 64) and config.scorers == ("hps-tiny",)
    assert config.guidance == 3.0 and config.out == str(REPO_ROOT)
    assert config.to_json()["seeds"] == [2, 0]
