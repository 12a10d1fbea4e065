"""Missing weights told in about a second (issue 27): a run checks every model and scorer file it needs before torch,
diffusers or transformers are imported, and names all that is missing, with sizes where a public listing gives them.
Each check runs in a fresh interpreter, so `sys.modules` shows what the command imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

HEAVY = ("torch", "diffusers", "transformers", "open_clip", "torchvision", "torchmetrics", "accelerate")

# runs `molebench ARGS` (argv after the script) in this interpreter, then prints the exit code and the heavy
# libraries it imported as one JSON line on stdout
CLI = f"""
import json, sys
from molebench.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def fresh(code: str, *args: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1]), " ".join(done.stderr.split())


def test_a_run_missing_two_scorers_names_both_with_sizes_and_imports_no_torch(tmp_path):
    out = tmp_path / "run"
    result, err = fresh(CLI, "run", "--model", "tiny-sd15", "--scorers", "hps-v1,imagereward", "--out", str(out))
    assert result == {"code": 2, "heavy": []}, err
    assert "2 sets of weights this command needs are missing" in err
    assert "missing weights for hps-v1: hpc.pt is not on this machine" in err  # published on OneDrive: no size
    assert "missing weights for imagereward: ImageReward.pt (1.79 GB) from the Hugging Face repository" in err
    assert not out.exists()


def test_a_mole_run_names_the_release_its_base_and_the_default_scorers_and_imports_no_torch(tmp_path):
    result, err = fresh(CLI, "run", "--model", "mole-sdxl", "--out", str(tmp_path / "run"))
    assert result == {"code": 2, "heavy": []}, err
    assert "4 sets of weights this command needs are missing" in err
    for named in ("missing weights for mole-sdxl: the repository snapshot from the Hugging Face repository "
                  "'jiezhueval/MoLE-SDXL'", "missing weights for mole-sdxl-base: model_index.json",
                  "stabilityai/stable-diffusion-xl-base-1.0", "hps-v2.1: HPS_v2.1_compressed.pt (1.97 GB)",
                  "imagereward: ImageReward.pt (1.79 GB)"):
        assert named in err


def test_the_python_api_checks_weights_before_importing_torch(tmp_path):
    code = f"""
import json, sys
import molebench
from molebench.errors import MissingWeightsError
try:
    molebench.run(model="tiny-sd15", scorers=["hps-v2.1", "clip-t"], out={str(tmp_path / 'run')!r})
    message = ""
except MissingWeightsError as exc:
    message = str(exc)
print(json.dumps({{"message": message, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    result, _ = fresh(code)
    assert result["heavy"] == []
    assert "HPS_v2.1_compressed.pt (1.97 GB)" in result["message"]
    assert "model.safetensors (1.71 GB)" in result["message"]


def test_every_builtin_model_and_scorer_class_and_its_weights_lookup_import_no_torch():
    code = f"""
import json, sys
from molebench.registry import MODELS, SCORERS, BUILTIN_MODELS, BUILTIN_SCORERS
statuses = [MODELS.get(name)().weights_status().present for name in BUILTIN_MODELS]
statuses += [SCORERS.get(name)(device="cpu").weights_status().present for name in BUILTIN_SCORERS]
print(json.dumps({{"looked": len(statuses), "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    result, err = fresh(code)
    assert result["heavy"] == [], err
    assert result["looked"] > 30


@pytest.mark.parametrize("repo, name, shown", [
    ("THUDM/ImageReward", "ImageReward.pt", "ImageReward.pt (1.79 GB)"),
    ("", "weights-inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth (95.6 MB)"),
    ("THUDM/ImageReward", "med_config.json", "med_config.json"),  # no public size recorded: the name alone
])
def test_sizes_are_shown_as_the_hub_lists_them(repo, name, shown):
    from molebench.weight_sizes import with_size

    assert with_size(repo, name) == shown
