"""One writer per run folder: an advisory `flock` on RUN/.lock, held for the whole command that writes there.

Why flock: the kernel drops the lock when its holder dies, however it dies (kill -9 included), so a crashed run never
blocks the folder. The holder writes its pid, host, start time and command into the lock file, only so that a second
command can say who holds it; a stale record left by a dead holder is ignored (its lock is gone) and overwritten.

Readers (`report`, `compare`, `study create`, `verify` without `--repair`) never take the lock: every file is
replaced atomically and scores are read so that a concurrent merge is never seen half-done (see RunStore.read_scores).

Several processes of one command share one lock. Under `accelerate launch` the main process takes it and the others
write only their own images and shards; a `--num-processes` parent that already holds the lock names the folder in
MOLEBENCH_HELD_LOCKS, so the processes it starts do not try to take it again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, Iterator

from molebench import ui
from molebench.errors import RunInUseError, StorageError

LOCK_NAME = ".lock"
HELD_ENV = "MOLEBENCH_HELD_LOCKS"
_held: set[Path] = set()  # folders this process holds (a nested command, e.g. verify --repair running a run, re-enters)


def lock_path(root: str | Path) -> Path:
    return Path(root) / LOCK_NAME


def holder(root: str | Path) -> dict[str, Any] | None:
    """The record the current holder wrote (None if unreadable: the file is being written, or was never written)."""
    try:
        record = json.loads(lock_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_locked(root: str | Path) -> bool:
    """Whether some process holds the folder's lock now (a reader's question; takes nothing)."""
    try:
        fd = os.open(lock_path(root), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def describe(root: str | Path) -> str:
    record = holder(root) or {}
    return (f"{root} is in use by process {record.get('pid', '?')} on {record.get('host', '?')} since "
            f"{record.get('since', '?')}" + (f" ({record['command']})" if record.get("command") else ""))


@contextlib.contextmanager
def run_lock(root: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold RUN/.lock for the block; refuse at once (RunInUseError, exit 2) if another process holds it, or wait."""
    root = Path(root)
    key = root.resolve()
    inherited = str(key) in os.environ.get(HELD_ENV, "").split(os.pathsep)
    if key in _held or inherited:
        yield
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path(root), os.O_RDWR | os.O_CREAT, 0o666)  # less the umask, like every file
    except OSError as exc:
        raise StorageError(f"cannot lock run folder {root}: {exc.strerror or exc} (a read-only folder can be read "
                           "by report, compare and verify, but not written)") from None
    try:
        _acquire(fd, root, wait)
        _write_record(fd)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def shared_with_children(root: str | Path, wait: bool = False) -> Iterator[None]:
    """Hold the lock and let processes started in the block (accelerate workers) work under it."""
    with run_lock(root, wait):
        before = os.environ.get(HELD_ENV)
        os.environ[HELD_ENV] = os.pathsep.join(filter(None, [before, str(Path(root).resolve())]))
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(HELD_ENV, None)
            else:
                os.environ[HELD_ENV] = before


def _acquire(fd: int, root: Path, wait: bool) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise StorageError(f"cannot lock run folder {root}: {exc.strerror or exc}") from None
    if not wait:
        raise RunInUseError(f"{describe(root)}; wait for it to finish, or pass --wait to start when it does")
    ui.err.print(f"waiting: {describe(root)}", soft_wrap=True, markup=False)
    fcntl.flock(fd, fcntl.LOCK_EX)


def _write_record(fd: int) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(["molebench", *sys.argv[1:]])[:500]}
    data = (json.dumps(record) + "\n").encode("utf-8")
    with contextlib.suppress(OSError):  # the record only improves a message; the lock itself is what counts
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
