"""Run folders under faults: kill -9 at fixed points, two writers, a full disk, a read-only folder, damaged files.

Every kill is real (SIGKILL of a forked process running `molebench run`) and deterministic (MOLEBENCH_TEST_KILL_AFTER
names the point, see molebench.faults), and every resumed folder must equal one uninterrupted run byte for byte.
Scoring faults start from a copy of the reference's generated images, so only the scoring part is redone.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from molebench.cli import main
from molebench.errors import RunInUseError
from molebench.faults import ENV as KILL_ENV
from molebench.store import RunStore
from molebench.store.lock import run_lock

RUN = ["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit", "3", "--seeds", "0,1", "--steps", "2",
       "--batch-size", "1", "--scorers", "hps-tiny", "--scorer-batch-size", "1"]  # 6 images, score shards of 4 + 2
PRODUCTS = ("items.parquet", "scores.parquet", "summary.csv")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must end up equal to."""
    out = tmp_path_factory.mktemp("reliability") / "reference"
    main([*RUN, "--out", str(out)])
    return out


def generated_copy(reference: Path, out: Path) -> Path:
    """The reference with its images but no scores, as if killed right after generation."""
    shutil.copytree(reference, out, ignore=shutil.ignore_patterns("scores.parquet", "summary.csv", ".lock"))
    return out


