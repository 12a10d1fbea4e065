"""Real checkpoints, where the user has them (skipped with the reason otherwise): hpsv2's own demo image scores
its published value. Looked up where the user keeps weights (their MOLEBENCH_WEIGHTS_* or Hugging Face cache), not in
the tests' private cache. Marked `real_weights`: `make test-real-weights` runs them, `make test` leaves them out
(no machine here can download the weights, so in `make test` they could only ever skip)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import ORIGINAL_ENV
from molebench.paths import weights_env_var

DEMO_PROMPT = "A cat with two horns on its head"
DEMO_HPS_V20 = 0.2876  # hpsv2.score(demo_image.jpg, DEMO_PROMPT, hps_version="v2.0"), as reported upstream


def user_weights(what: str, repo_id: str, filename: str) -> Path | None:
    explicit = ORIGINAL_ENV.get(weights_env_var(what))
    if explicit:
        path = Path(explicit) / filename if Path(explicit).is_dir() else Path(explicit)
        return path if path.exists() else None
    from huggingface_hub import try_to_load_from_cache

    hub = ORIGINAL_ENV.get("HF_HUB_CACHE") or os.path.join(
        ORIGINAL_ENV.get("HF_HOME") or os.path.join(Path.home(), ".cache", "huggingface"), "hub")
    found = try_to_load_from_cache(repo_id, filename, cache_dir=hub)
    return Path(found) if isinstance(found, str) else None


pytestmark = pytest.mark.real_weights


def test_hps_v2_scores_hpsv2_demo_image():
    checkpoint = user_weights("hps-v2", "xswu/HPSv2", "HPS_v2_compressed.pt")
    if checkpoint is None:
        pytest.skip("real HPS v2.0 checkpoint absent (xswu/HPSv2 HPS_v2_compressed.pt in the user's Hugging Face "
                    "cache or $MOLEBENCH_WEIGHTS_HPS_V2); fetch: hf download xswu/HPSv2 HPS_v2_compressed.pt")
    spec = importlib.util.find_spec("hpsv2")
    assert spec is not None, "hpsv2 (test dependency, installed by `make install`) ships the demo image"
    demo = Path(spec.origin).parent / "assets" / "demo_image.jpg"
    from molebench.registry import SCORERS

    device = "cuda" if torch.cuda.is_available() else "cpu"
    scorer = SCORERS.get("hps-v2")(weights=checkpoint, device=device, dtype="float32")
    value = scorer.score([Image.open(demo)], [DEMO_PROMPT])["hps"][0]
    assert abs(value - DEMO_HPS_V20) <= 1e-3, value
