"""The scorer contract (torchmetrics' MetricTester is the model): every registered scorer, and the face and hand crop
form of each that loads offline (`NAME@face`, `NAME@hand`), passes the same checks.

- output: one float64 array of shape (n,) per declared metric, in the declared order (set scorers: one value per
  metric through the store, with n and n_reference); whole-image scorers take any image mode and size;
- directions: every metric of every registered scorer has `higher_is_better` True, False or None, on the class and
  in the fingerprint, as docs/scorers.md's table gives it (`metric` ↑, ↓ or "(count, no direction)");
- batch-size invariance: a batch's scores equal the images' scores one at a time within TOLERANCE (set scorers: the
  features, and the value computed from them); the detector's regions for a batch equal those of each image alone;
- version: a non-empty string, the same for two objects and before and after loading, equal to the fingerprint's;
  the fingerprint is the JSON the manifest records;
- resume: through the store's resume path (the runner's `score_missing` / `score_sets`), an interrupted command
  then a new one scores only what is missing, and the folder's values equal exactly the images' own scores (per
  image, batch size 1) or an uninterrupted command's value (set scorers). Scorers with a detector read its regions
  from the process memo here, as within one command; the detector's own invariance is checked once, above.

A scorer whose weights are not on this machine (offline: real checkpoints never are in the test session) is listed
as a skip with the error it gives, one line per scorer under `pytest -rs`. Images: real photographs of people from
the validation photo set (a face and a hand each, found by the default detector), scikit-image's astronaut (a face)
and noise (nothing), at most 256 px.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageOps

from conftest import REPO_ROOT
from molebench.errors import MissingWeightsError, MolebenchError
from molebench.parts import PARTS, SEPARATOR
from molebench.registry import SCORERS
from molebench.scoring.base import metric_direction
from molebench.scoring.people import Detecting

pytestmark = pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance`:UserWarning")

TOLERANCE = 1e-5  # relative and absolute, batch of all images vs one at a time (float32 networks on the CPU)
PHOTOS = ("zidane", "obama_portrait")  # validation photographs with one face and one hand the detector finds
PROMPTS = ["a footballer raising his hand", "a portrait of a man with his hand on his chest", "an astronaut smiling",
           "random noise"]
CUDA_ONLY = {"hps-v1-fp16norm": "reproduces evaluate_hps.py's float16 normalisation on a CUDA GPU"}


def _offline_kinds() -> tuple[list[str], list[str], list[str]]:
    """(per-image scorer names, set scorer names, registered per-image scorers without a detector): every registered
    name, and NAME@face / NAME@hand for each scorer whose weights are here and that runs on crops (not `faces` /
    `hands`, which measure the parts themselves)."""
    image, sets, plain = [], [], []
    for name in SCORERS.names():
        cls = SCORERS.get(name)
        regions = [] if issubclass(cls, Detecting) or name in CUDA_ONLY or not cls().weights_status().present else \
            [f"{name}{SEPARATOR}{part}" for part in PARTS]
        (sets if cls.kind == "set" else image).extend([name, *regions])
        plain += [name] if cls.kind == "image" and not issubclass(cls, Detecting) else []
    return image, sets, plain


IMAGE_SCORERS, SET_SCORERS, WHOLE_IMAGE_SCORERS = _offline_kinds()


def documented_directions() -> dict[str, bool | None]:
    """metric -> direction, from the table of docs/scorers.md (`metric` ↑, `metric` ↓, `metric` (count, ...))."""
    table = [line for line in (REPO_ROOT / "docs" / "scorers.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("| `")]
    found: dict[str, bool | None] = {}
    for line in table:
        for metric, mark in re.findall(r"`([a-z_]+)` (↑|↓|\(count, no direction\))", line):
            direction = {"↑": True, "↓": False}.get(mark)
            assert found.get(metric, direction) == direction, f"docs/scorers.md gives {metric} two directions"
            found[metric] = direction
    return found


# --- shared inputs and loaded scorers (one per name and batch size, per module) ----------------------------------
def contract_images() -> list[Image.Image]:
    from skimage import data

    from molebench.scoring.detect.photos import load_photo, read_photos

    photos = {photo.image: photo for photo in read_photos()}
    images = [load_photo(photos[name], REPO_ROOT / ".cache" / "people-photos").convert("RGB") for name in PHOTOS]
    images.append(Image.fromarray(data.astronaut()))
    images = [image.resize((round(image.width * 256 / max(image.size)), round(image.height * 256 / max(image.size))),
                           Image.Resampling.BICUBIC) for image in images]
    return images + [Image.fromarray(np.random.default_rng(5).integers(0, 256, (97, 131, 3), dtype=np.uint8))]


class Contract:
    """Scorers loaded once per (name, batch size) and their values, shared by this module's tests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = contract_images()
        self.reference = root / "reference"  # set scorers compare with the photographs mirrored
        self.reference.mkdir()
        for index, image in enumerate(self.images):
            ImageOps.mirror(image).save(self.reference / f"mirrored_{index}.png")
        self._scorers: dict[tuple[str, int], object] = {}
        self._singles: dict[str, dict[str, np.ndarray]] = {}

    def scorer(self, name: str, batch_size: int, fresh: bool = False):
        """The scorer `name` on the CPU, loaded; skips, with the reason, a scorer that cannot load here."""
        from molebench.runner.score_step import make_scorer

        if name.partition(SEPARATOR)[0] in CUDA_ONLY and not torch.cuda.is_available():
            pytest.skip(f"{name}: needs a CUDA device ({CUDA_ONLY[name.partition(SEPARATOR)[0]]})")
        if fresh or (name, batch_size) not in self._scorers:
            try:
                scorer = make_scorer(name, "cpu", batch_size, reference=str(self.reference))
                scorer.fingerprint()  # looks the weights up
                scorer.load()
            except MissingWeightsError as exc:
                pytest.skip(f"{name} cannot load offline: {str(exc).splitlines()[0].split('. ')[0]}")
            if fresh:
                return scorer
            self._scorers[name, batch_size] = scorer
        return self._scorers[name, batch_size]

    def singles(self, name: str) -> dict[str, np.ndarray]:
        """Each image scored alone (batch size 1)."""
        if name not in self._singles:
            scorer = self.scorer(name, 1)
            parts = [scorer.score([image], [prompt]) for image, prompt in zip(self.images, PROMPTS)]
            self._singles[name] = {m: np.concatenate([p[m] for p in parts]) for m in scorer.metrics}
        return self._singles[name]

    def store(self, folder: Path):
        """A run folder holding the contract images as items (what `molebench run --no-score` leaves)."""
        from molebench.store import RunStore

        store = RunStore(folder)
        store.prepare()
        rows = []
        for index, (image, prompt) in enumerate(zip(self.images, PROMPTS)):
            key = f"{index:02d}" + "c" * 22
            store.write_image(key, image)
            rows.append({"key": key, "prompt_index": index, "prompt_id": f"p{index}", "prompt": prompt, "seed": 0,
                         "gen_seed": index, "image": f"images/{key}.png"})
        items = pd.DataFrame(rows)
        store.write_items(items)
        return store, items