def fork_run(argv: list[str], kill: str) -> tuple[int, int]:
    """Run `molebench ARGV` in a forked child with the kill hook set; returns (pid, wait status) once it has been
    killed, has stopped (`:stop`) or has exited."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.environ[KILL_ENV] = kill
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, os.WUNTRACED)
    return pid, status


def assert_same_folder(run: Path, reference: Path) -> None:
    """Same images byte for byte (each once), same items/scores/summary, complete, no leftovers."""
    names = sorted(p.name for p in (reference / "images").iterdir())
    assert sorted(p.name for p in (run / "images").iterdir()) == names and len(names) == 6
    for name in names:
        assert (run / "images" / name).read_bytes() == (reference / "images" / name).read_bytes(), name
    for product in PRODUCTS:
        read = pd.read_csv if product.endswith(".csv") else pd.read_parquet
        pd.testing.assert_frame_equal(read(run / product), read(reference / product), obj=product)  # exact floats
    scores = pd.read_parquet(run / "scores.parquet")
    assert not scores.duplicated(["key", "scorer", "metric"]).any() and len(scores) == 6, "one row per image×metric"
    assert pd.read_parquet(run / "items.parquet")["sha256"].notna().all(), "every image's hash recorded"
    assert RunStore(run).read_manifest().data["status"] == "complete"
    assert not list(run.rglob(".tmp-*")) and not list((run / "shards").iterdir()), "no temporaries, shards, ledgers"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


# --- kill -9, then resume ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("point,state", [
    ("generate:2", "2 images"),
    ("score:1", "1 shard"),
    ("merge", "merged, shard still there"),
    ("summary", "summary written, manifest running"),
])
def test_kill_then_resume_equals_uninterrupted(reference, tmp_path, point, state):
    out = tmp_path / "run"
    if not point.startswith("generate"):
        generated_copy(reference, out)
    _, status = fork_run([*RUN, "--out", str(out)], point)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"killed at {point}"
    store = RunStore(out)
    assert store.read_manifest().data["status"] == "running"
    shards = store.score_shard_paths()
    if point == "generate:2":
        assert len(list(store.images_dir.glob("*.png"))) == 2 and not store.scores_path.exists()
    elif point == "score:1":
        assert len(shards) == 1 and not store.scores_path.exists()
    elif point == "merge":
        assert len(shards) == 2 and len(pd.read_parquet(store.scores_path)) == 6
        assert len(store.read_scores()) == 6, "scores.parquet and its unremoved shards are read without duplicates"
    else:
        assert store.summary_path.exists() and not shards
    main([*RUN, "--out", str(out)])
    assert_same_folder(out, reference)
    manifest = RunStore(out).read_manifest()
    assert manifest.counts["generated"] == 6 and manifest.counts["scored"] == 6, "counts say what the folder holds"
    if point == "generate:2":  # the killed command's share is what it left in the folder, the resumed one the rest
        assert [(h["status"], h["counts"]) for h in manifest.history] == [
            ("interrupted", {"generated": 2, "scored": 0}), ("complete", {"generated": 4, "scored": 6})]


# --- two writers ---------------------------------------------------------------------------------------------------
def test_second_run_exits_2_naming_the_holder_and_the_first_completes(reference, tmp_path, capsys):
    out = generated_copy(reference, tmp_path / "run")
    pid, status = fork_run([*RUN, "--out", str(out)], "score:1:stop")  # the first run, held still mid-scoring
    try:
        assert os.WIFSTOPPED(status)
        capsys.readouterr()
        with pytest.raises(SystemExit) as second:
            main([*RUN, "--out", str(out)])
        err = capsys.readouterr().err
        assert second.value.code == 2
        assert f"is in use by process {pid} on {socket.gethostname()} since" in err and "Traceback" not in err
        with pytest.raises(SystemExit) as scoring:  # the score stage writes too
            main(["score", str(out)])
        assert scoring.value.code == 2
        capsys.readouterr()
        main(["verify", str(out)])  # readers take no lock; what the holder still makes is not a problem
        assert "in use by process" in capsys.readouterr().err
    finally:
        os.kill(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert_same_folder(out, reference)


def test_lock_is_released_when_its_holder_dies_and_can_be_waited_for(tmp_path):
    root = tmp_path / "run"
    pid = os.fork()
    if pid == 0:
        with run_lock(root):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(1)
    os.waitpid(pid, 0)
    with run_lock(root):  # a crashed holder never blocks: the kernel dropped its lock
        pass
    pid = os.fork()
    if pid == 0:
        with run_lock(root):
            os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(0)
    os.waitpid(pid, os.WUNTRACED)
    with pytest.raises(RunInUseError, match=f"process {pid} "):
        with run_lock(root):
            pass
    os.kill(pid, signal.SIGCONT)
    with run_lock(root, wait=True):  # blocks until the holder has let go
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# --- the file system says no ---------------------------------------------------------------------------------------
def test_full_disk_is_a_clear_error_and_a_rerun_completes(reference, tmp_path, monkeypatch, capsys):
    import molebench.store.run_store as run_store

    out = generated_copy(reference, tmp_path / "run")
    for image in sorted((out / "images").iterdir())[:2]:  # two images still to make when the disk fills up
        image.unlink()
    real, calls = run_store.atomic_write, []

    def disk_fills(path, writer):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, writer)

    monkeypatch.setattr(run_store, "atomic_write", disk_fills)
    with pytest.raises(SystemExit) as failed:
        main([*RUN, "--out", str(out)])
    err = capsys.readouterr().err
    assert failed.value.code == 1 and "Traceback" not in err
    assert f"cannot write {calls[1]}: No space left on device" in err and "rerun the same command" in err
    assert len(list((out / "images").glob("*.png"))) == 5 and not list(out.rglob(".tmp-*"))
    monkeypatch.undo()
    main([*RUN, "--out", str(out)])
    assert_same_folder(out, reference)


@pytest.fixture
def read_only(tmp_path):
    """Make a folder read-only: permission bits for a normal user; for root (which ignores them) a read-only bind
    mount, where the machine lets a test mount."""
    undo = []

    def make(folder: Path) -> Path:
        if os.geteuid() != 0:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode & ~0o222)
            undo.append(lambda: [p.chmod(p.stat().st_mode | 0o200) for p in [folder, *folder.rglob("*")]])
            return folder
        bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if bind.returncode:
            pytest.skip(f"root ignores permission bits and this machine refuses a read-only mount: {bind.stderr!r}")
        undo.append(lambda: subprocess.run(["umount", str(folder)], check=True))
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder), str(folder)], check=True)
        return folder

    yield make
    for step in reversed(undo):
        step()


def test_read_only_folder_is_read_but_never_written(reference, tmp_path, read_only, capsys):
    out = read_only(shutil.copytree(reference, tmp_path / "run", ignore=shutil.ignore_patterns(".lock")))
    before = snapshot(out)
    main(["verify", str(out)])
    assert "OK (6 images" in capsys.readouterr().out
    main(["report", str(out), "--out", str(tmp_path / "report.html"), "--resamples", "100"])
    assert (tmp_path / "report.html").stat().st_size > 0
    with pytest.raises(SystemExit) as failed:
        main([*RUN, "--out", str(out)])
    err = capsys.readouterr().err
    assert failed.value.code == 1 and f"cannot lock run folder {out}" in err and "Traceback" not in err
    assert snapshot(out) == before


# --- damaged files -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,damage", [
    ("items.parquet", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])),
    ("scores.parquet", lambda p: p.write_bytes(b"PAR1 not really parquet")),
    ("manifest.json", lambda p: p.write_text(p.read_text()[:40])),
])
def test_damaged_file_is_named_and_nothing_is_overwritten(reference, tmp_path, capsys, name, damage):
    out = shutil.copytree(reference, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    damage(out / name)
    before = snapshot(out)
    for command in ([*RUN, "--out", str(out)], ["score", str(out)], ["report", str(out), "--out",
                                                                      str(tmp_path / "r.html")]):
        with pytest.raises(SystemExit) as failed:
            main(command)
        err = capsys.readouterr().err
        assert failed.value.code == 1 and f"{out / name} is unreadable" in err and "Traceback" not in err, command
    with pytest.raises(SystemExit):
        main(["verify", str(out)])
    assert name in capsys.readouterr().out
    assert snapshot(out) == before


def test_verify_finds_a_truncated_png_and_repair_restores_the_folder(reference, tmp_path, capsys):
    out = shutil.copytree(reference, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    victim = sorted((out / "images").iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:300])
    (out / "images" / "stray.txt").write_text("not an image")  # verify names it; repair leaves it alone
    with pytest.raises(SystemExit) as found:
        main(["verify", str(out)])
    table = capsys.readouterr().out
    assert found.value.code == 1 and f"images/{victim.name}" in table and "were written" in table
    assert "images/stray.txt" in table
    (out / "images" / "stray.txt").unlink()
    main(["verify", "--repair", str(out)])
    err = capsys.readouterr().err
    assert f"deleted damaged images/{victim.name}" in err and "dropped 1 score rows" in err
    assert_same_folder(out, reference)


def test_rerun_notices_a_truncated_image_and_makes_it_again(reference, tmp_path, capsys):
    out = shutil.copytree(reference, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    victim = sorted((out / "images").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-10])
    main([*RUN, "--out", str(out)])
    err = capsys.readouterr().err
    assert f"images/{victim.name} is damaged" in err and "generating 1 images" in err
    assert "dropped 1 score rows of 1 images" in err
    assert_same_folder(out, reference)


def test_folder_without_recorded_hashes_still_verifies_and_gets_them(reference, tmp_path, capsys):
    out = shutil.copytree(reference, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    items = pd.read_parquet(out / "items.parquet").drop(columns=["sha256", "size"])  # as an older molebench wrote it
    items.to_parquet(out / "items.parquet", index=False)
    main(["verify", str(out)])
    assert "6 images have no recorded sha256" in capsys.readouterr().err
    main(["verify", "--repair", str(out)])
    assert "recorded the sha256 of 6 images" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(out / "items.parquet"), pd.read_parquet(reference / "items.parquet"))


def test_readers_never_see_a_half_merged_folder(reference, tmp_path, monkeypatch):
    """A merge between a reader's listing of the shards and its reading of them loses no row and doubles none."""
    import molebench.store.run_store as run_store

    out = generated_copy(reference, tmp_path / "run")
    scores = pd.read_parquet(reference / "scores.parquet")
    store = RunStore(out)
    store.write_score_shard("a", scores.iloc[:4])
    store.write_score_shard("b", scores.iloc[4:])
    real, merged = run_store.read_parquet, []

    def merge_meanwhile(path):
        if not merged:  # the reader has listed both shards; another process merges now
            merged.append(True)
            monkeypatch.setattr(run_store, "read_parquet", real)
            RunStore(out).merge_scores()
            monkeypatch.setattr(run_store, "read_parquet", merge_meanwhile)
        return real(path)

    monkeypatch.setattr(run_store, "read_parquet", merge_meanwhile)
    pd.testing.assert_frame_equal(store.read_scores(), scores)
    assert merged and not store.score_shard_paths()
