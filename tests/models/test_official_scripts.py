"""What MoLE's official generation scripts do besides the model: their DDIM config and their prompt weighting.

The weighting examples are worked by hand from the format's definition (the scripts' docstring: `(x)` ×1.1, `[x]`
÷1.1, `(x:w)` ×w, nesting multiplies, `\\(` escapes, unclosed brackets weigh the rest, the output rescaled to keep
its mean).
"""

from __future__ import annotations

import pytest
import torch

from molebench.errors import InputError
from molebench.models.prompt_weighting import apply_weights, padded, parse_weights, pipeline_embeddings
from molebench.registry import MODELS

UP, DOWN = 1.1, 1 / 1.1


@pytest.mark.parametrize("prompt, expected", [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", UP), (" word", 1.0)]),
    ("a [small] dog", [("a ", 1.0), ("small", DOWN), (" dog", 1.0)]),
    ("(a (b:1.3) c)", [("a ", UP), ("b", 1.3 * UP), (" c", UP)]),  # nested: 1.3 inside, then 1.1
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.3 * UP * UP), (" ", UP), ("on", 1.0), (" a ", UP), ("hill", 0.5 * UP),
      (", sun, ", UP), ("sky", UP ** 4), (".", UP)]),
    ("(unbalanced", [("unbalanced", UP)]),  # never closed: weighs the rest
    ("[(open both", [("open both", UP * DOWN)]),
    ("stray) close] x:1.3)", [("stray) close] x:1.3)", 1.0)]),  # nothing open: plain text
    (r"\(literal\] and \\ back", [(r"(literal] and \ back", 1.0)]),
    (r"a\b", [("ab", 1.0)]),  # a backslash before another character vanishes
    ("(unnecessary)(parens)", [("unnecessaryparens", UP)]),  # equal weights join
    ("(a:-0.5) (b:+2)", [("a", -0.5), (" ", 1.0), ("b", 2.0)]),
    ("(x:.)", [("x:.", UP)]),  # not a number: kept as text (the official script stops with an error)
    ("a BREAK b", [("a ", 1.0), ("BREAK", 1.0), (" b", 1.0)]),
    ("", [("", 1.0)]),
])
def test_emphasis_marks_parse_as_the_official_scripts_define_them(prompt, expected):
    parsed = parse_weights(prompt)
    assert [t for t, _ in parsed] == [t for t, _ in expected]
    assert [w for _, w in parsed] == pytest.approx([w for _, w in expected], rel=1e-12)


def test_weighting_multiplies_tokens_and_restores_the_mean():
    embeddings = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # mean 2.5
    weights = torch.tensor([[1.0, 2.0]])  # -> [[1, 2], [6, 8]], mean 4.25, rescaled by 2.5 / 4.25 = 10/17
    expected = torch.tensor([[[10.0, 20.0], [60.0, 80.0]]]) / 17
    assert torch.allclose(apply_weights(embeddings, weights), expected)
    assert torch.equal(apply_weights(embeddings, torch.ones(1, 2)), embeddings)  # all ones: unchanged, bit for bit


@pytest.fixture(scope="module")
def tiny_pipe():
    model = MODELS.get("tiny-sd15")()
    model.load(torch.device("cpu"), model.settings(device="cpu"))
    return model.pipe


def test_tokens_carry_their_piece_weights_and_are_cut_at_75(tiny_pipe):
    tokenizer = tiny_pipe.tokenizer
    ids, weights = padded(tokenizer, "a (red:1.5) [dress]")
    words = [tokenizer(w).input_ids[1:-1] for w in ("a", "red", "dress")]
    assert ids[:5] == [tokenizer.bos_token_id, *words[0], *words[1], *words[2], tokenizer.eos_token_id]
    assert len(ids) == len(weights) == tokenizer.model_max_length
    assert weights[:5] == pytest.approx([1.0, 1.0, 1.5, DOWN, 1.0]) and set(weights[5:]) == {1.0}
    long_ids, long_weights = padded(tokenizer, "(hand) " * 100)
    assert len(long_ids) == 77
    assert long_ids[-1] == tokenizer.eos_token_id and long_weights[1:76] == [pytest.approx(UP)] * 75
    assert long_ids == tokenizer("hand " * 100, padding="max_length", max_length=77, truncation=True).input_ids
    cut, _ = padded(tokenizer, "a face BREAK a hand")  # BREAK pads the window: the rest falls past 75 tokens
    assert cut == padded(tokenizer, "a face")[0]


def test_weighted_embeddings_match_the_pipeline_without_marks_and_the_formula_with(tiny_pipe):
    prompts = ["a woman waving her hand best quality, 8K", "a (smiling:1.4) man, [blurry]"]
    ours = pipeline_embeddings(tiny_pipe, prompts, " poor quality, unclear hand, bad face ")
    plain, negative = tiny_pipe.encode_prompt(prompts, "cpu", 1, True,
                                              [" poor quality, unclear hand, bad face "] * 2)
    assert torch.equal(ours["prompt_embeds"][0], plain[0])  # no marks: diffusers' embedding exactly
    assert torch.equal(ours["negative_prompt_embeds"], negative)
    ids, weights = padded(tiny_pipe.tokenizer, prompts[1])
    raw = tiny_pipe.text_encoder(torch.tensor([ids]))[0]
    assert torch.allclose(ours["prompt_embeds"][1:], apply_weights(raw, torch.tensor([weights])))
    assert not torch.allclose(ours["prompt_embeds"][1:], raw)


