"""Missing weights told at once (issue 27, group D): one error names every model and scorer file a run needs, the
copy instruction names this machine's Hugging Face cache, `weights=` works in the Python API as the docs say, and
the API's error paths are clear."""

from __future__ import annotations

import os

import pytest

import molebench
from conftest import exit_code_and_error
from molebench.errors import InputError, MissingWeightsError, UsageError


def test_run_names_every_missing_scorer_in_one_error(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = exit_code_and_error(capsys, "run", "--model", "tiny-sd15", "--limit", "1", "--steps", "1",
                                    "--scorers", "hps-v1,imagereward", "--out", str(out))
    err = " ".join(err.split())
    assert code == 2 and "2 sets of weights this command needs are missing" in err
    assert "(1) missing weights for hps-v1: hpc.pt" in err and "(2) missing weights for imagereward" in err
    assert f"copy that machine's Hugging Face cache into {os.environ['HF_HUB_CACHE']} here" in err
    assert not out.exists()


def test_a_mole_run_names_the_mole_release_and_its_base_pipeline(tmp_path, capsys):
    code, err = exit_code_and_error(capsys, "run", "--model", "mole-sdxl", "--limit", "1", "--no-score",
                                    "--out", str(tmp_path / "run"))
    err = " ".join(err.split())
    assert code == 2 and "missing weights for mole-sdxl:" in err
    assert "missing weights for mole-sdxl-base" in err and "stabilityai/stable-diffusion-xl-base-1.0" in err
    assert not (tmp_path / "run").exists()


def test_get_scorer_takes_weights_as_the_docs_say():
    from molebench.assets.weights import file_sha256
    from molebench.scoring.hps_v1 import TinyHPSv1

    local = TinyHPSv1().checkpoint_path()  # an hpc.pt in the real file's layout
    scorer = molebench.get_scorer("hps-v1", weights=local, device="cpu")
    assert scorer.version == f"hps-v1/ckpt-{file_sha256(local)[:12]}"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"name": "hps-v21"}, InputError, "did you mean hps-v2.1"),
    ({"name": "hps-v1"}, MissingWeightsError, "MOLEBENCH_WEIGHTS_HPS_V1"),
    ({"name": "imagereward"}, MissingWeightsError, "hf download THUDM/ImageReward"),
    ({"name": "hps-v1", "weights": "no/such/hpc.pt"}, UsageError, "do not exist: no/such/hpc.pt"),
    ({"name": "hps-tiny", "device": "tpu"}, UsageError, "device must be auto, cpu"),
    ({"name": "hps-tiny", "batch_size": 0}, UsageError, "batch_size must be a whole number"),
])
def test_get_scorer_error_paths(kwargs, error, message):
    name = kwargs.pop("name")
    with pytest.raises(error, match=message):
        molebench.get_scorer(name, **kwargs)


def test_weights_names_an_unknown_entry(capsys):
    code, err = exit_code_and_error(capsys, "weights", "sd151")
    assert code == 2 and "no model or scorer named sd151" in err


def test_score_names_every_missing_scorer_in_one_error(tmp_path, capsys):
    import numpy as np

    from report_runs import make_run

    run = make_run(tmp_path / "run", np.linspace(0.2, 0.3, 4))
    before = sorted(p.name for p in run.iterdir())
    code, err = exit_code_and_error(capsys, "score", str(run), "--scorers", "hps-v1,imagereward")
    err = " ".join(err.split())
    assert code == 2 and "(1) missing weights for hps-v1" in err and "(2) missing weights for imagereward" in err
    assert sorted(p.name for p in run.iterdir() if p.name != ".lock") == before  # the lock file is the lock's
