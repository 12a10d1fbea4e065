"""Set-level scorers: one value per run (FID, KID), not one per image.

A set scorer turns each image into a feature vector (`extract`) and compares the feature distributions of the
generated images and a reference set (`compute`, on torchmetrics). Features, not images, are what is kept:

- per-image features are cached in shard files (`FeatureCache`) keyed by the image's content key (sha256 of the
  file bytes): the generated images' under `RUN/features/`, the reference images' in the molebench cache, so a
  second model's FID reuses the real images' features and a rerun after `kill -9` extracts only what is missing
  (each shard is written atomically after its batch, so resume is exact);
- `compute` streams the cached features batch by batch into torchmetrics' `update` (images are never all held in
  memory; the features are: 8 KB per image for Inception's 2048 floats).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, NamedTuple

import numpy as np
from PIL import Image

from molebench.atomic import atomic_path
from molebench.errors import InputError, MolebenchError
from molebench.scoring.base import Scorer
from molebench import faults
from molebench.scoring.reference import ImageSource, content_key, reference_sources

if TYPE_CHECKING:
    import torch



class Derived(NamedTuple):
    """What a set scorer extracts features from, for a list of images (`SetScorer.sources_of`)."""

    sources: list[ImageSource]
    owners: list[int]  # the index of the image each source comes from
    image_keys: list[str] | None  # the images' content keys when known (None: the sources are the images)


class FeatureCache:
    """Feature vectors by content key, in `.npz` shards (arrays `keys`, `features`) under one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._features: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._features is None:
            self._features = {}
            for shard in sorted(self.folder.glob("*.npz")) if self.folder.exists() else []:
                try:
                    with np.load(shard, allow_pickle=False) as data:
                        self._features.update(zip(data["keys"].tolist(), data["features"]))
                except (OSError, ValueError, KeyError) as exc:
                    raise InputError(f"corrupt feature shard {shard}: {exc} (delete it; it is recomputed)") from None
        return self._features

    def __contains__(self, key: str) -> bool:
        return key in self._load()

    def __len__(self) -> int:
        return len(self._load())

    def write(self, keys: list[str], features: np.ndarray) -> None:
        """One new shard, atomically (a crash leaves the old shards and no partial file)."""
        features = np.asarray(features, dtype=np.float32)
        with atomic_path(self.folder / f"{keys[0][:32]}-{len(keys)}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, keys=np.asarray(keys), features=features)
        self._load().update(zip(keys, features))

    def batches(self, keys: list[str], size: int) -> Iterator[np.ndarray]:
        cached = self._load()
        for start in range(0, len(keys), size):
            yield np.stack([cached[k] for k in keys[start : start + size]])


def centre_square(image: Image.Image) -> torch.Tensor:
    """The resize rule's first half: the centred square at the shorter side, as uint8 (3, S, S). The extractor
    resizes that square to its input size (Inception: 299×299, torchmetrics' bilinear with antialiasing), so no
    image is squashed and real photographs of any aspect compare with square generations."""
    import torch

    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side)) if (width, height) != (side, side) else image
    return torch.from_numpy(np.asarray(square, dtype=np.uint8).copy()).permute(2, 0, 1)


