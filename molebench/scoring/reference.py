"""Reference image sets for set-level metrics (FID, KID): a folder or a zip of real images.

For a benchmark whose prompts carry a COCO `image_id` (coco-human keeps it from the captions file), the reference is
the real COCO image of each chosen caption, picked from the user's COCO image folder or zip by the number in the
file name (`COCO_val2014_000000123456.jpg` and `000000123456.jpg` both name image 123456). Otherwise every image in
the folder or zip is the reference. Images are identified by the sha256 of their file bytes (the content key), so
their features are cached across runs and across folders holding the same files.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image, UnidentifiedImageError

from molebench.errors import InputError
from molebench.scoring.base import to_rgb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class ImageSource:
    """One image file (in a folder or a zip): its name for messages and how to read its bytes. `key`, when given, is
    its content key known without reading it (a crop's: its image's key and its box, molebench.scoring.region_sets),
    so cached features are found without decoding anything."""

    name: str
    read: Callable[[], bytes]
    key: str | None = None

    def open(self, data: bytes | None = None) -> Image.Image:
        try:
            with Image.open(io.BytesIO(self.read() if data is None else data)) as image:
                image.load()
                return to_rgb(image)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"unreadable image {self.name}: {exc}") from None


def content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sources(paths: Iterable[Path]) -> list[ImageSource]:
    return [ImageSource(str(p), p.read_bytes) for p in paths]


def reference_sources(path: str | Path, image_ids: list[Any] | None = None) -> list[ImageSource]:
    """The reference images under `path` (folder or .zip), all of them or those of `image_ids` in that order."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"reference image set not found: {path}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise InputError(f"reference {path} is neither a folder nor a zip file of images")
        sources = _zip_sources(path)
    else:
        sources = file_sources(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                                      and not p.name.startswith(".")))
    if not sources:
        raise InputError(f"reference {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if image_ids is None:
        return sources
    return _select_by_id(path, sources, image_ids)


def _zip_sources(path: Path) -> list[ImageSource]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES
                       and not Path(n).name.startswith("."))

    def reader(name: str) -> Callable[[], bytes]:
        def read() -> bytes:
            with zipfile.ZipFile(path) as archive:
                return archive.read(name)
        return read

    return [ImageSource(f"{path}:{name}", reader(name)) for name in names]


def _select_by_id(path: Path, sources: list[ImageSource], image_ids: list[Any]) -> list[ImageSource]:
    by_id: dict[int, ImageSource] = {}
    for source in sources:
        match = _TRAILING_NUMBER.search(Path(source.name.rsplit(":", 1)[-1]).stem)
        if match:
            by_id.setdefault(int(match.group(1)), source)
    missing = [i for i in image_ids if int(i) not in by_id]
    if missing:
        shown = ", ".join(f"{int(i)} (COCO_val2014_{int(i):012d}.jpg)" for i in missing[:5])
        raise InputError(f"reference {path} lacks {len(missing)} of the {len(image_ids)} COCO images of this run's "
                         f"captions, e.g. image_id {shown}; give the COCO image folder or zip of the captions' split "
                         "(val2014 for coco-human) with --reference")
    return [by_id[int(i)] for i in image_ids]


def prompt_image_ids(prompt_meta: dict[str, dict[str, Any]], prompt_ids: Iterable[str]) -> dict[str, Any] | None:
    """prompt id -> source image id for the run's prompts (in prompt order) when every prompt has one, else None."""
    ids: dict[str, Any] = {}
    for prompt_id in dict.fromkeys(map(str, prompt_ids)):
        image_id = (prompt_meta.get(prompt_id) or {}).get("image_id")
        if image_id is None:
            return None
        ids[prompt_id] = image_id
    return ids
