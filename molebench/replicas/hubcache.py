"""Writing a repository into the Hugging Face cache layout, as `hf download` leaves it.

    models--ORG--NAME/blobs/<hash>            the file contents (sha256 for weight files, git's blob sha1 otherwise)
    models--ORG--NAME/snapshots/<rev>/<path>  relative symlinks to the blobs
    models--ORG--NAME/refs/main               the revision

so that `huggingface_hub.snapshot_download(..., local_files_only=True)` and `try_to_load_from_cache` find the replica
exactly where they would find a real download. A replica's revision starts with `REPLICA_PREFIX` (eight zeros), which
no hub commit is expected to have, so a replica is never mistaken for real weights and a real download is never
overwritten: a cache folder whose `refs/main` names another revision is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from molebench.errors import InputError

REPLICA_PREFIX = "00000000"
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".model", ".gz")


def repo_folder(root: Path, repo_id: str) -> Path:
    return root / ("models--" + repo_id.replace("/", "--"))


def git_blob_sha1(data: bytes) -> str:
    """The name the hub (and so the cache) gives a small, non-LFS file: git's blob hash."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def is_replica(folder: Path) -> bool:
    """True when the cache folder of a repository holds a replica (or nothing yet)."""
    ref = folder / "refs" / "main"
    return not ref.exists() or ref.read_text().strip().startswith(REPLICA_PREFIX)


class RepoWriter:
    """Collects one repository's files as blobs, then publishes the snapshot and `refs/main` at once (`commit`)."""

    def __init__(self, root: Path, repo_id: str) -> None:
        self.repo_id = repo_id
        self.folder = repo_folder(root, repo_id)
        if not is_replica(self.folder):
            raise InputError(f"{self.folder} holds a real download of {repo_id}; build replicas in another cache "
                             "(MOLEBENCH_REPLICA_CACHE=DIR) so real weights are never replaced")
        self.blobs = self.folder / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, str] = {}  # path in the repository -> blob name

    def add_bytes(self, path: str, data: bytes) -> None:
        name = hashlib.sha256(data).hexdigest() if path.endswith(LFS_SUFFIXES) else git_blob_sha1(data)
        blob = self.blobs / name
        if not blob.exists():
            tmp = blob.with_suffix(".incomplete")
            tmp.write_bytes(data)
            os.replace(tmp, blob)
        self.files[path] = name

    def add_text(self, path: str, text: str) -> None:
        self.add_bytes(path, text.encode("utf-8"))

    def add_file(self, path: str, source: Path) -> str:
        """Move the finished file `source` in as a blob (named by its sha256); returns the blob's path."""
        if not path.endswith(LFS_SUFFIXES):
            self.add_bytes(path, source.read_bytes())
            source.unlink()
            return str(self.blobs / self.files[path])
        name = file_sha256(source)
        blob = self.blobs / name
        if blob.exists():
            source.unlink()
        else:
            os.replace(source, blob)
        self.files[path] = name
        return str(blob)

    def link_blob(self, path: str, blob: Path) -> None:
        """Add an existing blob (another replica's identical file) as a hard link: no disk is used twice."""
        target = self.blobs / blob.name
        if not target.exists():
            os.link(blob, target)
        self.files[path] = blob.name

    def commit(self) -> Path:
        """Write the snapshot (symlinks to the blobs) and `refs/main`; returns the snapshot folder."""
        listing = "\n".join(f"{path} {name}" for path, name in sorted(self.files.items()))
        revision = REPLICA_PREFIX + hashlib.sha1(listing.encode()).hexdigest()[len(REPLICA_PREFIX):]
        snapshot = self.folder / "snapshots" / revision
        staging = self.folder / "snapshots" / f".{revision}.incomplete"
        shutil.rmtree(staging, ignore_errors=True)
        for path, name in self.files.items():
            link = staging / path
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(self.blobs / name, link.parent))
        if snapshot.exists():
            shutil.rmtree(staging)
        else:
            os.replace(staging, snapshot)
        refs = self.folder / "refs"
        refs.mkdir(exist_ok=True)
        tmp = refs / ".main.incomplete"
        tmp.write_text(revision)
        os.replace(tmp, refs / "main")
        return snapshot


def folder_bytes(folder: Path) -> int:
    """Bytes a folder really takes: each file counted once per inode (hard links and symlinks are free)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in folder.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        if (stat.st_dev, stat.st_ino) not in seen:
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_blocks * 512
    return total
