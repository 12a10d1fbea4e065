"""LAION aesthetic predictor: molebench's `aesthetic` equals ImageReward's `Aesthetic` score (its `AestheticScore`
on OpenAI's `clip`) on the same files; OpenAI's TorchScript CLIP file is read as data, never run; the two files are
found in one folder, and their absence is one clear error (exit 2) naming each file and its origin."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from molebench.errors import InputError
from molebench_testing.reference import missing_openai_clip, missing_reference
from test_hps_v1 import sixteen

TOLERANCE = 1e-5
_missing = missing_openai_clip() or missing_reference()
needs_reference = pytest.mark.skipif(_missing is not None, reason=str(_missing))


@pytest.fixture(scope="module")
def tiny_files():
    from molebench.scoring.aesthetic import TinyAesthetic

    return TinyAesthetic().weight_files()


@needs_reference
@pytest.mark.parametrize("batch_size", [1, 16])
def test_aesthetic_parity_with_imagereward_aesthetic_score(tiny_files, tmp_path, batch_size):
    """Upstream opens image files itself: the same images go to it as lossless PNGs and to molebench as PIL images."""
    from molebench_testing.reference import aesthetic_reference
    from molebench.scoring.aesthetic import TinyAesthetic

    head, clip = tiny_files
    images, prompts = sixteen()
    paths = [tmp_path / f"{index}.png" for index in range(len(images))]
    for image, path in zip(images, paths):
        image.save(path)
    expected = np.asarray(aesthetic_reference(clip, head)(paths))
    ours = TinyAesthetic(batch_size=batch_size).score(images, prompts)["aesthetic"]
    assert np.ptp(expected) > 0.5, "the tiny predictor gives near-constant scores: the comparison would be weak"
    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOLERANCE)


@needs_reference
def test_aesthetic_head_has_upstream_names_and_shapes():
    """molebench's head is ImageReward's `MLP(768)` less its dropouts: the same state dict, so the file loads strictly."""
    import importlib

    from molebench_testing.reference import _import_imagereward, import_openai_clip
    from molebench.scoring.aesthetic_head import AestheticHead

    import_openai_clip()
    _import_imagereward()
    upstream = importlib.import_module("ImageReward.models.AestheticScore").MLP(768).state_dict()
    assert {k: v.shape for k, v in AestheticHead().state_dict().items()} == {k: v.shape for k, v in upstream.items()}


def test_torchscript_clip_is_read_as_data(tiny_files, tmp_path):
    """The code-free reader gives what `torch.jit.load(...).state_dict()` gives (run here on molebench's own file),
    and an archive naming anything but tensors and its own classes is refused, not run."""
    from molebench.scoring.openai_clip import load_openai_clip_state

    _, clip = tiny_files
    ours = load_openai_clip_state(clip)
    theirs = torch.jit.load(str(clip), map_location="cpu").state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert ours["visual.conv1.weight"].dtype == torch.float16  # stored as OpenAI stores ViT-L-14.pt

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    hostile = tmp_path / "ViT-L-14.pt"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("ViT-L-14/data.pkl", pickle.dumps(Payload()))
        archive.writestr("ViT-L-14/code/__torch__/model.py", "")
    with pytest.raises(InputError, match="builtins.print is not allowed"):
        load_openai_clip_state(hostile)


def test_aesthetic_folder_lookup_version_and_safetensors(tiny_files, tmp_path, monkeypatch):
    """Both files in one folder (`weights`, or MOLEBENCH_WEIGHTS_AESTHETIC); CLIP as OpenAI's archive or as a
    safetensors state dict gives the same scores; the version names both files' hashes."""
    from safetensors.torch import save_file

    from molebench.assets.weights import file_sha256
    from molebench.scoring.aesthetic import CLIP_FILE, HEAD_FILE, Aesthetic, TinyAesthetic
    from molebench.scoring.openai_clip import load_openai_clip_state

    head, clip = tiny_files
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / HEAD_FILE).write_bytes(head.read_bytes())
    save_file(load_openai_clip_state(clip), folder / "ViT-L-14.safetensors")
    images, prompts = sixteen()
    expected = TinyAesthetic().score(images[:3], prompts[:3])["aesthetic"]
    converted = TinyAesthetic(weights=folder)
    np.testing.assert_array_equal(converted.score(images[:3], prompts[:3])["aesthetic"], expected)
    assert converted.weight_files() == (folder / HEAD_FILE, folder / "ViT-L-14.safetensors")
    (folder / CLIP_FILE).write_bytes(clip.read_bytes())  # OpenAI's file name wins over a converted copy
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_AESTHETIC", str(folder))
    real = Aesthetic()
    assert real.weight_files() == (folder / HEAD_FILE, folder / CLIP_FILE)
    assert real.version == f"aesthetic/head-{file_sha256(head)[:12]}+clip-{file_sha256(clip)[:12]}"
    fingerprint = TinyAesthetic().fingerprint()
    assert fingerprint["higher_is_better"] == {"aesthetic": True} and fingerprint["display_scale"] == {"aesthetic": 1.0}
    assert fingerprint["version"] == "aesthetic-tiny/v1" and fingerprint["head_sha256"] == file_sha256(head)


def test_missing_aesthetic_files_exit_2_naming_each_file_and_origin(tmp_path, capsys, monkeypatch):
    from molebench.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))  # no ImageReward download folder
    with pytest.raises(SystemExit) as exited:
        main(["run", "--model", "tiny-sd15", "--scorers", "aesthetic", "--steps", "1", "--out", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and not (tmp_path / "run").exists()
    for needed in ("sac+logos+ava1-l14-linearMSE.pth", "christophschuhmann/improved-aesthetic-predictor",
                   "ViT-L-14.pt", "openai/CLIP", "MOLEBENCH_WEIGHTS_AESTHETIC"):
        assert needed in error, needed
    main(["weights", "--json"])
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["aesthetic"]
    assert not row["present"] and "MOLEBENCH_WEIGHTS_AESTHETIC" in row["where"]
    assert "sac+logos+ava1-l14-linearMSE.pth" in row["fetch"] and "ViT-L-14.pt" in row["fetch"]
    main(["scorers"])
    listed = capsys.readouterr().out
    assert "aesthetic-tiny" in listed and "aesthetic" in listed
