"""Face and hand scorers, finger proportions and region-aware scoring (molebench.scoring.people, anatomy, regions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from molebench.errors import InputError
from molebench.parts import split_region, with_regions
from molebench.registry import SCORERS
from molebench.scoring.anatomy import FINGERS, finger_lengths, hand_plausibility
from molebench.scoring.detect.base import Region
from molebench.scoring.detect.found import DEFAULT_DETECTOR, crop_box, regions_of, shared_detector
from molebench.scoring.people import asks_for


def _photos() -> list[Image.Image]:
    from matplotlib import cbook
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        hopper = Image.open(handle).convert("RGB")
    return [Image.fromarray(data.astronaut()), hopper, Image.fromarray(data.coffee())]


def _hand(finger_scale: dict[str, float] | None = None) -> np.ndarray:
    """An open right hand, upright, with adult proportions: knuckles on a line, fingers straight up."""
    lengths = {"thumb": 49.5, "index": 63.9, "middle": 70.7, "ring": 65.5, "little": 53.3}
    for finger, scale in (finger_scale or {}).items():
        lengths[finger] *= scale
    points = np.zeros((21, 3), np.float32)
    bases = {"thumb": (-45.0, -10.0), "index": (-25.0, -60.0), "middle": (0.0, -65.0), "ring": (22.0, -60.0),
             "little": (42.0, -50.0)}
    for finger, index in FINGERS.items():
        x, y = bases[finger]
        for step, point in enumerate(index):
            points[point] = (x, y - lengths[finger] * step / (len(index) - 1), 0.0)
    return points


def test_finger_proportions_of_a_real_hand_are_plausible_and_a_long_finger_is_not():
    assert finger_lengths(_hand())["middle"] == pytest.approx(70.7, rel=1e-5)
    typical = hand_plausibility(_hand())
    assert typical > 0.95
    assert hand_plausibility(_hand({"index": 1.5})) < typical - 0.2  # a finger half as long again
    assert hand_plausibility(_hand({"thumb": 1.6, "little": 1.5})) < 0.6
    rotated = _hand() @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], np.float32).T * 3.0  # turned, 3x larger
    assert hand_plausibility(rotated) == pytest.approx(typical, abs=1e-6)
    with pytest.raises(ValueError, match="21 keypoints"):
        hand_plausibility(np.zeros((5, 3)))


def test_a_prompt_asks_for_a_part_by_whole_words():
    assert asks_for("a woman waving her hand", "hand") and not asks_for("a woman waving her hand", "face")
    assert asks_for("Portrait of a SMILING man", "face")
    assert not asks_for("a handsome surface", "face") and not asks_for("a handsome surface", "hand")


def test_faces_and_hands_on_real_photographs_keep_not_found_apart_from_good():
    faces, hands = SCORERS.get("faces")(), SCORERS.get("hands")()
    photos = _photos()
    prompts = ["a portrait of a smiling astronaut", "an officer holding nothing", "a cup of coffee on a table"]
    found = faces.score(photos, prompts)
    assert list(found["faces"][:2]) == [1, 1] and found["faces"][2] == 0
    assert found["face_found_when_asked"][0] == 1 and math.isnan(found["face_found_when_asked"][1])  # not asked
    assert found["face_presence"][0] > 0.5 and math.isnan(found["face_presence"][2])  # none found: NaN, not 0
    assert faces.fingerprint()["higher_is_better"] == {"face_found_when_asked": True, "faces": None,
                                                       "face_presence": True, "face_quality": True}
    no_hand = hands.score(photos[2:], ["a hand holding a cup"])
    assert no_hand["hand_found_when_asked"][0] == 0 and math.isnan(no_hand["hand_quality"][0])
    assert DEFAULT_DETECTOR in faces.version and "words-" in faces.version


def test_images_are_searched_once_per_process():
    detector = shared_detector()
    calls = []
    original = detector.detect
    detector.detect = lambda images: calls.append(len(images)) or original(images)
    try:
        photos = _photos()
        first = regions_of(detector, photos[:2])
        again = regions_of(detector, [photos[1].copy(), photos[0]])  # same pixels: no new detection
        assert calls in ([], [2]) and [len(r) for r in again] == [len(first[1]), len(first[0])]
    finally:
        del detector.detect


def test_crop_box_is_a_padded_square_moved_inside_the_image():
    region = Region("face", (10.0, 20.0, 50.0, 40.0), 0.9)
    assert crop_box(region, 200, 200) == (0, 0, 60, 60)  # 40 px side + 2 x 10 px, pushed inside at the corner
    assert crop_box(Region("hand", (100.0, 100.0, 120.0, 140.0), 0.9), 200, 200) == (80, 90, 140, 150)
    assert crop_box(Region("hand", (0.0, 0.0, 300.0, 300.0), 0.9), 200, 100) == (0, 0, 200, 100)


def test_region_names_and_the_regions_option():
    assert split_region("hps-v2.1@face") == ("hps-v2.1", "face") and split_region("clip-t") == ("clip-t", None)
    with pytest.raises(InputError, match="unknown region 'foot'"):
        split_region("hps-tiny@foot")
    kinds = {"hps-tiny": "image", "faces": "people", "fid-tiny": "set"}
    assert with_regions(["hps-tiny", "faces", "fid-tiny"], ["hand"], kinds) == (
        "hps-tiny", "faces", "fid-tiny", "hps-tiny@hand", "fid-tiny@hand")


def test_region_scorer_scores_face_crops_with_the_part_prompt():
    from molebench.runner.score_step import make_scorer
    from molebench.scoring.regions import PART_PROMPTS

    scorer = make_scorer("hps-tiny@face", "cpu", None)
    inner = make_scorer("hps-tiny", "cpu", None)
    photos = _photos()
    values = scorer.score(photos, ["ignored for crops"] * 3)["hps"]
    regions = regions_of(scorer.detector, photos)
    faces = [[r for r in found if r.part == "face"] for found in regions]
    expected = [inner.score([image.crop(crop_box(r, *image.size)) for r in found],
                            [PART_PROMPTS["face"]] * len(found))["hps"].mean() if found else math.nan
                for image, found in zip(photos, faces)]
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert math.isnan(values[2]) and not math.isnan(values[0])
    assert scorer.version.startswith(inner.version + "@face/") and scorer.fingerprint()["name"] == "hps-tiny@face"
    with pytest.raises(InputError, match="does not run on crops"):
        make_scorer("faces@hand", "cpu", None)


def test_run_with_regions_stores_scores_and_regions(tmp_path):
    from conftest import exit_code

    from molebench.store import RunStore

    out = tmp_path / "run"
    assert exit_code(["run", "--model", "tiny-sd15", "--limit", "2", "--steps", "2", "--scorers", "hps-tiny,faces",
                      "--regions", "face", "--out", str(out)]) == 0
    store = RunStore(out)
    scores = store.read_scores()
    assert set(scores["scorer"]) == {"hps-tiny", "faces", "hps-tiny@face"}
    assert len(scores[scores["scorer"] == "hps-tiny@face"]) == 2  # one row per image, NaN where no face
    assert store.read_manifest().data["config"]["regions"] == ["face"]
    assert isinstance(store.read_regions(), pd.DataFrame)
    assert exit_code(["run", "--model", "tiny-sd15", "--limit", "2", "--steps", "2", "--scorers", "hps-tiny",
                      "--regions", "foot", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
