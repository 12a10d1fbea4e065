"""HPS v1: molebench's `hps-v1` equals the upstream computation (OpenAI's `clip` package, `evaluate_hps.py`'s steps)
on the same weights; the OpenAI ViT-L/14 network on open_clip has the `clip` package's parameters; `hpc.pt` is found
where the user keeps it, and its absence is one clear error (exit 2) naming the file and its origin."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from molebench_testing.reference import missing_openai_clip
from scorer_fixtures import PARITY_PROMPTS, parity_images

TOLERANCE = 1e-5
needs_clip = pytest.mark.skipif(missing_openai_clip() is not None, reason=str(missing_openai_clip()))


def sixteen() -> tuple[list[Image.Image], list[str]]:
    """The shared parity images plus six more (a flip, odd sizes, a repeated prompt): one full batch of 16."""
    images = parity_images()
    rng = np.random.default_rng(11)
    images += [images[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT), images[1].resize((225, 300)),
               Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)), images[2].resize((700, 224)),
               images[8].rotate(30), images[3].resize((224, 224))]
    prompts = PARITY_PROMPTS + ["a man", "a cup of coffee on a table", "tiny noise", "a cat", "a rotated face",
                                "a photographer"]
    return images, prompts


@pytest.fixture(scope="module")
def clip_built(tmp_path_factory):
    """hpc.pt and a base checkpoint written from the `clip` package's own model class (tiny, seeded)."""
    from molebench.scoring.hps_v1 import TINY_HPS_V1_CONFIG
    from molebench_testing.reference import openai_clip_network

    folder = tmp_path_factory.mktemp("hps-v1")
    config = TINY_HPS_V1_CONFIG
    for seed, name in ((1, "base.pt"), (2, "hpc.pt")):
        torch.manual_seed(seed)
        state = openai_clip_network(config["embed_dim"], config["vision_cfg"], config["text_cfg"]).state_dict()
        torch.save(state if name == "base.pt" else {"state_dict": state}, folder / name)
    return folder


@needs_clip
@pytest.mark.parametrize("batch_size", [1, 16])
def test_hps_v1_parity_with_evaluate_hps(clip_built, batch_size):
    from molebench.scoring.hps_v1 import TinyHPSv1
    from molebench_testing.reference import hps_v1_reference

    images, prompts = sixteen()
    expected = hps_v1_reference(clip_built / "base.pt", clip_built / "hpc.pt")(images, prompts)
    ours = TinyHPSv1(weights=clip_built / "hpc.pt", batch_size=batch_size).score(images, prompts)["hps"]
    assert np.ptp(expected) > 0.05, "the tiny HPS v1 gives near-constant scores: the comparison would be weak"
    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOLERANCE)


@needs_clip
def test_hps_v1_tiny_checkpoint_is_in_openai_layout():
    """molebench's tiny hpc.pt loads strictly into the `clip` package's model, as upstream loads the real file."""
    from molebench.scoring.hps_v1 import TINY_HPS_V1_CONFIG, TinyHPSv1
    from molebench_testing.reference import openai_clip_network

    config = TINY_HPS_V1_CONFIG
    network = openai_clip_network(config["embed_dim"], config["vision_cfg"], config["text_cfg"])
    network.load_state_dict(torch.load(TinyHPSv1().checkpoint_path(), weights_only=True)["state_dict"])