class SetScorer(Scorer):
    """Base of set-level scorers: `extract` features per image, `compute` metric -> (value, std or NaN)."""

    kind: ClassVar[str] = "set"
    default_batch_size = 32
    unit: str = "images"  # what `n` and `n_reference` count (crop metrics: "face crops", "hand crops")

    def __init__(self, device="cpu", dtype=None, batch_size=None, weights=None, reference: str | Path | None = None):
        super().__init__(device=device, dtype=dtype, batch_size=batch_size, weights=weights)
        self.reference = reference
        self.reference_images: list[ImageSource] | None = None
        self._by_prompt: dict[str, ImageSource] | None = None

    @property
    def feature_tag(self) -> str:
        """Folder name of the features this scorer's extractor makes (shared by every scorer on that extractor)."""
        raise NotImplementedError

    def bind_reference(self, image_ids: dict[str, Any] | None) -> None:
        """Resolve the reference images now (before a run writes anything): `image_ids` (prompt id -> COCO image id)
        picks each prompt's real image; None takes every image of the reference set."""
        if self.reference is None:
            raise InputError(f"{self.registry_name} compares against real images: pass --reference PATH (a folder or "
                             "zip of images; for coco-human the COCO val2014 images)")
        if image_ids is None:
            self.reference_images, self._by_prompt = reference_sources(self.reference), None
            return
        unique = list(dict.fromkeys(image_ids.values()))
        sources = dict(zip(unique, reference_sources(self.reference, unique)))
        self._by_prompt = {prompt_id: sources[image_id] for prompt_id, image_id in image_ids.items()}
        self.reference_images = list(sources.values())

    def sources_of(self, images: list[ImageSource], folder: Path) -> Derived:
        """What features are extracted from for these images, each with the index of the image it comes from: the
        images themselves here; their face or hand crops for a crop metric (molebench.scoring.region_sets), which
        keeps what it derives per image (detections) under `folder` (the run's features folder, or the cache's)."""
        return Derived(list(images), list(range(len(images))), None)

    def check_counts(self, n: int, n_reference: int) -> None:
        """Refuse a comparison that cannot be made, naming what is missing (before any value is computed)."""
        if not n:
            raise InputError(f"{self.registry_name}: the run has no images to compare with the reference")

    def reference_for(self, prompt_ids) -> list[ImageSource]:
        """The reference images of these prompts (a repeat's sample), each once; all of them without image ids."""
        if self._by_prompt is None:
            return list(self.reference_images or [])
        return list({id(s): s for s in (self._by_prompt[str(p)] for p in dict.fromkeys(prompt_ids))}.values())

    def score(self, images, prompts):  # noqa: D102 - set scorers have no per-image score
        raise MolebenchError(f"{self.registry_name} is a set-level metric: it scores a whole run, not images")

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        """(n, d) float32 features; images of one size are run as one batch."""
        import torch

        self.load()
        out: list[np.ndarray | None] = [None] * len(images)
        squares = [centre_square(image) for image in images]
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, square in enumerate(squares):
            by_size.setdefault(tuple(square.shape), []).append(index)
        with torch.inference_mode():
            for indices in by_size.values():
                batch = torch.stack([squares[i] for i in indices]).to(self.device)
                features = self._features(batch).float().cpu().numpy()
                for row, index in enumerate(indices):
                    out[index] = features[row]
        return np.stack(out).astype(np.float32)

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compute(self, generated: Iterator[np.ndarray], reference: Iterator[np.ndarray], dim: int
                ) -> dict[str, tuple[float, float]]:
        raise NotImplementedError


def feed(metric: Any, generated: Iterator[np.ndarray], reference: Iterator[np.ndarray]) -> tuple[int, int]:
    """Stream feature batches into a torchmetrics image-distribution metric (float64); returns (n_fake, n_real)."""
    import torch

    counts = [0, 0]
    for real, batches in ((True, reference), (False, generated)):
        for batch in batches:
            metric.update(torch.from_numpy(np.asarray(batch, dtype=np.float64)), real=real)
            counts[real] += len(batch)
    return counts[0], counts[1]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """KID draws random subsets with torch's global generator: seed it locally, leave the caller's state alone."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def fill_features(scorer: SetScorer, cache: FeatureCache, sources: list[ImageSource], chunk: int,
                  on_progress=None) -> tuple[list[str], int]:
    """Content keys of `sources` in order, extracting (and caching) the features of those not cached yet.

    Returns (keys, how many were extracted now). Each chunk of new features becomes one shard as soon as it is done.
    """
    keys: list[str] = []
    extracted = 0
    for start in range(0, len(sources), chunk):
        part = sources[start : start + chunk]
        data = [None if source.key else source.read() for source in part]
        part_keys = [source.key or content_key(d) for source, d in zip(part, data)]
        todo = [i for i, k in enumerate(part_keys) if k not in cache]
        todo = list({part_keys[i]: i for i in todo}.values())  # identical files once
        if todo:
            images = [part[i].open(data[i]) for i in todo]
            cache.write([part_keys[i] for i in todo], scorer.extract(images))
            faults.reached("features")
            extracted += len(todo)
        keys += part_keys
        if on_progress is not None:
            on_progress(len(part))
    return keys, extracted
