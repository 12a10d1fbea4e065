"""Registered MoLE models end to end: offline tiny run, ablation options in the content key, local release folders,
missing-weights errors, and the pipeline staying a normal diffusers pipeline."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from molebench.assets.fetch import fetch_command
from molebench.cli import main
from molebench.errors import InputError
from molebench.models.legacy import TinyVQDiffusion
from molebench.models.mole.attach import mole_layers
from molebench.models.mole.layer import MoLELayer
from molebench.models.mole.models import TinyMoLESD15
from molebench.models.tiny_sd import TinySD15


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny pipelines: a second thread only fights the shared cores
    yield
    torch.set_num_threads(threads)


def _images(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted((folder / "images").glob("*.png"))}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mole") / "run"
    main(["run", "--model", "tiny-mole-sd15", "--benchmark", "tiny-human", "--limit", "2", "--steps", "3",
          "--out", str(out)])
    return out


def test_tiny_mole_runs_offline_and_records_its_settings(tiny_run):
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    extra = manifest["settings"]["extra"]
    assert extra["mole"] == {"experts": ["face", "hand"], "local_gate": True, "global_gate": True,
                             "expert_scales": None, "expert_weights": "lora"}
    # the official MoLE scripts' prompt text, by default (gen_img_diffusers_moe.py, moe_sdxl_gen_img.py)
    assert extra["prompt_suffix"] == " best quality, 8K"
    assert extra["negative_prompt"] == " poor quality, unclear hand, bad face "
    hashes = manifest["model"]["weights_sha256"]
    assert {"mole/face/face_lora.safetensors", "mole/hand/hand_lora.safetensors",
            "mole/gates/moe_gates.safetensors"} <= set(hashes)
    assert any(k.startswith("base/unet/") for k in hashes)
    assert len(_images(tiny_run)) == 2
    scores = pd.read_parquet(tiny_run / "scores.parquet")
    assert len(scores) == 2 and scores["value"].notna().all()


def test_ablation_options_change_the_content_key_and_pixels(tiny_run, tmp_path):
    out = tmp_path / "no-local"
    main(["run", "--model", "tiny-mole-sd15", "--benchmark", "tiny-human", "--limit", "1", "--steps", "3",
          "--no-score", "--option", "local_gate=false", "--out", str(out)])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["extra"]["mole"]["local_gate"] is False
    (name, pixels), = _images(out).items()
    first_key = pd.read_parquet(tiny_run / "items.parquet").iloc[0]["key"]
    assert name != f"{first_key}.png"
    assert not np.array_equal(pixels, _images(tiny_run)[f"{first_key}.png"])


def test_prompt_text_off_changes_the_content_key_and_pixels(tiny_run, tmp_path):
    out = tmp_path / "plain-prompts"
    main(["run", "--model", "tiny-mole-sd15", "--benchmark", "tiny-human", "--limit", "1", "--steps", "3",
          "--no-score", "--option", "prompt_text=none", "--out", str(out)])
    extra = json.loads((out / "manifest.json").read_text())["settings"]["extra"]
    assert (extra["prompt_suffix"], extra["negative_prompt"]) == ("", "")
    (name, pixels), = _images(out).items()
    first = pd.read_parquet(tiny_run / "items.parquet").iloc[0]
    assert pd.read_parquet(out / "items.parquet").iloc[0]["prompt"] == first["prompt"]  # stored/scored prompt as is
    assert name != f"{first['key']}.png"
    assert not np.array_equal(pixels, _images(tiny_run)[f"{first['key']}.png"])


def test_prompt_text_reaches_the_pipeline_for_mole_and_baselines():
    """The same options on MoLE and a baseline give the same pipeline call, so a comparison can be fair both ways."""
    official = (" best quality, 8K", " poor quality, unclear hand, bad face ")
    calls = []

    def pipe(**kwargs):
        calls.append((kwargs["prompt"], kwargs.get("negative_prompt")))
        return SimpleNamespace(images=[Image.new("RGB", (8, 8))] * len(kwargs["prompt"]))

    plain = {"prompt_weighting": "none"}  # text reaches the pipeline as text (weighting: tests/models/test_official_scripts.py)
    cases = [(TinyMoLESD15(**plain), official), (TinyMoLESD15(prompt_text="none", **plain), None),
             (TinySD15(prompt_text="official"), official), (TinySD15(), None),
             (TinySD15(prompt_suffix=official[0], negative_prompt=official[1]), official),
             (TinyMoLESD15(prompt_text="none", prompt_suffix=", photo", **plain), (", photo", ""))]
    for model, text in cases:
        model.pipe, model.device = pipe, torch.device("cpu")  # on CPU one image per call (suffixed once)
        settings = model.settings(steps=2, device="cpu")
        model.generate(["a hand", "a face"], [torch.Generator().manual_seed(i) for i in range(2)], settings)
        suffix, negative_text = text or ("", "")
        negative = [negative_text] if negative_text else None
        assert calls == [(["a hand" + suffix], negative), (["a face" + suffix], negative)]
        calls.clear()
        recorded = {k: settings.extra[k] for k in ("prompt_suffix", "negative_prompt") if k in settings.extra}
        assert recorded == ({"prompt_suffix": suffix, "negative_prompt": negative_text}
                            if text or isinstance(model, TinyMoLESD15) else {})
    model = TinyMoLESD15(**plain)
    model.pipe, model.device = pipe, None  # batched (the GPU path): one call, one negative prompt per prompt
    model.generate(["a hand", "a face"], [torch.Generator().manual_seed(i) for i in range(2)], settings)
    assert calls == [(["a hand" + official[0], "a face" + official[0]], [official[1]] * 2)]
    assert TinySD15(prompt_text="official").settings().extra == TinySD15(
        prompt_suffix=official[0], negative_prompt=official[1]).settings().extra  # same text, same content keys
    with pytest.raises(InputError, match="prompt_text: expected one of official, none"):
        TinySD15(prompt_text="best")
    with pytest.raises(InputError, match="takes no negative prompt"):
        TinyVQDiffusion(prompt_text="official")


def test_bad_option_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "tiny-mole-sd15", "--option", "elbow_gate=1", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2  # a usage error
    err = capsys.readouterr().err
    assert "--option elbow_gate: not an option of tiny-mole-sd15" in err and "local_gate" in err


@pytest.mark.parametrize("model,needle", [
    ("mole-sd15", "No public SD1.5 MoLE release is confirmed"),
    ("mole-sdxl", fetch_command("jiezhueval/MoLE-SDXL")),
])
def test_release_models_without_weights_exit_2(model, needle, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", model, "--benchmark", "tiny-human", "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert needle in err and "Traceback" not in err
    if model == "mole-sd15":
        assert "MOLEBENCH_WEIGHTS_MOLE_SD15" in err and "--weights" in err
    assert not out.exists()


def test_local_release_folder_loads_like_the_official_layout(tiny_run, tmp_path, capsys):
    """mole-sd15 from a folder: experts in sub-folders (the face LoRA with text-encoder keys, ignored), the gate file
    as a torch file, the base UNet as one file."""
    from safetensors.torch import load_file

    source = TinyMoLESD15().files
    release = tmp_path / "release"
    for name in ("face", "hand"):
        (release / name).mkdir(parents=True)
        shutil.copy(source.experts[name], release / name / "pytorch_lora_weights.safetensors")
    te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    face = load_file(str(source.experts["face"]))
    save_file({**face, f"{te}.lora_down.weight": torch.zeros(4, 32), f"{te}.lora_up.weight": torch.zeros(32, 4),
               f"{te}.alpha": torch.tensor(2.0)}, str(release / "face" / "pytorch_lora_weights.safetensors"))

    torch.save(load_file(str(source.gates)), release / "moe_step50000.pt")
    unet_weights = load_file(str(source.pipeline / "unet" / "diffusion_pytorch_model.safetensors"))
    save_file(unet_weights, str(release / "finetuned_unet.safetensors"))
    out = tmp_path / "sd15"
    main(["run", "--model", "mole-sd15", "--benchmark", "tiny-human", "--limit", "1", "--steps", "3",
          "--size", "64x64", "--no-score", "--weights", str(release), "--option", f"base={source.pipeline}",
          "--out", str(out)])
    assert "warning: face LoRA (pytorch_lora_weights.safetensors): ignored 3 text-encoder key(s)" in \
        capsys.readouterr().err.replace("\n", " ")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["files"]["base_unet"].endswith("finetuned_unet.safetensors")
    assert manifest["model"]["files"]["gates"].endswith("moe_step50000.pt")
    (pixels,) = _images(out).values()
    first_key = pd.read_parquet(tiny_run / "items.parquet").iloc[0]["key"]
    assert np.array_equal(pixels, _images(tiny_run)[f"{first_key}.png"]), "same weights, same seed: same pixels"


def test_pipeline_stays_a_diffusers_pipeline():
    """Scheduler swap, step callbacks and dtype moves work with MoLE attached; a float32 VAE decodes bf16 latents."""
    from diffusers import EulerDiscreteScheduler

    model = TinyMoLESD15(vae_fp32=True)  # the memory option mole-sdxl turns on by default
    settings = model.settings(steps=2, dtype="bfloat16", scheduler="EulerDiscreteScheduler", device="cpu")
    model.load(torch.device("cpu"), settings)
    pipe = model.pipe
    assert isinstance(pipe.scheduler, EulerDiscreteScheduler)
    layers = mole_layers(pipe.unet)
    assert len(layers) == 72 and all(isinstance(m, MoLELayer) for m in layers.values())
    assert pipe.unet.dtype == torch.bfloat16 and pipe.vae.dtype == torch.float32
    assert next(iter(layers.values())).down.dtype == torch.bfloat16
    steps = []

    def callback(pipeline, step, timestep, kwargs):
        steps.append(int(step))
        return kwargs

    with torch.inference_mode():
        image = pipe("a hand", num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(0),
                     callback_on_step_end=callback, output_type="pil").images[0]
    assert steps == [0, 1] and image.size == (64, 64)
    assert model.extra_settings()["vae_fp32"] is True


def test_load_mole_on_a_plain_diffusers_pipeline_gives_the_run_images(tiny_run):
    """`load_mole(pipe, folder)` is the registered model's loader: same experts, same gates, same pixels."""
    from diffusers import StableDiffusionPipeline

    from molebench.models.base import set_scheduler
    from molebench.models.mole import load_mole

    model = TinyMoLESD15()
    folder, settings = model.files.root, model.settings(steps=3, device="cpu")
    pipe = StableDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    set_scheduler(pipe, settings.scheduler)
    model.sampler.apply(pipe)  # the official scripts' DDIM config, MoLE's default (prompts without marks: weighting
    wrapped = load_mole(pipe, folder)  # leaves their embeddings as the pipeline's own)
    assert sorted(wrapped) == sorted(mole_layers(pipe.unet)) and len(wrapped) == 72
    item = pd.read_parquet(tiny_run / "items.parquet").iloc[0]
    text = model.prompt_text  # the MoLE scripts' prompt suffix and negative prompt, which the run used
    with torch.inference_mode():
        image = pipe(text.apply([item["prompt"]]), num_inference_steps=3, guidance_scale=settings.guidance,
                     width=settings.width, height=settings.height, **text.negative_kwargs(1),
                     generator=torch.Generator("cpu").manual_seed(int(item["gen_seed"])), output_type="pil").images[0]
    assert np.array_equal(np.asarray(image), _images(tiny_run)[f"{item['key']}.png"])
