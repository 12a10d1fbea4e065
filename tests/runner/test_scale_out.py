"""Scale-out: two CPU processes under `accelerate launch` (gloo) give exactly the one-process run, and resume.

Every process count runs with `--threads 1`: on CPU, oneDNN picks convolution kernels by thread count (measured here:
1 vs 2 threads flips single pixels by one level), so bit-identity across process counts needs the same thread count
per process. Each launch costs a few seconds of imports per process, so runs are small (6 images).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from molebench.cli import main
from molebench.runner.distributed import Workers
from molebench.store import RunStore

RUN = ["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit", "3", "--seeds", "0,1", "--steps", "2",
       "--batch-size", "1", "--threads", "1"]
SCORE = ["--scorers", "hps-tiny", "--scorer-batch-size", "1"]  # chunks of 4: process 0 scores 4, process 1 scores 2


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The one-process run every multi-process run must reproduce."""
    out = tmp_path_factory.mktemp("scaleout") / "single"
    threads = torch.get_num_threads()
    try:
        main([*RUN, *SCORE, "--out", str(out)])
    finally:
        torch.set_num_threads(threads)  # --threads 1 applies to this (pytest) process
    return out


def assert_same_run(run: Path, reference: Path, scores: bool = True) -> None:
    """Same images byte for byte, each exactly once, same scores.parquet, no leftovers."""
    expected = sorted(p.name for p in (reference / "images").iterdir())
    files = sorted(p.name for p in (run / "images").iterdir())
    assert files == expected and len(files) == 6, "every image exactly once, no temporaries"
    for name in files:
        assert (run / "images" / name).read_bytes() == (reference / "images" / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(run / "items.parquet"), pd.read_parquet(reference / "items.parquet"))
    if scores:
        got, want = pd.read_parquet(run / "scores.parquet"), pd.read_parquet(reference / "scores.parquet")
        pd.testing.assert_frame_equal(got, want)  # exact: same floats, same order
        assert got["key"].is_unique and len(got) == 6
        pd.testing.assert_frame_equal(pd.read_csv(run / "summary.csv"), pd.read_csv(reference / "summary.csv"))
    assert not list(run.rglob(".tmp-*"))
    assert not list(run.glob("shards/*.parquet")), "every shard merged"


