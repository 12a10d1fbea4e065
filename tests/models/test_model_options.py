"""Model options (`--option KEY=VALUE`): what a run records of them, pinned.

The options a model takes go into `settings.extra` and so into every image's content key: a refactor of how options
are parsed must leave the keys of existing runs as they are, or a resumed run would make every image again.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from molebench.cli import main

# (model, options) -> (settings.extra, content key of the first item) as recorded before the typed option parser
PINNED = {
    ("tiny-sd15", ()): ({}, "e90ef31160bc54944f8fa845a8ee2a32"),
    ("tiny-sd15", ("prompt_text=official", "vae_tiling=true", "attention=math")): (
        {"vae_tiling": True, "prompt_suffix": " best quality, 8K",
         "negative_prompt": " poor quality, unclear hand, bad face "}, "c36bdd06a770a3529a91263ff295ceb8"),
    # MoLE's defaults since issue 24: the official scripts' DDIM config and prompt weighting (a new key, on purpose)
    ("tiny-mole-sd15", ()): (
        {"prompt_suffix": " best quality, 8K", "negative_prompt": " poor quality, unclear hand, bad face ",
         "prompt_weighting": "official", "scheduler_config": "official",
         "mole": {"experts": ["face", "hand"], "local_gate": True, "global_gate": True, "expert_scales": None,
                  "expert_weights": "lora"}}, "6ebdf6bb6105c1bae748fb388b801f1b"),
    # MoLE runs made before the official sampler and prompt weighting became MoLE's defaults: with both turned off
    # they keep their keys
    ("tiny-mole-sd15", ("prompt_weighting=none", "scheduler_config=pipeline")): (
        {"prompt_suffix": " best quality, 8K", "negative_prompt": " poor quality, unclear hand, bad face ",
         "mole": {"experts": ["face", "hand"], "local_gate": True, "global_gate": True, "expert_scales": None,
                  "expert_weights": "lora"}}, "c81e91f76220293615e3d83b7f8fcf72"),
    ("tiny-mole-sd15", ("expert_scales=1,0.5", "prompt_text=none", "vae_fp32=true", "prompt_weighting=none",
                        "scheduler_config=pipeline")): (
        {"vae_fp32": True, "prompt_suffix": "", "negative_prompt": "", "mole": {"experts": ["face", "hand"], "local_gate": False, "global_gate": False,
                                    "expert_scales": [1.0, 0.5], "expert_weights": "lora"}}, "03b8b699621800d3ff2f664c2d45131b"),
}


@pytest.mark.parametrize("model, options", list(PINNED))
def test_content_keys_of_existing_runs_are_pinned(model, options, tmp_path):
    out = tmp_path / "run"
    flags = [part for option in options for part in ("--option", option)]
    main(["run", "--model", model, "--benchmark", "tiny-human", "--limit", "1", "--steps", "1", "--no-score",
          *flags, "--out", str(out)])
    extra = json.loads((out / "manifest.json").read_text())["settings"]["extra"]
    key = pd.read_parquet(out / "items.parquet")["key"].iloc[0]
    assert (extra, key) == PINNED[model, options]


@pytest.mark.parametrize("model, options, extra", [
    ("tiny-vq-diffusion", {"truncation_rate": 1}, {"truncation_rate": 1.0}),  # `--option x=1` is 1.0 for a float
    ("tiny-sdxl-refiner", {"refiner_weights": "elsewhere"}, {"high_noise_frac": 0.8, "vae_fp32": True}),
    ("sdxl", {"vae_fp32": False}, {}),
    ("tiny-pixart-alpha", {}, {"clean_caption": True, "resolution_binning": False, "max_sequence_length": 120}),
    ("pixart-alpha", {"max_sequence_length": 60, "clean_caption": False},
     {"clean_caption": False, "resolution_binning": True, "max_sequence_length": 60}),
])
def test_recorded_model_options_keep_their_values_and_types(model, options, extra):
    from molebench.registry import MODELS

    recorded = MODELS.get(model)(**options).settings(device="cpu").extra
    assert recorded == extra
    assert [type(v) for v in recorded.values()] == [type(extra[k]) for k in recorded]


def test_one_parser_checks_every_option_group():
    from dataclasses import dataclass

    from molebench.errors import InputError
    from molebench.models.options import flag, number, option, parse_options, recorded, text

    @dataclass(frozen=True)
    class Example:
        rate: float = option(0.5, number(0, 1, include_high=True))
        sharp: bool = option(False, flag())
        label: str | None = option(None, text(), recorded=False)

    parsed = parse_options(Example, {"rate": 1 / 4, "sharp": "yes", "other": 1}, owner="m", known=("other",))
    assert parsed == Example(0.25, True) and recorded(parsed) == {"rate": 0.25, "sharp": True}
    assert type(parse_options(Example, {"rate": 1}, defaults={"rate": 0.5}).rate) is float  # x=1 is x=1.0
    with pytest.raises(InputError, match=r"--option rat: not an option of m \(did you mean rate\?\); known: rate, "
                                         r"sharp, label, other$"):
        parse_options(Example, {"rat": 0.1}, owner="m", known=("other",))
    with pytest.raises(InputError, match=r"^unknown MoLE option\(s\) x; known: rate"):
        parse_options(Example, {"x": 1}, label="MoLE option")
    for key, value, expected in (("rate", 2, r"a number in \(0, 1\], got 2"), ("rate", True, "got True"),
                                 ("sharp", "maybe", "true or false, got 'maybe'"), ("label", 3, "quote it")):
        with pytest.raises(InputError, match=rf"--option {key}: expected .*{expected}"):
            parse_options(Example, {key: value})


def test_unknown_model_option_suggests_the_near_name(capsys):
    from conftest import exit_code_and_error

    code, err = exit_code_and_error(capsys, "run", "--model", "tiny-sdxl", "--option", "vae_tilling=true")
    assert code == 2 and "--option vae_tilling: not an option of tiny-sdxl (did you mean vae_tiling" in err
