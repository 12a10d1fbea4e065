"""molebench's HPS and ImageReward equal the reference packages' own scoring functions on the same tiny weights.

The references are the real `hpsv2.img_score.score` and `ImageReward`'s `RM.score` (installed for tests only, with
the shims in reference_shims.py), called one image at a time as their users do; molebench scores in batches of 1
and 8 (8 leaves a partial last batch and puts a repeated prompt in one batch).
"""

from __future__ import annotations

import numpy as np
import pytest

from reference_shims import hps_reference, imagereward_reference, missing_reference
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
