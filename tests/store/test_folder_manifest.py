"""A run folder's manifest describes the folder: reruns add to its history, refusals name what differs, files
respect the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from molebench.atomic import atomic_write_text
from molebench.cli import main
from molebench.store.history import identity_differences
from molebench.store import RunStore


def _run(out: Path, *extra: str) -> dict:
    main(["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--steps", "2", "--no-score", "--out", str(out),
          *extra])
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture
def umask():
    """Set a umask for the test and restore the session's afterwards."""
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def _modes(root: Path) -> set[int]:
    return {stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


def test_reruns_with_other_seeds_and_limit_are_all_in_the_manifest(tmp_path, umask):
    umask(0o002)
    out = tmp_path / "run"
    first = _run(out, "--limit", "2", "--seeds", "0")
    assert first["seeds"] == [0] and first["config"]["limit"] == 2 and len(first["history"]) == 1
    second = _run(out, "--limit", "3", "--seeds", "0,1", "--threads", "1")
    third = _run(out, "--limit", "1", "--seeds", "1")  # adds nothing: the folder keeps describing all of it

    items = RunStore(out).read_items()
    assert len(items) == 6 and sorted(set(items["seed"])) == [0, 1]
    for manifest in (second, third):
        assert manifest["seeds"] == [0, 1]
        assert manifest["config"]["seeds"] == [0, 1] and manifest["config"]["limit"] == 3
        assert manifest["config"]["model"] == "tiny-sd15" and manifest["config"]["steps"] == 2
        assert "batch_size" not in manifest["config"] and "threads" not in manifest["config"]
        assert manifest["counts"]["items"] == 6 and manifest["counts"]["prompts"] == 3
        assert manifest["counts"]["generated"] == 6 and manifest["timings"]["generate"]["images"] == 6
        assert manifest["created"] == first["created"]
    history = third["history"]
    assert [h["config"]["seeds"] for h in history] == [[0], [0, 1], [1]]
    assert [h["config"]["limit"] for h in history] == [2, 3, 1]
    assert [h["config"]["threads"] for h in history] == [None, 1, None]
    assert [h["counts"]["generated"] for h in history] == [2, 4, 0]
    assert [h["timings"]["generate"]["images"] for h in history] == [2, 4, 0]
    for entry in history:
        assert entry["stage"] == "run" and entry["status"] == "complete"
        assert entry["command"] and entry["started"] <= entry["finished"]
        assert entry["device"]["torch_threads"] == 1 and entry["processes"] == 1
    assert _modes(out) == {0o664}, "every file as the umask says"


def test_score_stage_joins_the_history(tmp_path):
    out = tmp_path / "run"
    _run(out, "--limit", "1")
    main(["score", str(out), "--scorers", "hps-tiny"])
    manifest = json.loads((out / "manifest.json").read_text())
    run, score = manifest["history"]
    assert (run["stage"], score["stage"]) == ("run", "score")
    assert score["counts"] == {"generated": 0, "scored": 1} and score["config"]["scorers"] == ["hps-tiny"]
    assert manifest["config"]["scorers"] == ["hps-tiny"] and manifest["counts"]["scored"] == 1


def test_refusal_names_each_setting_that_differs_with_both_values(tmp_path, capsys):
    _run(tmp_path, "--limit", "1")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _run(tmp_path, "--limit", "1", "--steps", "3", "--guidance", "2")
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "settings.steps: 2 vs 3" in err and "settings.guidance: 7.5 vs 2.0" in err
    assert "prompt_set_sha256" not in err, "only what differs is named"


def test_identity_differences_go_into_nested_dicts():
    old = {"model": {"weights_sha256": {"unet.safetensors": "a" * 64, "vae.safetensors": "b" * 64}},
           "settings": {"steps": 2, "extra": {"vae_fp32": True}}, "device_type": "cpu"}
    new = {"model": {"weights_sha256": {"unet.safetensors": "c" * 64}},
           "settings": {"steps": 2, "extra": {"vae_fp32": False}}, "device_type": "cuda"}
    assert identity_differences(old, new) == [
        "device_type: cpu vs cuda",
        f"model.weights_sha256.unet.safetensors: {'a' * 12} vs {'c' * 12}",
        f"model.weights_sha256.vae.safetensors: {'b' * 12} vs (absent)",
        "settings.extra.vae_fp32: True vs False",
    ]


@pytest.mark.parametrize("mask", [0o002, 0o027])
def test_written_files_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    store = RunStore(tmp_path)
    store.prepare()
    atomic_write_text(tmp_path / "note.txt", "x")
    store.write_image("k", Image.new("RGB", (4, 4)))
    store.write_summary(pd.DataFrame({"n": [1]}))
    store.write_manifest({"status": "running"})
    assert _modes(tmp_path) == {0o666 & ~mask}


def test_a_manifest_from_before_histories_becomes_the_first_entry():
    from molebench.store.history import folder_fields, start_history
    from molebench.store.manifest import Manifest

    old = {"status": "complete", "identity_sha256": "a" * 64, "prompt_set_sha256": "b" * 64,
           "model": {"name": "tiny-sd15"}, "benchmark": {"name": "tiny"}, "created": "t0", "updated": "t1", "command": ["molebench", "run"],
           "config": {"model": "tiny-sd15", "limit": 2, "seeds": [0], "threads": 2, "scorers": ["hps-tiny"]},
           "device": {"type": "cpu", "torch_threads": 2}, "processes": 1,
           "counts": {"items": 2, "generated_this_run": 2, "scored_this_run": 2},
           "timings": {"generate": {"images": 2, "seconds": 4.0, "images_per_s": 0.5}}}
    history = start_history(Manifest.parse(old, Path("manifest.json")), "run",
                            {**old["config"], "limit": None, "seeds": [1], "threads": 1}, ["hps-tiny"],
                            {"type": "cpu", "torch_threads": 1}, 1, "t2", None, {"generated": 2, "scored": 2})
    items = pd.DataFrame({"seed": [0, 0, 1], "prompt_index": [0, 1, 0]})
    fields = folder_fields(history, items, {"generated": 2, "scored": 2})
    assert [h["started"] for h in fields["history"]] == ["t0", "t2"]
    assert fields["history"][0]["counts"] == {"generated": 2, "scored": 2}
    assert fields["seeds"] == [0, 1] and fields["config"]["limit"] is None and "threads" not in fields["config"]
    assert fields["device"] == {"type": "cpu", "torch_threads": [2, 1]}, "a setting that changed lists its values"
    assert fields["counts"]["generated"] == 2 and fields["timings"]["generate"]["images"] == 2
