"""Crop FID and KID (`fid@hand`, `kid@face`, `fid-tiny@face`, ...): a set metric on the crops of one body part.

Whole-image FID hardly moves when every hand in a run gets worse: hands are a few percent of the pixels. HandRefiner
(Lu et al., arXiv 2311.17957) therefore reports FID and KID on hand crops beside the whole-image values, with the
hands localised by MediaPipe. Protocol here, for part P (face or hand) and set metric M (fid, kid, their tiny
variants):

- every image of the run and of the reference set is searched by the same registered detector (the one the `faces`
  and `hands` scorers use), and each P it finds gives one crop by the crop rule of region-aware scoring
  (molebench.scoring.detect.found.crop_box: a square around the part padded by a quarter of its longer side on each
  side, kept inside the image);
- M compares the features of the run's crops with those of the reference images' crops, exactly as it compares
  images (same extractor, same resize rule: centre square, then the extractor's input size);
- `n` and `n_reference` count crops, not images; fewer than 2 crops on either side is an error naming the part.

Keys: a crop's content key hashes its image's content key and its box (its pixels are a function of both), so crop
features are cached beside the image features of the same extractor and resume is exact. Detections are cached by
image content key and detector version (JSON shards, atomic): under the run's `features/detections/` for its
images, in the molebench cache for reference images, so a second run does not search the reference set again. The
version is M's version plus the part, the crop rule and the detector's version.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from molebench import ui
from molebench.atomic import atomic_write_text
from molebench.errors import InputError
from molebench.parts import SEPARATOR
from molebench.scoring.base import Scorer
from molebench.scoring.detect.base import Detector, Region
from molebench.scoring.detect.found import CROP_RULE, DEFAULT_DETECTOR, crop_box, regions_of
from molebench.scoring.regions import wrap_inner
from molebench.scoring.reference import ImageSource, content_key
from molebench.scoring.sets import Derived, SetScorer

Box = tuple[int, int, int, int]


class DetectionCache:
    """What one detector found in images, by image content key: the image's size and its regions (JSON shards)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._found: dict[str, tuple[tuple[int, int], list[Region]]] | None = None

    def _load(self) -> dict[str, tuple[tuple[int, int], list[Region]]]:
        if self._found is None:
            self._found = {}
            for shard in sorted(self.folder.glob("*.json")) if self.folder.exists() else []:
                try:
                    entries = json.loads(shard.read_text(encoding="utf-8"))
                    self._found.update({key: ((int(e["size"][0]), int(e["size"][1])),
                                              [Region.from_row(row) for row in e["regions"]])
                                        for key, e in entries.items()})
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    raise InputError(f"corrupt detection shard {shard}: {exc} (delete it; it is recomputed)") from None
        return self._found

    def __contains__(self, key: str) -> bool:
        return key in self._load()

    def get(self, key: str) -> tuple[tuple[int, int], list[Region]]:
        return self._load()[key]

    def write(self, found: dict[str, tuple[tuple[int, int], list[Region]]]) -> None:
        """One new shard, atomically (a crash leaves the old shards and no partial file)."""
        first = next(iter(found))
        entries = {key: {"size": list(size), "regions": [r.as_row() for r in regions]}
                   for key, (size, regions) in found.items()}
        atomic_write_text(self.folder / f"{first[:32]}-{len(found)}.json", json.dumps(entries, sort_keys=True))
        self._load().update(found)


def detector_folder(folder: Path, detector: Detector) -> Path:
    """`folder/detections/<detector version as a file name>`."""
    return Path(folder) / "detections" / re.sub(r"[^A-Za-z0-9._-]+", "-", detector.version)


def crop_key(image_key: str, box: Box) -> str:
    return hashlib.sha256(f"{image_key}/crop/{','.join(map(str, box))}".encode()).hexdigest()


