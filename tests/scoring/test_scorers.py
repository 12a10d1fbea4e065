"""Scorer behaviour beyond parity and the contract (tests/scoring/test_scorer_contract.py): corrupt files, version labels,
missing weights, the `molebench weights` doctor, half precision on a GPU, ImageReward's folded attention."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from molebench.assets.weights import file_sha256
from molebench.errors import InputError, MissingWeightsError
from molebench.registry import SCORERS
from molebench.scoring.base import load_image_rgb


def test_corrupt_image_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(InputError, match="broken.png"):
        load_image_rgb(bad)


def test_version_labels_carry_hps_version_and_checkpoint_hash(tmp_path):
    tiny = SCORERS.get("hps-tiny")()
    assert tiny.version == "hps-tiny/v2"
    checkpoint = tiny.checkpoint_path()
    digest = file_sha256(checkpoint)[:12]
    assert SCORERS.get("hps-v2")(weights=checkpoint).version == f"hps-v2.0/ckpt-{digest}"
    assert SCORERS.get("hps-v2.1")(weights=checkpoint).version == f"hps-v2.1/ckpt-{digest}"
    folder = SCORERS.get("imagereward-tiny")().folder()
    real = SCORERS.get("imagereward")(weights=folder)
    assert real.version == f"imagereward-v1.0/ckpt-{file_sha256(folder / 'ImageReward.pt')[:12]}"
    assert real.files() == (folder / "ImageReward.pt", folder / "med_config.json", folder)


@pytest.mark.parametrize("name, fetch", [
    ("hps-v2", "hf download xswu/HPSv2 HPS_v2_compressed.pt"),
    ("hps-v2.1", "hf download xswu/HPSv2 HPS_v2.1_compressed.pt"),
    ("imagereward", "hf download THUDM/ImageReward ImageReward.pt"),
])
def test_missing_real_weights_say_how_to_fetch(name, fetch):
    with pytest.raises(MissingWeightsError) as info:
        SCORERS.get(name)().score([Image.new("RGB", (8, 8))], ["x"])
    assert info.value.exit_code == 2 and fetch in str(info.value)


def test_imagereward_folder_without_tokenizer_needs_bert_base_uncased(tmp_path):
    folder = SCORERS.get("imagereward-tiny")().folder()
    for name in ("ImageReward.pt", "med_config.json"):
        shutil.copy(folder / name, tmp_path / name)
    with pytest.raises(MissingWeightsError, match="bert-base-uncased"):
        SCORERS.get("imagereward")(weights=tmp_path).files()


def test_weights_doctor_lists_every_entry_with_fetch_command(capsys, monkeypatch):
    from molebench.cli import main
    from molebench.registry import MODELS

    checkpoint = SCORERS.get("hps-tiny")().checkpoint_path()
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_HPS_V2_1", str(checkpoint))
    capsys.readouterr()
    main(["weights", "--json"])
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(MODELS.names()) | set(SCORERS.names())
    assert not rows["hps-v2"]["present"]
    assert "MOLEBENCH_WEIGHTS_HPS_V2" in rows["hps-v2"]["where"] and "models--xswu--HPSv2" in rows["hps-v2"]["where"]
    assert rows["hps-v2"]["fetch"] == "hf download xswu/HPSv2 HPS_v2_compressed.pt"
    assert rows["hps-v2.1"]["present"] and rows["hps-v2.1"]["where"] == str(checkpoint)
    assert not rows["imagereward"]["present"] and "bert-base-uncased" in rows["imagereward"]["fetch"]
    assert rows["hps-tiny"]["present"] and rows["faces"]["present"] and rows["hands"]["present"]
    main(["weights"])
    text = capsys.readouterr().out
    assert "hps-v2 (scorer): missing" in text and "fetch:    hf download xswu/HPSv2 HPS_v2_compressed.pt" in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (fp16/bf16 scoring path)")
@pytest.mark.parametrize("name", ["hps-tiny", "hps-v1-tiny", "imagereward-tiny", "aesthetic-tiny"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_on_gpu_matches_float32(name, dtype):
    from scorer_fixtures import PARITY_PROMPTS, parity_images

    images = parity_images()
    cls = SCORERS.get(name)
    full = cls(device="cpu").score(images, PARITY_PROMPTS)[cls.metrics[0]]
    half = cls(device="cuda", dtype=dtype, batch_size=8).score(images, PARITY_PROMPTS)[cls.metrics[0]]
    np.testing.assert_allclose(half, full, rtol=0, atol=0.05 if dtype == "bfloat16" else 0.01)


def test_checkpoint_is_loaded_once_per_process():
    first, second = SCORERS.get("imagereward-tiny")(), SCORERS.get("imagereward-tiny")(batch_size=2)
    first.load()
    second.load()
    assert first.net is second.net and first.tokenizer is second.tokenizer
    a, b = SCORERS.get("hps-tiny")(), SCORERS.get("hps-tiny")()
    a.load()
    b.load()
    assert a.model is b.model


@pytest.mark.parametrize(("queries", "keys", "context_width"), [(12, 197, 64), (1, 12, 768), (12, 12, 768)])
def test_imagereward_attention_folded_equals_projected(queries, keys, context_width):
    """The ImageReward attention folds its key/value projections into the query side when that is less arithmetic;
    both forms must give the same output, padding mask included."""
    from molebench.scoring.blip import SelfAttention, TextConfig

    torch.manual_seed(0)
    config = TextConfig(vocab_size=10, hidden_size=96, num_hidden_layers=1, num_attention_heads=4, intermediate_size=8,
                        max_position_embeddings=8, layer_norm_eps=1e-12, hidden_act="gelu", pad_token_id=0,
                        encoder_width=context_width)
    attention = SelfAttention(config, context_width).eval()
    for layer in (attention.key, attention.value):
        torch.nn.init.normal_(layer.bias, std=0.5)  # biases large enough that dropping one would show
    x, context = torch.randn(3, queries, 96), torch.randn(3, keys, context_width)
    mask = torch.ones(3, 1, 1, keys, dtype=torch.bool)
    mask[1, ..., keys // 2:] = False
    q = attention._split(attention.query(x))
    k, v = attention._split(attention.key(context)), attention._split(attention.value(context))
    projected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    folded = attention._folded(q, context, mask, None)
    assert torch.allclose(folded, projected, atol=1e-5, rtol=1e-5)
    expected_fold = queries < keys  # the cost rule: fold when a few queries read many tokens
    assert attention._folding_is_cheaper(queries, keys) == expected_fold
    # one query row per distinct prompt, spread to the context rows that read it, equals repeating the rows
    rows = torch.tensor([1, 0, 1])
    spread = attention(x[:2], context, mask, rows)
    assert torch.allclose(spread, attention(x[rows], context, mask), atol=1e-6, rtol=1e-6)
