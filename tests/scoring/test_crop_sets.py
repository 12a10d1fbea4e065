"""Crop FID/KID (`fid-tiny@face`): HandRefiner's protocol on real photographs of people, its parity with torchmetrics
on the same crops, exact resume (nothing detected or extracted twice) and the error when there are too few crops."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from PIL import Image, ImageOps

from conftest import exit_code_and_error

PART = "face"


def people_photographs() -> list[Image.Image]:
    """Real photographs of people shipped in installed packages (scikit-image's astronaut, matplotlib's Grace Hopper)
    and crops, mirrors and colour shifts of them: distinct images, one face each."""
    from matplotlib import cbook
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        hopper = Image.open(handle).convert("RGB")

    def warmer(image: Image.Image) -> Image.Image:
        red, green, blue = image.split()
        return Image.merge("RGB", (red.point(lambda v: min(255, v + 30)), green, blue.point(lambda v: v * 4 // 5)))

    return [astronaut, hopper, ImageOps.mirror(hopper), warmer(astronaut),  # the reference set
            ImageOps.mirror(astronaut), astronaut.crop((50, 0, 450, 400)), hopper.crop((100, 50, 450, 500)),
            warmer(ImageOps.mirror(hopper))]  # the "run"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(reference folder, run image folder), four photographs each."""
    root = tmp_path_factory.mktemp("people")
    photos = people_photographs()
    for name, group in (("reference", photos[:4]), ("run", photos[4:])):
        (root / name).mkdir()
        for index, image in enumerate(group):
            image.save(root / name / f"{name}_{index}.png")
    return root / "reference", root / "run"


def _scorer(reference):
    from molebench.runner.score_step import make_scorer

    scorer = make_scorer(f"fid-tiny@{PART}", "cpu", 2, reference=str(reference))
    scorer.bind_reference(None)
    return scorer


