"""`make gpu-check` in its reduced CPU mode: the JSON holds every field the GPU run reports, the README block is
replaced in place. Nothing here is timed: the figures themselves belong to the GPU run (and `make bench`)."""

from __future__ import annotations

import json
import math

import pytest

from molebench.perf.gpu_check.__main__ import main
from molebench.perf.gpu_check.report import BEGIN, END, MODEL_FIELDS, SCORER_FIELDS, readme_rows, replace_block
from molebench.perf.gpu_check.sources import (FULL_SCORERS, REAL_MODELS, TINY_MODELS, TINY_SCORERS, full_sources,
                                              reduced_sources)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check") / "check.json"
    readme = out.parent / "README.md"
    readme.write_text(f"before\n{BEGIN}\nold rows\n{END}\nafter\n")
    # the paper scorers (their rates give the protocol's scoring hours) and one set scorer
    assert main(["--out", str(out), "--models", "sd15", "--scorers", "hps-v1,imagereward,fid",
                 "--readme", str(readme)]) == 0
    assert readme.read_text() == f"before\n{BEGIN}\nold rows\n{END}\nafter\n"  # reduced figures never go in
    return json.loads(out.read_text()), out


def _number(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def test_reduced_check_reports_every_model_field(record):
    data, _ = record
    assert data["mode"] == "reduced" and data["device"]["type"] == "cpu" and data["device"]["name"]
    assert data["protocol"] == {"benchmarks": 2, "prompts": 3000, "repeats": 3, "images": 18000}
    (model,) = data["models"]
    assert model["status"] == "ok" and model["model"] == "sd15" and model["run_as"] == "tiny-sd15"
    for field in (*MODEL_FIELDS, "raw_images_per_s", "harness_images_per_s", "fixed_s_per_call",
                  "s_per_image_at_default_steps"):
        assert _number(model[field]), field
    assert model["dtype"] == "float32" and model["gpu_dtype"] and model["size"] == [64, 64]
    assert model["memory_measure"] and model["batches_tried"][0]["batch"] == 1
    assert model["gpu_hours_total"] == pytest.approx(model["gpu_hours_generation"] + model["gpu_hours_scoring"])


def test_reduced_check_reports_every_scorer_field(record):
    data, out = record
    rows = {row["scorer"]: row for row in data["scorers"]}
    assert set(rows) == {"hps-v1", "imagereward", "fid"}
    for row in rows.values():
        assert row["status"] == "ok", row
        for field in ("images_per_s", "low_vs_fp32_max_abs", "low_vs_fp32_mean_abs"):
            assert _number(row[field]), (row["scorer"], field)
        assert row["low_vs_fp32_mean_abs"] <= row["low_vs_fp32_max_abs"]
        assert set(SCORER_FIELDS) <= set(row)
    assert rows["imagereward"]["reference"] == "ImageReward RM.score"  # the package's own loop ran
    assert _number(rows["imagereward"]["reference_images_per_s"])
    assert _number(rows["imagereward"]["batched_vs_reference"])
    assert rows["fid"]["compared"] == "features" and rows["fid"]["reference"] is None
    assert "| sd15 (tiny-sd15) | float32 | 64×64 |" in out.with_suffix(".md").read_text()


def test_readme_block_is_replaced_between_its_markers():
    record = {"device": {"name": "NVIDIA X"}, "mode": "full", "created": "now", "seconds": 1.0,
              "protocol": {"images": 18000},
              "models": [{"model": "sdxl", "run_as": "sdxl", "status": "skipped: missing weights"}],
              "scorers": [{"scorer": "fid", "run_as": "fid", "status": "failed: boom"}]}
    rows = readme_rows(record)
    assert "NVIDIA X" in rows and "| sdxl (sdxl) | skipped: missing weights |" in rows
    text = replace_block(f"a\n{BEGIN}\nold\n{END}\nb", rows)
    assert text.startswith(f"a\n{BEGIN}\n") and text.endswith(f"\n{END}\nb") and "old" not in text
    with pytest.raises(ValueError, match="gpu-check"):
        replace_block("no markers", rows)


def test_sources_cover_every_real_model_and_take_weights_from_the_given_function(tmp_path):
    asked = []
    sources = full_sources(lambda name: asked.append(name) or tmp_path / name)
    assert [s.name for s in sources.models] == list(REAL_MODELS)
    assert [s.name for s in sources.scorers] == list(FULL_SCORERS)
    assert sources.models[2].weights() == tmp_path / "sdxl" and asked == ["sdxl"]
    reduced = reduced_sources()
    assert {s.name for s in reduced.models} == set(TINY_MODELS.values())
    assert {s.name for s in reduced.scorers} == set(TINY_SCORERS.values())
    assert [s.name for s in reduced.only(["sdxl"], []).models] == ["tiny-sdxl"]
    with pytest.raises(ValueError, match="sdxl-turbo"):
        reduced.only(["sdxl-turbo"], None)
    assert main(["--models", "sdxl-turbo"]) == 2


def test_batch_search_stops_at_out_of_memory_and_keeps_the_best_that_fit(monkeypatch):
    import time

    import torch

    from molebench.perf.gpu_check import models

    calls = []

    def fake_call(model, prompts, seeds, settings):
        calls.append(len(prompts))
        if len(prompts) == 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        time.sleep(0.002)  # the same wall time per call whatever the batch: larger batches pay

    monkeypatch.setattr(models, "raw_call", fake_call)
    search = models.search_batch(object(), None, torch.device("cpu"), max_batch=64, budget_s=60)
    assert calls == [1, 2, 4]
    assert [t["batch"] for t in search["tried"]] == [1, 2, 4] and search["tried"][-1] == {"batch": 4, "oom": True}
    assert search["best"]["batch"] == 2
