"""The run folder's contract (molebench.store.manifest): a manifest that lacks or garbles a field is named by every
command with exit 1; older manifests still read; a command stopped by Ctrl-C or SIGTERM says what it finished and
leaves the manifest `interrupted` with true counts."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from molebench.cli import main
from molebench.store import RunStore
from molebench.store.manifest import COMPLETE, INTERRUPTED, Manifest, ManifestError
from test_reliability import fork_run

RUN = ["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit", "2", "--seeds", "0,1", "--steps", "2",
       "--batch-size", "1", "--scorers", "hps-tiny"]  # 4 images


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("contract") / "run"
    main([*RUN, "--out", str(out)])
    return out


def copy_with_manifest(finished: Path, tmp_path: Path, manifest: dict) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(finished, out, ignore=shutil.ignore_patterns(".lock"))
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code)


HOSTILE = [
    ({"status": "complete"}, "identity_sha256", "is missing"),
    ("drop:model", "model.name", "is missing"),
    ("set:scorers=[]", "scorers", "not a JSON object"),
    ("set:status=done", "status", "not one of running, complete, interrupted"),
    ("set:history=[1]", "history[0]", "not a command record"),
]


def hostile(finished: Path, change) -> dict:
    if isinstance(change, dict):
        return change
    data = json.loads((finished / "manifest.json").read_text())
    action, _, rest = change.partition(":")
    if action == "drop":
        data.pop(rest)
        data["config"].pop(rest, None)
    else:
        name, _, value = rest.partition("=")
        data[name] = json.loads(value) if value[:1] in "[{" else value
    return data


@pytest.mark.parametrize("change,field,problem", HOSTILE)
def test_every_command_names_the_manifest_field_and_exits_1(finished, tmp_path, capsys, change, field, problem):
    run = copy_with_manifest(finished, tmp_path, hostile(finished, change))
    for argv in (["score", str(run), "--scorers", "hps-tiny"], ["verify", str(run)], ["compare", str(run), str(finished)],
                 ["report", str(run), "--out", str(tmp_path / "report")]):
        assert exit_code(argv) == 1, argv
        said = capsys.readouterr()
        text = " ".join((said.out + said.err).split())  # verify's table (stdout) may wrap the detail
        assert "manifest.json" in text and f"'{field}'" in text and problem in text, (argv, text)
        assert "Traceback" not in said.err


def test_a_garbled_manifest_is_not_reported_ok(finished, tmp_path, capsys):
    run = copy_with_manifest(finished, tmp_path, {"status": "complete"})
    assert exit_code(["verify", str(run)]) == 1
    assert "OK" not in capsys.readouterr().out


def test_an_older_manifest_without_version_or_history_still_reads(finished, tmp_path, capsys):
    data = json.loads((finished / "manifest.json").read_text())
    assert data["version"] == 2
    for name in ("version", "history", "settings", "benchmark"):
        data.pop(name)
    run = copy_with_manifest(finished, tmp_path, data)
    manifest = RunStore(run).read_manifest()
    assert manifest.version == 1 and manifest.benchmark_name == "tiny-human" and manifest.is_complete
    assert manifest.settings == data["identity"]["settings"], "settings fall back to the identity's"
    assert main(["compare", str(run), str(finished)]) is None
    main(["score", str(run), "--scorers", "hps-tiny"])  # and a later command rebuilds the history
    assert RunStore(run).read_manifest().history[0]["stage"] == "run"


def test_parse_refuses_what_is_not_an_object():
    with pytest.raises(ManifestError, match="not a JSON object"):
        Manifest.parse([], Path("x/manifest.json"))


def fork_main(argv: list[str], kill: str) -> int:
    """`molebench ARGV` in a forked child that signals itself at a fault point; returns its exit code."""
    _, status = fork_run(argv, kill)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


@pytest.mark.parametrize("kind,code", [("int", 130), ("term", 143)])
def test_a_stopped_run_says_what_it_finished_and_the_manifest_says_interrupted(tmp_path, capfd, kind, code):
    out = tmp_path / "run"
    assert fork_main([*RUN, "--out", str(out)], f"generate:2:{kind}") == code
    err = capfd.readouterr().err
    assert f"interrupted: {out} holds 2 of 4 images" in err and "run the same command again to continue" in err
    assert "Traceback" not in err
    manifest = RunStore(out).read_manifest()
    assert manifest.status == INTERRUPTED and manifest.counts["generated"] == 2
    assert manifest.history[-1]["status"] == INTERRUPTED and manifest.history[-1]["counts"] == {"generated": 2,
                                                                                               "scored": 0}
    main([*RUN, "--out", str(out)])
    manifest = RunStore(out).read_manifest()
    assert manifest.status == COMPLETE and [h["counts"]["generated"] for h in manifest.history] == [2, 2]


def test_a_stopped_score_command_says_so_too(finished, tmp_path, capfd):
    run = tmp_path / "copy"
    shutil.copytree(finished, run, ignore=shutil.ignore_patterns(".lock"))
    assert fork_main(["score", str(run), "--scorers", "hps-tiny,aesthetic-tiny", "--batch-size", "1"],
                     "score:1:int") == 130
    err = capfd.readouterr().err
    assert f"interrupted: {run} holds 4 of 4 images" in err
    manifest = RunStore(run).read_manifest()
    assert manifest.status == INTERRUPTED and manifest.history[-1]["stage"] == "score"