def test_crop_fid_parity_with_torchmetrics(folders, tmp_path):
    """fid-tiny@face equals torchmetrics' FrechetInceptionDistance fed the same detector's padded face crops through
    the same feature extractor (centre square, then its input size)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    from molebench.scoring.detect.found import crop, shared_detector
    from molebench.scoring.feature_nets import tiny_feature_net
    from molebench.scoring.reference import file_sources
    from molebench.scoring.sets import FeatureCache, centre_square, fill_features

    reference, run = folders
    scorer = _scorer(reference)
    gen_sources, gen_owner, _ = scorer.sources_of(file_sources(sorted(run.iterdir())), tmp_path / "gen")
    ref_sources, _, _ = scorer.sources_of(scorer.reference_images, tmp_path / "ref")
    assert sorted(gen_owner) == [0, 1, 2, 3] and len(ref_sources) == 4  # one face in each photograph
    caches = FeatureCache(tmp_path / "gen-features"), FeatureCache(tmp_path / "ref-features")
    gen_keys, _ = fill_features(scorer, caches[0], gen_sources, 4)
    ref_keys, _ = fill_features(scorer, caches[1], ref_sources, 4)
    ours = scorer.compute(caches[0].batches(gen_keys, 3), caches[1].batches(ref_keys, 3), 16)["fid"][0]

    detector = shared_detector()
    fid = FrechetInceptionDistance(feature=tiny_feature_net())
    with torch.no_grad():
        for folder, real in ((reference, True), (run, False)):
            images = [Image.open(path).convert("RGB") for path in sorted(folder.iterdir())]
            for image, found in zip(images, detector.detect(images)):  # searched again, not from the cache
                for region in (r for r in found if r.part == PART):
                    fid.update(centre_square(crop(image, region)).unsqueeze(0), real=real)
        expected = float(fid.compute())
    assert expected > 0 and abs(ours - expected) <= 1e-6 * expected


def _store(root, images, prompt_ids):
    """A run folder holding `images` (real photographs) as its items, the way score_sets reads them."""
    from molebench.store import RunStore

    store = RunStore(root)
    (root / "images").mkdir(parents=True)
    for index, path in enumerate(images):
        (root / "images" / f"k{index}.png").write_bytes(path.read_bytes())
    index_of = {prompt_id: index for index, prompt_id in enumerate(dict.fromkeys(prompt_ids))}
    items = pd.DataFrame({"key": [f"k{i}" for i in range(len(images))], "prompt_id": prompt_ids,
                          "prompt_index": [index_of[p] for p in prompt_ids],
                          "image": [f"images/k{i}.png" for i in range(len(images))]})
    return store, items


class Counting:
    """Wraps the detector's `detect` and the extractor's `extract`: how many images each was given."""

    def __init__(self, scorer, monkeypatch) -> None:
        self.detected = self.extracted = 0
        detect, extract = scorer.detector.detect, scorer.inner.extract

        def counted_detect(images):
            self.detected += len(images)
            return detect(images)

        def counted_extract(images):
            self.extracted += len(images)
            return extract(images)

        monkeypatch.setattr(scorer.detector, "detect", counted_detect)
        monkeypatch.setattr(scorer.inner, "extract", counted_extract)


def test_score_sets_on_crops_groups_and_exact_resume(folders, tmp_path, monkeypatch, capsys):
    """Through the set stage: n and n_reference count crops, repeats take their images' crops, and scoring again
    (a new scorer, the process memo emptied, the values deleted) detects and extracts nothing: the same value."""
    from molebench.runner.set_score_step import score_sets
    from molebench.scoring.detect import found
    from molebench.scoring.reference import content_key
    from molebench.store.run_store import set_images_hash

    reference, run = folders
    store, items = _store(tmp_path / "run", sorted(run.iterdir()), ["p0", "p0", "p1", "p1"])
    store.write_repeats(pd.DataFrame({"repeat": [0, 0, 1], "prompt_id": ["p0", "p1", "p1"],
                                      "prompt_index": [0, 1, 1]}))
    found.forget_detections()
    scorer = _scorer(reference)
    first = Counting(scorer, monkeypatch)
    assert score_sets(store, items, [scorer]) == 3
    rows = store.read_set_scores().set_index("group")
    assert list(rows.index) == ["all", "repeat-0", "repeat-1"] and (rows["scorer"] == "fid-tiny@face").all()
    assert rows.loc["all", "n"] == 4 and rows.loc["all", "n_reference"] == 4 and rows.loc["all", "value"] > 0
    assert rows.loc["repeat-1", "n"] == 2 and rows.loc["repeat-0", "n"] == 4
    assert rows["scorer_version"].str.contains(f"@{PART}/square-pad0.25/{found.DEFAULT_DETECTOR}/").all()
    assert first.detected == 8 and first.extracted == 8
    err = " ".join(capsys.readouterr().err.split())
    assert "features of 4 generated and 4 reference face crops extracted now" in err
    # the values rest on the run's images: their hash is that of the image files' content keys (what `verify` checks)
    image_keys = [content_key((tmp_path / "run" / path).read_bytes()) for path in items["image"]]
    assert rows.loc["all", "images_sha256"] == set_images_hash(image_keys)

    store.set_scores_path.unlink()
    found.forget_detections()
    again = _scorer(reference)
    second = Counting(again, monkeypatch)
    assert score_sets(store, items, [again]) == 3
    assert second.detected == 0 and second.extracted == 0
    assert store.read_set_scores().set_index("group")["value"].to_dict() == rows["value"].to_dict()

    other, other_items = _store(tmp_path / "other", sorted(run.iterdir())[:2] + sorted(reference.iterdir())[:1],
                                ["p0", "p1", "p2"])
    third = _scorer(reference)
    counts = Counting(third, monkeypatch)
    score_sets(other, other_items, [third])  # a second run: its images are searched, the reference set is not
    assert counts.detected == 3 and counts.extracted == 3


def test_too_few_crops_is_an_error_naming_the_part(folders, tmp_path, capsys):
    """`--regions face` adds fid-tiny@face to fid-tiny; on a run whose images hold no face (tiny-sd15's noise) it
    exits 1 (the data, not the usage), naming the part and both counts, and writes no value for the crops."""
    reference, _ = folders
    code, err = exit_code_and_error(capsys, "run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit",
                                    "2", "--steps", "2", "--scorers", "fid-tiny", "--regions", "face",
                                    "--reference", str(reference), "--out", str(tmp_path / "noise"))
    err = " ".join(err.split())
    assert code == 1, err
    assert "fid-tiny@face: 0 face crops in the run's images and 4 in the reference images" in err
    assert "found too few faces in the run" in err
    assert set(pd.read_parquet(tmp_path / "noise" / "set_scores.parquet")["scorer"]) == {"fid-tiny"}