def test_kill_one_of_two_processes_then_resume_equals_one_process(reference, tmp_path, monkeypatch):
    """Two launches (each costs seconds of imports per process): generation only, one process killed after its first
    image; then the same run resumed in two processes makes only the missing images and scores all of them."""
    out = tmp_path / "killed"
    monkeypatch.setenv("MOLEBENCH_TEST_KILL_AFTER", "generate:1@1")  # process 1 dies after its first image
    with pytest.raises(SystemExit) as exit_info:
        main([*RUN, "--no-score", "--out", str(out), "--num-processes", "2"])
    assert exit_info.value.code != 0, "the launch reports the dead process"
    monkeypatch.delenv("MOLEBENCH_TEST_KILL_AFTER")
    keys = list(RunStore(out).read_items()["key"])
    present = {p.stem for p in (out / "images").glob("*.png")}
    assert len(present & set(keys[1::2])) == 1, "batch size 1: process 1 owns every second item and made one"
    before = sorted(present)
    assert 1 <= len(before) < 6, f"kill was not mid-run ({len(before)} images)"
    # the launcher stops the surviving main process with SIGTERM: it closes the folder as interrupted
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert not (out / "scores.parquet").exists()

    main([*RUN, *SCORE, "--out", str(out), "--num-processes", "2"])
    assert_same_run(out, reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["processes"] == 2
    killed, resumed = manifest["history"]
    assert killed["status"] == "interrupted" and resumed["status"] == "complete"
    assert resumed["counts"]["generated"] == 6 - len(before), "only the missing images were made"
    assert resumed["counts"]["scored"] == 6 and resumed["processes"] == 2 and "hps-tiny" in manifest["scorers"]


def test_score_with_num_processes_relaunches_the_same_command(reference, tmp_path, monkeypatch):
    """`score --num-processes 2` hands accelerate the same `score` command without --num-processes (the launched
    processes run the score stage tested above), under the folder's lock."""
    import molebench.runner.distributed as distributed
    from molebench.store.lock import HELD_ENV, is_locked

    launched: list[tuple[list[str], int, bool]] = []

    def fake_launch(command_line: list[str], num_processes: int) -> None:
        held = str(reference.resolve()) in os.environ.get(HELD_ENV, "").split(os.pathsep)
        locked = is_locked(reference) and held  # taken here, and named for the launched processes
        launched.append((command_line, num_processes, locked))

    monkeypatch.setattr(distributed, "launch", fake_launch)
    main(["score", str(reference), "--scorers", "hps-tiny", "--batch-size", "1", "--threads", "1",
          "--num-processes", "2"])
    (line, count, locked), = launched
    assert count == 2 and "--num-processes" not in line
    assert line[:2] == ["score", str(reference)] and line[line.index("--scorers") + 1] == "hps-tiny"
    assert line[line.index("--threads") + 1] == "1" and locked


def test_score_stage_in_one_process_on_a_copied_run(reference, tmp_path, capsys):
    """Generation on one machine, scoring on another: copy the folder without scores, score it there."""
    out = tmp_path / "copied"
    shutil.copytree(reference, out, ignore=shutil.ignore_patterns("scores.parquet", "summary.csv"))
    threads = torch.get_num_threads()
    try:
        main(["score", str(out), "--scorers", "hps-tiny", "--batch-size", "1", "--threads", "1"])
        capsys.readouterr()
        main(["score", str(out), "--scorers", "hps-tiny", "--batch-size", "1", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert "scored 0 images with hps-tiny" in capsys.readouterr().err
    assert_same_run(out, reference)


def test_score_stage_refuses_bad_folders(reference, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(tmp_path)])
    assert exit_info.value.code == 1 and "not a molebench run folder" in capsys.readouterr().err

    partial = tmp_path / "partial"
    shutil.copytree(reference, partial)
    next((partial / "images").iterdir()).unlink()
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(partial), "--scorers", "hps-tiny"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "1 of 6 images are not generated yet" in err


@pytest.mark.parametrize("count", [1, 2, 3, 5])
@pytest.mark.parametrize("block", [1, 4])
def test_shards_cover_every_item_once_in_whole_blocks(count, block):
    frame = pd.DataFrame({"key": [f"k{i}" for i in range(11)]})
    parts = [Workers(index=i, count=count).shard(frame, block) for i in range(count)]
    assert sorted(k for p in parts for k in p["key"]) == sorted(frame["key"])
    for index, part in enumerate(parts):
        assert all((i // block) % count == index for i in part.index)


class _CountingModel:
    """Stands in for a model: counts loads, makes flat images."""

    def __init__(self) -> None:
        self.loads = 0

    def load(self, device, settings) -> None:
        self.loads += 1

    def generate(self, prompts, generators, settings):
        from PIL import Image

        return [Image.new("RGB", (8, 8), (10, 20, 30)) for _ in prompts]


@pytest.mark.parametrize("present", [0, 2])
def test_generation_signals_loaded_once_with_or_without_work(tmp_path, present):
    """Processes pass a barrier after loading; one with nothing left to make must still reach it, exactly once."""
    from molebench.runner.generate_step import generate_missing

    store = RunStore(tmp_path)
    store.prepare()
    items = pd.DataFrame({"key": ["a", "b"], "prompt": ["p", "q"], "seed": [0, 1], "gen_seed": [5, 6]})
    for key in items["key"][:present]:
        store.write_image(key, _CountingModel().generate([""], [None], None)[0])
    model, calls = _CountingModel(), []
    clock = generate_missing(store, model, items, None, torch.device("cpu"), 1, loaded=lambda: calls.append(1))
    assert calls == [1]
    assert (model.loads, clock.images) == ((1, 2) if present == 0 else (0, 0))
    assert all(store.has_image(k) for k in items["key"])
