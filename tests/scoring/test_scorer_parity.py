"""molebench's HPS and ImageReward equal the reference packages' own scoring functions on the same tiny weights.

The references are the real `hpsv2.img_score.score` and `ImageReward`'s `RM.score` (installed for tests only, with
the shims in molebench_testing/reference.py), called one image at a time as their users do; molebench scores in batches
of 1 and 8 (8 leaves a partial last batch and puts a repeated prompt in one batch).
"""

from __future__ import annotations

import numpy as np
import pytest

from molebench_testing.reference import hps_reference, imagereward_reference, missing_reference
from scorer_fixtures import PARITY_PROMPTS, parity_images

TOLERANCE = 1e-5

pytestmark = pytest.mark.skipif(missing_reference() is not None, reason=str(missing_reference()))


@pytest.fixture(scope="module")
def images():
    return parity_images()


@pytest.fixture(scope="module")
def hps_expected(images):
    from molebench.scoring.hps import TINY_HPS_CONFIG, TinyHPS

    reference = hps_reference(TinyHPS().checkpoint_path(), TINY_HPS_CONFIG)
    return np.array([reference(image, prompt) for image, prompt in zip(images, PARITY_PROMPTS)])


@pytest.fixture(scope="module")
def imagereward_expected(images):
    from molebench.scoring.imagereward import TinyImageReward

    model = imagereward_reference(TinyImageReward().folder())
    return np.array([model.score(prompt, image) for image, prompt in zip(images, PARITY_PROMPTS)])


@pytest.mark.parametrize("batch_size", [1, 8])
def test_hps_tiny_equals_hpsv2_score(images, hps_expected, batch_size):
    from molebench.scoring.hps import TinyHPS

    ours = TinyHPS(batch_size=batch_size).score(images, PARITY_PROMPTS)["hps"]
    assert np.ptp(hps_expected) > 0.05, "tiny HPS gives near-constant scores: the comparison would be weak"
    np.testing.assert_allclose(ours, hps_expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_imagereward_tiny_equals_rm_score(images, imagereward_expected, batch_size):
    from molebench.scoring.imagereward import TinyImageReward

    ours = TinyImageReward(batch_size=batch_size).score(images, PARITY_PROMPTS)["imagereward"]
    assert np.ptp(imagereward_expected) > 0.05, "tiny ImageReward gives near-constant rewards: weak comparison"
    np.testing.assert_allclose(ours, imagereward_expected, rtol=0, atol=TOLERANCE)


# BLIP's med_config.json, which THUDM/ImageReward ships beside ImageReward.pt (vocab: bert-base-uncased + 2 tokens).
REAL_MED_CONFIG = {
    "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
    "num_hidden_layers": 12, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": 30524, "encoder_width": 768,
    "add_cross_attention": True,
}


def _linspace_on_cpu():
    """BLIP's ViT turns `torch.linspace(...)` into Python floats (drop-path rates): keep that one op off the meta
    device so the reference network can be built there."""
    import torch

    class LinspaceOnCpu(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func is torch.linspace:
                kwargs["device"] = "cpu"
            return func(*args, **kwargs)

    return LinspaceOnCpu()


def _shapes(module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def test_real_hps_model_has_hpsv2_vit_h14_parameters():
    """hps-v2/v2.1 build exactly the parameters hpsv2 loads the real checkpoint into (strictly), on the meta device."""
    import torch
    from open_clip.model import CLIP

    from molebench.registry import SCORERS
    from molebench_testing.reference import hps_reference_network

    with torch.device("meta"):
        reference = _shapes(hps_reference_network("ViT-H-14"))
        config = SCORERS.get("hps-v2")().model_config()
        ours = _shapes(CLIP(**config))
    assert SCORERS.get("hps-v2.1")().model_config() == config
    assert len(reference) > 600  # 32 vision + 24 text blocks
    assert ours == reference


def test_real_imagereward_network_has_reference_parameters(tmp_path):
    """imagereward builds a subset of ImageReward's parameters with the same shapes; the rest are BLIP heads the
    score never uses."""
    import json

    import torch

    from molebench.scoring.blip import VisionConfig
    from molebench.scoring.imagereward import TinyImageReward, build_net
    from molebench_testing.reference import imagereward_reference_network

    med = tmp_path / "med_config.json"
    med.write_text(json.dumps(REAL_MED_CONFIG))
    with torch.device("meta"), _linspace_on_cpu():
        reference = _shapes(imagereward_reference_network(med, TinyImageReward().folder()))
        ours = _shapes(build_net(med, VisionConfig()))
    assert {k: reference.get(k) for k in ours} == ours
    assert sorted(set(reference) - set(ours)) == [
        "blip.text_encoder.embeddings.position_ids", "blip.text_proj.bias", "blip.text_proj.weight",
        "blip.vision_proj.bias", "blip.vision_proj.weight"]
    assert ours["blip.visual_encoder.pos_embed"] == (1, 197, 1024)
    assert ours["blip.text_encoder.encoder.layer.11.crossattention.self.key.weight"] == (768, 1024)