@needs_clip
def test_open_clip_vit_l14_quickgelu_has_the_clip_package_parameters():
    """`ViT-L-14-quickgelu` on open_clip = `clip.load("ViT-L/14")`'s network: same names and shapes, QuickGELU."""
    from open_clip.model import CLIP

    from molebench.scoring.openai_clip import OPENAI_VIT_L_14, openai_clip_config
    from molebench_testing.reference import import_openai_clip, openai_clip_network

    config = openai_clip_config(OPENAI_VIT_L_14)
    with torch.device("meta"):
        reference = openai_clip_network(config["embed_dim"], config["vision_cfg"], config["text_cfg"])
        ours = CLIP(**config)
    shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert shapes["visual.conv1.weight"] == (1024, 3, 14, 14) and shapes["text_projection"] == (768, 768)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == shapes
    quick = import_openai_clip().model.QuickGELU
    assert isinstance(reference.transformer.resblocks[0].mlp.gelu, quick)
    assert type(ours.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"


def test_hps_v1_checkpoint_is_found_as_file_folder_env_and_mirror(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    from molebench.assets.weights import file_sha256
    from molebench.scoring.hps_v1 import HPSv1, TinyHPSv1

    tiny = TinyHPSv1().checkpoint_path()
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "hpc.pth").write_bytes(tiny.read_bytes())  # the align_sd README's name
    assert HPSv1(weights=folder).checkpoint_path() == folder / "hpc.pth"
    assert HPSv1(weights=tiny).version == f"hps-v1/ckpt-{file_sha256(tiny)[:12]}"
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_HPS_V1", str(tiny))
    assert HPSv1().checkpoint_path() == tiny
    monkeypatch.delenv("MOLEBENCH_WEIGHTS_HPS_V1")
    snapshot = Path(os.environ["HF_HUB_CACHE"]) / "models--someone--hps-v1-mirror"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("0" * 40)
    (snapshot / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (snapshot / "snapshots" / ("0" * 40) / "hpc.pt").write_bytes(tiny.read_bytes())
    monkeypatch.setenv("MOLEBENCH_HUB_REPO_HPS_V1", "someone/hps-v1-mirror")
    assert HPSv1().checkpoint_path().read_bytes() == tiny.read_bytes()
    status = HPSv1().weights_status()
    assert status.present and status.fetch == "hf download someone/hps-v1-mirror hpc.pt"


def test_missing_hpc_pt_exits_2_naming_the_file_and_its_origin(tmp_path, capsys):
    from molebench.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["run", "--model", "tiny-sd15", "--scorers", "hps-v1", "--steps", "1", "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and "hpc.pt" in error and "tgxs002/align_sd" in error
    assert "MOLEBENCH_WEIGHTS_HPS_V1" in error and not (tmp_path / "run").exists()
    main(["weights", "--json"])
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["hps-v1"]
    assert not row["present"] and "MOLEBENCH_WEIGHTS_HPS_V1" in row["where"]
    assert "hpc.pt" in row["fetch"] and "tgxs002/align_sd" in row["fetch"]
    main(["scorers"])
    assert "hps-v1-tiny" in capsys.readouterr().out


def test_hpc_with_pickled_objects_is_refused_in_one_line_with_the_safe_extraction(tmp_path):
    """A checkpoint that pickles more than tensors (here an argparse Namespace, as training scripts save) is not
    unpickled; the error says how to extract its `state_dict` once."""
    import argparse

    from molebench.errors import InputError
    from molebench.scoring.hps import load_hps_checkpoint

    torch.save({"state_dict": {"w": torch.zeros(2)}, "args": argparse.Namespace(lr=1.0)}, tmp_path / "hpc.pt")
    with pytest.raises(InputError) as refused:
        load_hps_checkpoint(tmp_path / "hpc.pt")
    message = str(refused.value)
    assert "\n" not in message and "holds pickled objects besides tensors" in message
    assert "weights_only=False); torch.save({'state_dict': c['state_dict']}, 'hpc_weights.pt')" in message


def test_hpc_loading_is_lenient_about_module_prefix_and_bare_state_dicts(tmp_path):
    from molebench.scoring.hps import load_hps_checkpoint

    torch.save({"state_dict": {"module.visual.proj": torch.ones(2)}}, tmp_path / "wrapped.pt")
    torch.save({"visual.proj": torch.ones(2)}, tmp_path / "bare.pt")
    assert list(load_hps_checkpoint(tmp_path / "wrapped.pt")) == list(load_hps_checkpoint(tmp_path / "bare.pt")) == [
        "visual.proj"]


def test_fp16_normalisation_variant_is_cuda_only():
    from molebench.errors import InputError
    from molebench.registry import SCORERS

    with pytest.raises(InputError, match="float16 normalisation on a CUDA GPU; on cpu in float32 use hps-v1"):
        SCORERS.get("hps-v1-fp16norm")(device="cpu").fingerprint()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="hps-v1-fp16norm is a CUDA float16 option; no GPU here")
def test_fp16_normalisation_follows_evaluate_hps_on_cuda():
    from molebench.registry import SCORERS

    fp16, fp32 = SCORERS.get("hps-v1-fp16norm")(device="cuda"), SCORERS.get("hps-v1")(device="cuda")
    generator = torch.Generator("cuda").manual_seed(0)
    image = torch.randn(64, 768, device="cuda", generator=generator).half()
    text = torch.randn(64, 768, device="cuda", generator=generator).half()
    expected = ((image / image.norm(dim=-1, keepdim=True)) @ (text / text.norm(dim=-1, keepdim=True)).T).diagonal()
    ours = fp16.cosine(image, text)
    assert ours.dtype == torch.float32 and torch.equal(ours, expected.float())
    difference = (ours - fp32.cosine(image, text)).abs().max().item()
    print(f"max |fp16 - fp32 normalisation| on 64 random feature pairs: {difference:.2e}")
    assert difference < 1e-2
