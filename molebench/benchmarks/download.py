"""Fetching official source files into the molebench cache: resumable HTTP download, checksums, zip members.

A download goes to `NAME.part` (resumed with an HTTP Range request when the server allows it) and is renamed to
`NAME` only after its size and checksum match, so a cached file is always a complete, verified one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from molebench import __version__, ui
from molebench.atomic import atomic_path
from molebench.errors import InputError, MolebenchError

CHUNK = 1 << 20


def file_digests(path: str | os.PathLike) -> dict[str, object]:
    """md5 (what COCO and DiffusionDB publish), sha256 (what molebench records) and size, in one read."""
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            md5.update(block)
            sha.update(block)
            size += len(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest(), "bytes": size}


def verify(path: Path, md5: str | None = None, sha256: str | None = None, size: int | None = None) -> dict[str, object]:
    """Digests of `path`; raises naming the file and both values when a known checksum or size differs."""
    digests = file_digests(path)
    for label, expected in (("md5", md5), ("sha256", sha256), ("bytes", size)):
        if expected is not None and digests[label] != expected:
            raise MolebenchError(f"{path}: {label} is {digests[label]}, expected {expected} (corrupt or not the "
                                 "official file; delete it and fetch it again)")
    return digests


def download(url: str, target: Path, md5: str | None = None, sha256: str | None = None,
             size: int | None = None, timeout: float = 60.0) -> dict[str, object]:
    """Fetch `url` to `target` unless a verified copy is there; returns the file's digests."""
    if target.exists():
        try:
            return verify(target, md5, sha256, size)
        except MolebenchError:
            ui.err.print(f"cached {target.name} does not match its checksum; downloading it again")
            target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"molebench/{__version__}"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = done > 0 and response.status == 206
            if not resumed:
                done = 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length is not None else size
            _stream(response, part, "ab" if resumed else "wb", done, total, target.name)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not done:  # 416: the partial file is already complete
            raise MolebenchError(_fetch_hint(url, target, f"HTTP {exc.code} {exc.reason}")) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MolebenchError(_fetch_hint(url, target, str(reason))) from None
    try:
        digests = verify(part, md5, sha256, size)
    except MolebenchError as exc:
        part.unlink(missing_ok=True)
        raise MolebenchError(f"download of {url} failed verification: {exc}") from None
    with open(part, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(part, target)
    return digests


def _stream(response, part: Path, mode: str, done: int, total: int | None, label: str) -> None:
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=ui.err, transient=False) as progress, open(part, mode) as handle:
        task = progress.add_task(f"downloading {label}", total=total, completed=done)
        for block in iter(lambda: response.read(CHUNK), b""):
            handle.write(block)
            progress.advance(task, len(block))


def _fetch_hint(url: str, target: Path, reason: str) -> str:
    return (f"could not download {url} ({reason}). Download it on a connected machine, put it at {target} or pass "
            "the file with --source PATH")


def extract_member(archive: Path, member: str, target: Path) -> Path:
    """Copy one file out of a zip archive into `target` atomically."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            try:
                info = bundle.getinfo(member)
            except KeyError:
                names = ", ".join(bundle.namelist()[:10])
                raise InputError(f"{archive}: has no member '{member}' (first members: {names})") from None
            with atomic_path(target) as tmp, bundle.open(info) as source, open(tmp, "wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{archive}: not a valid zip archive ({exc})") from None
    return target


def fetch_source(definition) -> list[Path]:
    """The definition's official source file in the cache, downloaded (and unpacked) first when it is not there."""
    from molebench.paths import cache_dir

    source = definition.source
    for key in ("url", "default_file"):
        if not isinstance(source.get(key), str):
            raise InputError(f"{definition.path}: 'source.{key}' is needed to download the source; "
                             "or pass a local copy with --source PATH")
    folder = cache_dir("downloads", definition.name)
    target = folder / source["default_file"]
    official_md5 = source.get("official_md5", {}).get(target.name)
    if "member" not in source:
        download(source["url"], target, md5=official_md5, sha256=source.get("sha256"), size=source.get("bytes"))
        return [target]
    if target.exists():
        try:
            verify(target, md5=official_md5)
            return [target]
        except MolebenchError:
            target.unlink()
    archive = folder / source.get("archive", source["url"].rsplit("/", 1)[-1])
    download(source["url"], archive, md5=source.get("archive_md5"), size=source.get("archive_bytes"))
    extract_member(archive, source["member"], target)
    try:
        verify(target, md5=official_md5)
    except MolebenchError:
        target.unlink()
        raise
    archive.unlink()  # only the member is needed; a rebuild uses the extracted file
    return [target]
