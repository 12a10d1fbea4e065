"""mole-sd15's base: the paper's model sits on a Stage-1 fine-tune of the UNet and the text encoder (appendix A.1).
A run on the stock base says so once (terminal and manifest); a fine-tuned text encoder is accepted like the UNet."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from molebench.cli import main
from molebench.errors import InputError
from molebench.models.mole.files import load_base_text_encoder
from molebench.registry import MODELS


@pytest.fixture(scope="module")
def release():
    return MODELS.get("tiny-mole-sd15")().files


@pytest.fixture
def stock_base(monkeypatch, release):
    """The tiny pipeline stands in for the stock SD v1.5 pipeline mole-sd15 falls back to."""
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_MOLE_SD15_BASE", str(release.pipeline))
    return {"face": str(release.experts["face"]), "hand": str(release.experts["hand"]), "gates": str(release.gates)}


def test_warning_names_the_stock_parts(stock_base, release):
    def warnings(**options):
        return MODELS.get("mole-sd15")(**stock_base, **options).base_warnings()

    (both,) = warnings()
    assert "stock stable-diffusion-v1-5/stable-diffusion-v1-5 unet and text encoder" in both
    assert "Stage-1 fine-tune" in both and "base_text_encoder=PATH" in both
    (text_only,) = warnings(base_unet=str(release.pipeline / "unet"))
    assert "stock stable-diffusion-v1-5/stable-diffusion-v1-5 text encoder:" in text_only
    assert warnings(base_unet=str(release.pipeline / "unet"),
                    base_text_encoder=str(release.pipeline / "text_encoder")) == []
    assert warnings(base=str(release.pipeline)) == []  # a whole base pipeline given: taken as the fine-tune
    assert MODELS.get("tiny-mole-sd15")().base_warnings() == []


def _ldm_text_encoder(release, path, shift: float = 0.0) -> None:
    """The text encoder in the original SD checkpoint layout (as kohya's fine_tune.py saves it), with a UNet key."""
    tensors = load_file(str(release.pipeline / "text_encoder" / "model.safetensors"))
    ldm = {f"cond_stage_model.transformer.{k}": v + shift if k.endswith("final_layer_norm.bias") else v
           for k, v in tensors.items()}
    save_file({**ldm, "model.diffusion_model.out.0.bias": torch.zeros(4)}, str(path))


def test_text_encoder_loads_from_the_original_layout(release, tmp_path):
    _ldm_text_encoder(release, tmp_path / "finetune.safetensors")
    loaded = load_base_text_encoder(tmp_path / "finetune.safetensors", release.pipeline, torch.float32)
    stock = {k.removeprefix("text_model."): v
             for k, v in load_file(str(release.pipeline / "text_encoder" / "model.safetensors")).items()}
    state = {k.removeprefix("text_model."): v for k, v in loaded.state_dict().items()}
    compared = [k for k in stock if not k.endswith("position_ids")]
    assert len(compared) > 30 and all(torch.equal(state[k], stock[k]) for k in compared)
    save_file({"text_model.nothing": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(InputError, match="does not fit the text encoder"):
        load_base_text_encoder(tmp_path / "bad.safetensors", release.pipeline, torch.float32)


def test_stock_base_warns_once_and_a_fine_tuned_text_encoder_is_used(stock_base, release, tmp_path, capsys):
    common = ["run", "--model", "mole-sd15", "--benchmark", "tiny-human", "--limit", "1", "--steps", "2",
              "--size", "64x64", "--no-score", *[x for k, v in stock_base.items() for x in ("--option", f"{k}={v}")],
              "--option", f"base_unet={release.pipeline / 'unet'}"]
    main([*common, "--out", str(tmp_path / "stock")])
    err = capsys.readouterr().err.replace("\n", " ")
    assert err.count("warning: mole-sd15 runs on the stock") == 1 and "text encoder:" in err
    manifest = json.loads((tmp_path / "stock" / "manifest.json").read_text())
    assert len(manifest["model"]["warnings"]) == 1 and "text encoder" in manifest["model"]["warnings"][0]

    _ldm_text_encoder(release, tmp_path / "finetune.safetensors", shift=0.5)
    main([*common, "--option", f"base_text_encoder={tmp_path / 'finetune.safetensors'}", "--out",
          str(tmp_path / "tuned")])
    assert "runs on the stock" not in capsys.readouterr().err
    manifest = json.loads((tmp_path / "tuned" / "manifest.json").read_text())
    assert manifest["model"]["warnings"] == []
    assert manifest["model"]["files"]["base_text_encoder"].endswith("finetune.safetensors")
    assert any(k.startswith("base_text_encoder/") for k in manifest["model"]["weights_sha256"])
    stock_png, tuned_png = (next((tmp_path / run / "images").glob("*.png")) for run in ("stock", "tuned"))
    assert stock_png.name != tuned_png.name  # new weights, new content key
    assert not np.array_equal(np.asarray(Image.open(stock_png)), np.asarray(Image.open(tuned_png)))