def odd_images() -> list[Image.Image]:
    """Every image mode a user may hand in, a 1-pixel image and a 40×3000 strip."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (150, 224, 3), dtype=np.uint8)  # long side already 224, not square: hpsv2 crashes
    alpha = np.full((150, 224, 1), 255, dtype=np.uint8)
    half = alpha.copy()
    half[:, :100] = 40
    return [
        Image.fromarray(rgb),
        Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA"),  # opaque: must score as the RGB image
        Image.fromarray(np.concatenate([rgb, half], axis=2), "RGBA"),
        Image.fromarray(rgb[:, :, 0], "L"),
        Image.fromarray(rgb).convert("P"),
        Image.fromarray(rgb[:, :, 0]).convert("LA"),
        Image.new("RGB", (1, 1), (250, 10, 10)),
        Image.fromarray(rng.integers(0, 256, (40, 3000, 3), dtype=np.uint8)),
    ]


@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> Contract:
    return Contract(tmp_path_factory.mktemp("contract"))


def assert_same(actual: np.ndarray, expected: np.ndarray, exact: bool = False) -> None:
    if exact:
        np.testing.assert_array_equal(actual, expected)  # NaN where NaN
    else:
        np.testing.assert_allclose(actual, expected, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True)


# --- per-image scorers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", IMAGE_SCORERS)
def test_output_is_one_float64_array_per_declared_metric(contract, name):
    scorer = contract.scorer(name, len(contract.images))
    values = scorer.score(contract.images, PROMPTS)
    assert list(values) == list(scorer.metrics) and len(scorer.metrics) == len(set(scorer.metrics)) >= 1
    for metric, column in values.items():
        assert isinstance(column, np.ndarray) and column.dtype == np.float64 and column.shape == (len(PROMPTS),)
        assert not np.isinf(column).any(), metric
        if not isinstance(scorer, Detecting):  # detector metrics are NaN where the part is not there (never "good")
            assert np.isfinite(column).all(), metric
    assert {m: v.shape for m, v in scorer.score([], []).items()} == {m: (0,) for m in scorer.metrics}
    with pytest.raises(MolebenchError, match="2 images but 1 prompts"):
        scorer.score(contract.images[:2], PROMPTS[:1])


@pytest.mark.parametrize("name", WHOLE_IMAGE_SCORERS)
def test_any_image_mode_and_size_is_scored(contract, name):
    """Whole-image scorers score every mode and size (`faces`, `hands` and crop scorers see them through the same
    conversion, `Scorer.score`; their detector is not run on these, whose tiling of a 3000 px strip takes seconds)."""
    scorer = contract.scorer(name, 3)
    images = odd_images()
    values = scorer.score(images, ["a person"] * len(images))[scorer.metrics[0]]
    assert values.shape == (len(images),) and np.isfinite(values).all()
    assert values[1] == pytest.approx(values[0], abs=1e-6)  # opaque RGBA is the RGB image
    assert values[2] != pytest.approx(values[1], abs=1e-6)  # translucency is composited on white, not ignored


@pytest.mark.parametrize("name", IMAGE_SCORERS)
def test_batch_scores_equal_scores_one_at_a_time(contract, name):
    scorer = contract.scorer(name, len(contract.images))
    batched = scorer.score(contract.images, PROMPTS)
    single = contract.singles(name)
    for metric in scorer.metrics:
        assert_same(batched[metric], single[metric])
    if SEPARATOR in name or isinstance(scorer, Detecting):  # the photographs' faces and hands are found and scored
        assert np.isfinite(single[scorer.metrics[0 if SEPARATOR in name else 2]][:2]).all()


def test_the_detector_finds_the_same_parts_in_a_batch_and_alone(contract):
    """What `faces`, `hands` and the crop scorers measure comes from the detector: its regions (box, confidences,
    keypoints) for a batch of images equal those of each image searched alone. (The scorers then share these
    detections through the process memo, as in a run.)"""
    from molebench.scoring.detect.found import forget_detections, regions_of, shared_detector

    detector = shared_detector()
    forget_detections()
    batched = regions_of(detector, contract.images)  # also what the scorers below read from the memo
    alone = [detector.detect([image])[0] for image in contract.images]
    assert [[r.part for r in found] for found in batched] == [[r.part for r in found] for found in alone]
    assert all({"face", "hand"} <= {r.part for r in found} for found in batched[:2])  # the photographs' face and hand
    for found, expected in zip(batched, alone):
        for region, single in zip(found, expected):
            assert_same(np.array([*region.box, region.presence, region.quality, region.handedness]),
                        np.array([*single.box, single.presence, single.quality, single.handedness]))
            assert_same(region.keypoints, single.keypoints)


@pytest.mark.parametrize("name", SCORERS.names())
def test_every_registered_metric_has_the_documented_direction(name):
    """Declared on the class, so checked for every scorer, its weights here or not."""
    cls = SCORERS.get(name)
    documented = documented_directions()
    # the fingerprint's rule
    declared = {metric: metric_direction(cls.higher_is_better, metric) for metric in cls.metrics}
    assert set(cls.higher_is_better) <= set(cls.metrics), "a direction for a metric the scorer does not have"
    assert declared == {metric: documented.get(metric, "not in docs/scorers.md") for metric in cls.metrics}


@pytest.mark.parametrize("name", IMAGE_SCORERS + SET_SCORERS)
def test_the_fingerprint_records_the_documented_directions(contract, name):
    scorer = contract.scorer(name, 1)
    documented = documented_directions()
    declared = scorer.fingerprint()["higher_is_better"]
    assert list(declared) == list(scorer.metrics)
    assert {m: declared[m] for m in scorer.metrics} == {m: documented.get(m, "not in docs/scorers.md")
                                                        for m in scorer.metrics}


@pytest.mark.parametrize("name", IMAGE_SCORERS + SET_SCORERS)
def test_version_is_present_stable_and_in_the_fingerprint(contract, name):
    from molebench.runner.score_step import make_scorer

    loaded = contract.scorer(name, 1)
    unloaded = make_scorer(name, "cpu", 1, reference=str(contract.reference))
    assert isinstance(loaded.version, str) and loaded.version.strip() == loaded.version != ""
    assert unloaded.version == loaded.version  # loading the weights does not change it
    fingerprint = loaded.fingerprint()
    assert fingerprint["name"] == loaded.registry_name == name and fingerprint["version"] == loaded.version
    assert fingerprint["kind"] == loaded.kind and json.loads(json.dumps(fingerprint, allow_nan=False)) == fingerprint
    assert fingerprint == unloaded.fingerprint()


@pytest.mark.parametrize("name", IMAGE_SCORERS)
def test_resumed_scoring_through_the_store_equals_scoring_at_once(contract, name, tmp_path):
    """An interrupted `score` (two images scored) then a new one: the second scores only the other images, each
    (image, metric) has one row, and the values are exactly the images' own scores (batch size 1, as for rescoring;
    the images are read back from their PNG files)."""
    from molebench.runner.score_step import score_missing

    store, items = contract.store(tmp_path / "run")
    first = contract.scorer(name, 1, fresh=True)
    assert score_missing(store, items.iloc[:2], [first]) == 2
    second = contract.scorer(name, 1, fresh=True)  # the resuming command: its own scorer object
    assert score_missing(store, items, [second]) == len(items) - 2
    assert score_missing(store, items, [second]) == 0
    rows = store.read_scores()
    rows = rows[rows["scorer"] == name]
    assert len(rows) == len(items) * len(first.metrics) and set(rows["scorer_version"]) == {first.version}
    table = rows.pivot(index="key", columns="metric", values="value").loc[list(items["key"])]
    for metric in first.metrics:
        assert_same(table[metric].to_numpy(), contract.singles(name)[metric], exact=True)


# --- set-level scorers -------------------------------------------------------------------------------------------
def _set_values(store) -> dict[str, tuple[float, float | str, int, int]]:
    """metric -> (value, std, n, n_reference) of the stored rows ("no std" for NaN, so that rows compare with ==)."""
    frame = store.read_set_scores()
    return {row.metric: (row.value, "no std" if math.isnan(row.std) else row.std, row.n, row.n_reference)
            for row in frame.itertuples()}


@pytest.mark.parametrize("name", SET_SCORERS)
def test_set_scorer_gives_one_value_per_metric_through_the_store(contract, name, tmp_path):
    from molebench.runner.set_score_step import score_sets

    scorer = contract.scorer(name, 4)
    store, items = contract.store(tmp_path / "run")
    assert score_sets(store, items, [scorer]) == len(scorer.metrics)
    values = _set_values(store)
    assert list(values) == list(scorer.metrics)
    crops = SEPARATOR in name
    for metric, (value, std, n, n_reference) in values.items():
        assert isinstance(value, float) and math.isfinite(value), metric
        assert std == "no std" if metric.startswith("fid") else std >= 0
        assert (n, n_reference) == ((2, 2) if crops and name.endswith("hand") else (3, 3) if crops else (4, 4))
    with pytest.raises(MolebenchError, match="set-level metric"):
        scorer.score(contract.images, PROMPTS)


@pytest.mark.parametrize("name", SET_SCORERS)
def test_set_features_and_value_do_not_depend_on_the_batch(contract, name, tmp_path):
    """Features of all sources at once equal those one at a time, and so does the value computed from them."""
    from molebench.scoring.reference import file_sources

    scorer = contract.scorer(name, 4)
    store, items = contract.store(tmp_path / "run")
    derived = scorer.sources_of(file_sources(store.root / path for path in items["image"]), store.features_dir)
    scorer.bind_reference(None)
    reference = scorer.sources_of(scorer.reference_images, tmp_path / "reference-detections")
    both = []
    for sources in (derived.sources, reference.sources):
        opened = [source.open(source.read()) for source in sources]
        batched = scorer.extract(opened)
        alone = np.concatenate([scorer.extract([image]) for image in opened])
        assert batched.dtype == np.float32 and batched.shape == alone.shape and batched.shape[0] == len(sources)
        assert_same(batched, alone)
        both.append((batched, alone))
    (gen, gen_alone), (ref, ref_alone) = both
    dim = gen.shape[1]
    at_once = scorer.compute(iter([gen]), iter([ref]), dim, len(gen), len(ref))
    one_by_one = scorer.compute(iter(gen_alone[:, None]), iter(ref_alone[:, None]), dim, len(gen), len(ref))
    for metric in scorer.metrics:
        assert_same(np.array(at_once[metric]), np.array(one_by_one[metric]))


@pytest.mark.parametrize("name", SET_SCORERS)
def test_resumed_set_scoring_equals_scoring_at_once(contract, name, tmp_path):
    """Killed after the features of the first half of the images (or crops) were stored: the resumed command
    extracts only the rest, and the stored value equals an uninterrupted command's exactly; a third command computes
    nothing. (The contract images differ in size, so each is extracted alone in either command.)"""
    from molebench.runner.set_score_step import score_sets
    from molebench.scoring.reference import file_sources
    from molebench.scoring.sets import FeatureCache, fill_features

    scorer = contract.scorer(name, 1)
    whole, items = contract.store(tmp_path / "whole")
    score_sets(whole, items, [scorer])
    resumed, _ = contract.store(tmp_path / "resumed")
    derived = scorer.sources_of(file_sources(resumed.root / path for path in items["image"]), resumed.features_dir)
    half = len(derived.sources) // 2  # the shards written before the kill
    cache = FeatureCache(resumed.features_dir / scorer.feature_tag)
    fill_features(scorer, cache, derived.sources[:half], half)
    assert 0 < len(cache) == half < len(derived.sources)
    assert score_sets(resumed, items, [scorer]) == len(scorer.metrics)
    assert len(FeatureCache(resumed.features_dir / scorer.feature_tag)) == len(derived.sources)
    assert _set_values(resumed) == _set_values(whole)
    assert score_sets(resumed, items, [scorer]) == 0
