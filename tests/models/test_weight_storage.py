"""`--option storage_dtype`: weights held in half precision, every layer computed in the run's float32.

The replicas' files are float16 (bfloat16 for T5), so a float32 run of them computes on float16-valued weights;
holding those weights in float16 and casting layer by layer must give the same images (measured: identical), while a
float16-compute run does not. Real float32 weights are rounded by the option, which is why it is in the content key.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from molebench.cli import main
from molebench.registry import MODELS
from molebench.runner.environment import resolve_device

# storage mode vs float32 on the same half-precision files: equal up to summation order (measured 0.0 here)
SAME_FILES_TOLERANCE = 1e-6


def _half_copy(name: str, dtype: torch.dtype, folder) -> str:
    """The tiny model's pipeline saved with its weights in `dtype` (like a replica's files)."""
    import diffusers

    source = MODELS.get(name)().weights_path()
    cls = getattr(diffusers, json.loads((source / "model_index.json").read_text())["_class_name"])
    cls.from_pretrained(str(source), torch_dtype=dtype).save_pretrained(str(folder))
    return str(folder)


def _generate(name: str, weights: str, dtype: str = "float32", **options):
    model = MODELS.get(name)(weights=weights, **options)
    settings = model.settings(steps=2, dtype=dtype, device="cpu")
    model.load(resolve_device("cpu"), settings)
    out = model.pipe(prompt=["a woman waving her hand"], generator=[torch.Generator().manual_seed(0)],
                     output_type="np", **model.call_kwargs(settings))
    return np.asarray(out.images, dtype=np.float64), model


@pytest.mark.parametrize("name, storage", [("tiny-sdxl", "float16"), ("tiny-pixart-alpha", "bfloat16")])
def test_half_stored_weights_compute_like_float32(name, storage, tmp_path):
    weights = _half_copy(name, getattr(torch, storage), tmp_path / "half")
    reference, _ = _generate(name, weights)
    stored, model = _generate(name, weights, storage_dtype=storage)
    assert np.abs(stored - reference).max() <= SAME_FILES_TOLERANCE
    denoiser = model.pipe.unet if name == "tiny-sdxl" else model.pipe.transformer
    assert denoiser.dtype == torch.float32, "components report the compute dtype (the pipeline's tensors follow it)"
    assert {p.dtype for p in denoiser.parameters()} == {getattr(torch, storage)}, "weights stay half precision"
    if name == "tiny-sdxl":  # the comparison can tell: half-precision compute lands elsewhere
        half, _ = _generate(name, weights, dtype=storage)
        assert np.abs(half - reference).max() > 10 * SAME_FILES_TOLERANCE


def test_mole_layers_compute_in_float32_over_half_experts():
    reference, _ = _generate("tiny-mole-sd15", None)
    stored, model = _generate("tiny-mole-sd15", None, storage_dtype="float16")
    layers = [m for m in model.pipe.unet.modules() if type(m).__name__ == "MoLELayer"]
    assert layers and {m.down.dtype for m in layers} == {torch.float16}
    # the tiny weights are float32: rounding them to float16 moves pixels by about 1e-3 of the range
    assert np.abs(stored - reference).max() < 0.02


def test_storage_dtype_is_in_the_content_key_only_when_used(tmp_path):
    main(["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit", "1", "--steps", "1", "--no-score",
          "--option", "storage_dtype=float16", "--out", str(tmp_path / "run")])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["settings"]["extra"] == {"storage_dtype": "float16"}
    assert manifest["model"]["memory_options"]["storage_dtype"] == "float16"
    key = pd.read_parquet(tmp_path / "run" / "items.parquet")["key"].iloc[0]
    assert key != "e90ef31160bc54944f8fa845a8ee2a32"  # tiny-sd15's pinned key without the option


@pytest.mark.parametrize("options, message", [
    (["storage_dtype=float8"], "expected one of same, float16, bfloat16"),
    (["storage_dtype=float16", "cpu_offload=model"], "not with cpu_offload"),
])
def test_bad_storage_options_exit_2_before_writing(options, message, tmp_path, capsys):
    flags = [part for option in options for part in ("--option", option)]
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--model", "tiny-sd15", *flags, "--out", str(tmp_path / "never")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_check_fullsize_runs_the_big_models_with_options_they_take():
    """`make check-fullsize` generates every real model; the ones too big for float32 here keep half weights."""
    from molebench.replicas.specs import SPECS

    half = {name: spec.run for name, spec in SPECS.items()
            if spec.kind == "model" and any(o.startswith("storage_dtype=") for o in spec.run.get("options", ()))}
    assert set(half) == {"sdxl", "sdxl-refiner", "mole-sdxl", "pixart-alpha", "pixart-alpha-1024",
                         "versatile-diffusion"}
    for name, run in half.items():
        model = MODELS.get(name)(**dict(option.split("=", 1) for option in run["options"]))
        assert run["dtype"] == "float32" and model.memory.storage_dtype != "same"