def test_prompt_weighting_is_an_option_recorded_when_on():
    assert MODELS.get("tiny-sd15")().settings().extra == {}
    assert MODELS.get("tiny-sd15")(prompt_weighting="official").settings().extra == {"prompt_weighting": "official"}
    extra = MODELS.get("tiny-mole-sd15")().settings().extra
    assert (extra["prompt_weighting"], extra["scheduler_config"]) == ("official", "official")
    assert "prompt_weighting" not in MODELS.get("tiny-mole-sd15")(prompt_weighting="none").settings().extra
    with pytest.raises(InputError, match="prompt_weighting: molebench weights prompts for StableDiffusionPipeline, "
                                         "StableDiffusionXLPipeline alone, not tiny-sdxl-refiner"):
        MODELS.get("tiny-sdxl-refiner")(prompt_weighting="official")
    with pytest.raises(InputError, match="not tiny-pixart-alpha"):
        MODELS.get("tiny-pixart-alpha")(prompt_weighting="official")
    assert MODELS.get("tiny-sdxl")(prompt_weighting="official").settings().extra["prompt_weighting"] == "official"
    with pytest.raises(InputError, match="prompt_weighting: expected one of none, official"):
        MODELS.get("tiny-sd15")(prompt_weighting="a1111")


def test_official_sampler_is_the_scripts_ddim_config():
    model = MODELS.get("tiny-mole-sd15")()
    model.load(torch.device("cpu"), model.settings(device="cpu"))
    config = model.pipe.scheduler.config
    assert type(model.pipe.scheduler).__name__ == "DDIMScheduler"
    assert (config.steps_offset, config.clip_sample, config.set_alpha_to_one) == (1, False, True)
    assert (config.beta_start, config.beta_end, config.beta_schedule, config.num_train_timesteps) == (
        0.00085, 0.012, "scaled_linear", 1000)
    baseline = MODELS.get("tiny-sd15")(scheduler_config="official")
    assert baseline.settings().extra == {"scheduler_config": "official"}
    v_model = MODELS.get("tiny-sd21")(scheduler_config="official")
    v_model.load(torch.device("cpu"), v_model.settings(device="cpu"))
    assert v_model.pipe.scheduler.config.prediction_type == "v_prediction"  # the pipeline's prediction type kept
    assert v_model.pipe.scheduler.config.set_alpha_to_one is True
    with pytest.raises(InputError, match="scheduler_config=official is the official scripts' DDIM sampler"):
        MODELS.get("tiny-mole-sd15")(scheduler_config="official").settings(scheduler="EulerDiscreteScheduler")
    mole = MODELS.get("tiny-mole-sd15")()
    euler = mole.settings(scheduler="EulerDiscreteScheduler")  # MoLE's default official config is for DDIM only
    assert euler.scheduler == "EulerDiscreteScheduler" and "scheduler_config" not in euler.extra
    assert mole.settings().extra["scheduler_config"] == "official"


def test_sdxl_weighting_weights_each_encoder_and_keeps_the_pipelines_pooled_embedding():
    """SDXL (as the official SDXL script): both encoders' penultimate layers weighted and rescaled on their own,
    joined along the channels; text_encoder_2's pooled embedding unweighted; no marks: the pipeline's own."""
    model = MODELS.get("tiny-sdxl")(prompt_weighting="official")
    model.load(torch.device("cpu"), model.settings(device="cpu"))
    pipe, negative = model.pipe, " poor quality, unclear hand, bad face "
    plain = pipeline_embeddings(pipe, ["a woman waving her hand"], negative)
    expected = pipe.encode_prompt("a woman waving her hand", device="cpu", negative_prompt=negative)
    for name, tensor in zip(("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
                             "negative_pooled_prompt_embeds"), expected):
        assert torch.equal(plain[name], tensor), name
    assert set(pipeline_embeddings(pipe, ["a man"], "")) == {"prompt_embeds", "pooled_prompt_embeds"}  # zeros: pipe's
    marked = pipeline_embeddings(pipe, ["a (smiling:1.5) man"], negative)
    parts = []
    for tokenizer, encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids, weights = padded(tokenizer, "a (smiling:1.5) man")
        hidden = encoder(torch.tensor([ids]), output_hidden_states=True).hidden_states[-2]
        parts.append(apply_weights(hidden, torch.tensor([weights])))
    assert torch.allclose(marked["prompt_embeds"], torch.cat(parts, dim=-1))
    unmarked = pipeline_embeddings(pipe, ["a smiling man"], negative)
    assert torch.equal(marked["pooled_prompt_embeds"], unmarked["pooled_prompt_embeds"])  # pooled: unweighted
    images = model.generate(["a (smiling:1.5) man"], [torch.Generator().manual_seed(0)], model.settings(
        steps=2, device="cpu"))
    assert images[0].size == (64, 64)


def test_a_prompt_without_marks_is_unchanged_even_where_its_mean_is_zero():
    """A layer-normed encoder with unit weight and zero bias (random tiny encoders) has mean 0: the rescale is 0/0
    there, and a prompt without marks must still come back exactly as the encoder gave it."""
    embeddings = torch.tensor([[[1.0, -1.0], [2.0, -2.0]], [[1.0, 2.0], [3.0, 4.0]]])
    weights = torch.tensor([[1.0, 1.0], [1.0, 1.5]])
    out = apply_weights(embeddings, weights)
    assert torch.equal(out[0], embeddings[0])
    weighted = embeddings[1] * weights[1].unsqueeze(-1)
    assert torch.allclose(out[1], weighted * (embeddings[1].mean() / weighted.mean()))