def crop_source(image: ImageSource, image_key: str, box: Box, label: str) -> ImageSource:
    """The crop `box` of `image` as an image source (lossless PNG bytes when read), keyed without being read."""
    def read() -> bytes:
        buffer = io.BytesIO()
        image.open().crop(box).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    return ImageSource(f"{image.name}#{label}", read, key=crop_key(image_key, box))


def detections(detector: Detector, images: list[ImageSource], cache: DetectionCache, chunk: int, what: str
               ) -> list[tuple[str, tuple[int, int], list[Region]]]:
    """(content key, size, regions) of each image, searching (in batches) only images the cache does not hold."""
    out = []
    with ui.progress() as bar:
        task = bar.add_task(f"detect {what}", total=len(images))
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            data = [source.read() for source in part]
            keys = [content_key(d) for d in data]
            todo = list({k: i for i, k in enumerate(keys) if k not in cache}.values())  # identical files once
            if todo:
                opened = [part[i].open(data[i]) for i in todo]
                found = regions_of(detector, opened)
                cache.write({keys[i]: (image.size, regions) for i, image, regions in zip(todo, opened, found)})
            out += [(key, *cache.get(key)) for key in keys]
            bar.advance(task, len(part))
    return out


class CropSetScorer(SetScorer):
    """Set metric `inner` on the crops of `part`; same metrics, scales and directions as `inner`."""

    def __init__(self, inner: SetScorer, part: str, detector: str = DEFAULT_DETECTOR) -> None:
        super().__init__(device=inner.device, dtype=inner.dtype, batch_size=inner.batch_size, weights=inner.weights,
                         reference=inner.reference)
        if inner.kind != "set":
            raise InputError(f"{inner.registry_name}{SEPARATOR}{part}: not a set-level metric")
        wrap_inner(self, inner, part, detector)
        self.description = f"{inner.registry_name} on {part} crops of the run and of the reference images"
        self.unit = f"{part} crops"

    @property
    def version(self) -> str:
        return f"{self.inner.version}{SEPARATOR}{self.part}/{CROP_RULE}/{self.detector.version}"

    @property
    def feature_tag(self) -> str:
        return self.inner.feature_tag  # crops have their own content keys: their features share the folder

    def weights_status(self):
        return self.inner.weights_status()

    def fingerprint(self) -> dict[str, Any]:
        return {**self.inner.fingerprint(), **Scorer.fingerprint(self), "detector": self.detector.fingerprint(),
                "region": {"part": self.part, "crop": CROP_RULE, "inner": self.inner.registry_name}}

    def _load(self) -> None:
        self.inner.load()
        self.detector.load()

    def sources_of(self, images: list[ImageSource], folder: Path) -> Derived:
        """The crops of this part in `images`, each with the index of its image (detections cached under `folder`)."""
        cache = DetectionCache(detector_folder(folder, self.detector))
        found = detections(self.detector, images, cache, max(self.detector.batch_size, 1) * 4,
                           f"{self.part}s ({self.registry_name}, {len(images)} images)")
        crops, owners = [], []
        for index, (image, (key, size, regions)) in enumerate(zip(images, found)):
            for number, region in enumerate(r for r in regions if r.part == self.part):
                crops.append(crop_source(image, key, crop_box(region, *size), f"{self.part}{number}"))
                owners.append(index)
        return Derived(crops, owners, [key for key, _, _ in found])

    def check_counts(self, n: int, n_reference: int) -> None:
        if n < 2 or n_reference < 2:
            raise InputError(f"{self.registry_name}: {n} {self.part} crops in the run's images and {n_reference} in "
                             f"the reference images; {'/'.join(self.metrics)} on {self.part} crops needs at least 2 "
                             f"on each side (the {self.detector.registry_name} detector found too few "
                             f"{self.part}s{' in the run' if n < 2 else ' in the reference set'})")

    def extract(self, images: list[Image.Image]) -> np.ndarray:
        return self.inner.extract(images)

    def compute(self, generated, reference, dim, n_fake=0, n_real=0):
        return self.inner.compute(generated, reference, dim, n_fake, n_real)
