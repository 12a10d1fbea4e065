"""CLIP-T, FID and KID: parity with torchmetrics on tiny weights, listing and missing files, and set-level values
through a real tiny run: stored, resumed after kill -9, shown by compare, report, leaderboard and regress."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT
from molebench.cli import main
from scorer_fixtures import PARITY_PROMPTS, parity_images

pytestmark = pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance`:UserWarning")


def _uint8(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)


# --- parity -------------------------------------------------------------------------------------------------------
def test_clip_t_parity_with_torchmetrics_clipscore():
    """Per image equal to torchmetrics' CLIPScore arithmetic on the same batches (≤ 1e-5), clamped at 0 like its
    functional clip_score of one pair; the mean over positive pairs equals the CLIPScore metric."""
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update
    from torchmetrics.multimodal.clip_score import CLIPScore

    from molebench.registry import SCORERS
    from molebench_testing.reference import TorchmetricsCLIP

    scorer = SCORERS.get("clip-t-tiny")(batch_size=4)
    images = [image.convert("RGB") for image in parity_images()]
    ours = scorer.score(images, PARITY_PROMPTS)["clip_t"]
    model = TorchmetricsCLIP(scorer.model)
    with torch.no_grad():
        reference = np.concatenate([
            torch.clamp(_clip_score_update([_uint8(i) for i in images[s : s + 4]], PARITY_PROMPTS[s : s + 4], model,
                                           scorer.processor)[0], min=0).numpy() for s in range(0, len(images), 4)])
        positive = [i for i, v in enumerate(ours) if v > 0]
        metric = CLIPScore(model_name_or_path=lambda: (model, scorer.processor))
        metric.update([_uint8(images[i]) for i in positive], [PARITY_PROMPTS[i] for i in positive])
        whole = float(metric.compute())
    assert np.abs(ours - reference).max() <= 1e-5
    assert 0 < len(positive) < len(images)  # the tiny model has negative cosines too: the clamp is exercised
    assert abs(whole - ours[positive].mean()) <= 1e-5


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory) -> Path:
    """Six real photographs (scikit-image) of different sizes, some non-square: a reference set."""
    folder = tmp_path_factory.mktemp("reference")
    for index, image in enumerate(parity_images()[:6]):
        image.convert("RGB").save(folder / f"real_{index}.png")
    return folder


def test_fid_and_kid_parity_with_torchmetrics(reference_folder):
    """The cached-feature pipeline equals torchmetrics' FID and KID fed the images through the same extractor."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    from molebench.registry import SCORERS
    from molebench.scoring.feature_nets import tiny_feature_net
    from molebench.scoring.fid import KID_SEED, KID_SUBSETS
    from molebench.scoring.reference import file_sources, reference_sources
    from molebench.scoring.sets import FeatureCache, centre_square, fill_features, seeded

    generated = [img.convert("RGB") for img in parity_images()[4:]]
    gen_folder = reference_folder.parent / "generated"
    gen_folder.mkdir(exist_ok=True)
    for index, image in enumerate(generated):
        image.save(gen_folder / f"g{index}.png")
    values = {}
    for name in ("fid-tiny", "kid-tiny"):
        scorer = SCORERS.get(name)(reference=reference_folder, batch_size=2)
        scorer.bind_reference(None)
        caches = FeatureCache(gen_folder.parent / f"gen-{name}"), FeatureCache(gen_folder.parent / f"ref-{name}")
        gen_keys, _ = fill_features(scorer, caches[0], file_sources(sorted(gen_folder.iterdir())), 4)
        ref_keys, _ = fill_features(scorer, caches[1], scorer.reference_images, 4)
        values.update(scorer.compute(caches[0].batches(gen_keys, 3), caches[1].batches(ref_keys, 3), 16,
                                     len(gen_keys), len(ref_keys)))
    net = tiny_feature_net()
    real = [source.open() for source in reference_sources(reference_folder)]
    fid = FrechetInceptionDistance(feature=net)
    kid = KernelInceptionDistance(feature=net, subsets=KID_SUBSETS, subset_size=min(len(real), len(generated)))
    with torch.no_grad():
        for metric in (fid, kid):
            for images, is_real in ((real, True), (generated, False)):
                for image in images:  # one at a time: the images differ in size
                    metric.update(centre_square(image).unsqueeze(0), real=is_real)
        with seeded(KID_SEED):
            kid_mean, kid_std = kid.compute()
        expected_fid = float(fid.compute())
    assert expected_fid > 0 and abs(values["fid"][0] - expected_fid) <= 1e-5 * max(1.0, expected_fid)
    assert abs(values["kid"][0] - float(kid_mean)) <= 1e-6 and abs(values["kid"][1] - float(kid_std)) <= 1e-6


# --- listing and missing files ------------------------------------------------------------------------------------
def test_listing_and_weights_name_every_file(capsys):
    main(["scorers"])
    rows = {line.split("│")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.count("│") > 3}
    for name in ("clip-t", "clip-t-tiny", "fid", "fid-tiny", "kid", "kid-tiny"):
        assert name in rows, name
    assert "clip_t ↑" in rows["clip-t"] and "fid ↓" in rows["fid"] and "kid ↓" in rows["kid-tiny"]
    assert "set (one value per run)" in rows["fid-tiny"] and "faces ·" in rows["faces"]
    # the human instruments' unlisted metrics take the default direction, as in the run's fingerprint
    assert "face_found_when_asked ↑" in rows["faces"] and "face_quality ↑" in rows["faces"]
    assert "hand_found_when_asked ↑" in rows["hands"] and "hands ·" in rows["hands"]
    main(["weights", "--json"])
    report = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name in ("fid", "kid"):
        assert not report[name]["present"]
        assert "weights-inception-2015-12-05-6726825d.pth" in report[name]["where"]
        assert "URL_INCEPTION_V3" in report[name]["fetch"]
    assert "openai/clip-vit-large-patch14" in report["clip-t"]["fetch"]
    assert "model.safetensors" in report["clip-t"]["fetch"]
    assert report["fid-tiny"]["present"] and report["clip-t-tiny"]["present"]


@pytest.mark.parametrize("scorer, named", [("fid", "weights-inception-2015-12-05-6726825d.pth"),
                                           ("clip-t", "openai/clip-vit-large-patch14")])
def test_missing_weights_exit_2_naming_the_file(tmp_path, reference_folder, scorer, named, capsys):
    out = tmp_path / "r"
    with pytest.raises(SystemExit) as exc:
        main(["run", "--model", "tiny-sd15", "--limit", "2", "--steps", "2", "--scorers", scorer,
              "--reference", str(reference_folder), "--out", str(out)])
    assert exc.value.code == 2 and named in " ".join(capsys.readouterr().err.split())
    assert not out.exists()  # refused before anything was written


def test_a_foreign_inception_file_is_refused(tmp_path, reference_folder, monkeypatch, capsys):
    junk = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    junk.write_bytes(b"not the FID Inception")
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_INCEPTION", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["run", "--model", "tiny-sd15", "--limit", "2", "--steps", "2", "--scorers", "kid",
              "--reference", str(reference_folder), "--out", str(tmp_path / "r")])
    assert exc.value.code == 1 and "sha256 does not start with 6726825d" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "r").exists()


def test_an_inception_replica_is_taken_from_a_replica_folder_only_and_marked(tmp_path, monkeypatch):
    """molebench.replicas' random-weight Inception cannot have the release's sha256: it is accepted from a replica
    folder only, its scores say `replica: true`, and its features never share the real extractor's cache folder."""
    from molebench.errors import InputError
    from molebench.registry import SCORERS
    from molebench.runner.score_step import mark_replica
    from molebench.scoring.fid import INCEPTION_FILE, inception_path

    real_tag = SCORERS.get("fid")().feature_tag
    replica = tmp_path / "hub" / "molebench-replicas" / "fid"
    replica.mkdir(parents=True)
    (replica / INCEPTION_FILE).write_bytes(b"random weights")
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_INCEPTION", str(replica))
    assert inception_path() == replica / INCEPTION_FILE
    scorer = SCORERS.get("kid")()
    assert mark_replica(scorer.fingerprint())["replica"] is True
    assert scorer.feature_tag != real_tag and scorer.feature_tag.startswith("inception-replica-")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(replica / INCEPTION_FILE, elsewhere / INCEPTION_FILE)  # the same bytes outside a replica folder
    monkeypatch.setenv("MOLEBENCH_WEIGHTS_INCEPTION", str(elsewhere))
    with pytest.raises(InputError, match="sha256 does not start with 6726825d"):
        inception_path()
    assert SCORERS.get("fid")().feature_tag == real_tag


def test_reference_problems_are_named(tmp_path, reference_folder):
    from molebench.errors import InputError
    from molebench.scoring.reference import reference_sources

    with pytest.raises(SystemExit) as exc:
        main(["run", "--model", "tiny-sd15", "--limit", "2", "--steps", "2", "--scorers", "fid-tiny",
              "--out", str(tmp_path / "r")])
    assert exc.value.code == 1 and not (tmp_path / "r").exists()
    coco = tmp_path / "val2014"
    coco.mkdir()
    Image.new("RGB", (8, 8)).save(coco / "COCO_val2014_000000000042.jpg")
    assert len(reference_sources(coco, [42])) == 1
    with pytest.raises(InputError, match=r"lacks 1 of the 2 COCO images.*image_id 7 \(COCO_val2014_000000000007"):
        reference_sources(coco, [42, 7])

    # the run's prompts pick their COCO images by the captions' image_id, each once, from a folder or a zip
    import zipfile

    from molebench.benchmarks.base import PromptItem, PromptSet
    from molebench.registry import SCORERS
    from molebench.runner.set_score_step import bind_references

    Image.new("RGB", (8, 8)).save(coco / "000000000007.jpg")
    archive = tmp_path / "val2014.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(coco.iterdir()):
            handle.write(path, f"val2014/{path.name}")
    prompts = PromptSet("x", (PromptItem("p1", "a man", {"image_id": 42}), PromptItem("p2", "a girl", {"image_id": 7})))
    for reference in (coco, archive):
        scorer = SCORERS.get("fid-tiny")(reference=reference)
        bind_references([scorer], prompts, pd.DataFrame({"prompt_id": ["p2", "p2", "p1"]}))
        assert [Path(s.name).name for s in scorer.reference_images] == ["000000000007.jpg",
                                                                         "COCO_val2014_000000000042.jpg"]
        assert scorer.reference_images[0].open().size == (8, 8)
        assert [Path(s.name).name for s in scorer.reference_for(["p1", "p1"])] == ["COCO_val2014_000000000042.jpg"]


# --- set-level values through a tiny run --------------------------------------------------------------------------
def _run(out: Path, reference: Path, *extra: str) -> None:
    main(["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit", "6", "--steps", "2",
          "--scorers", "hps-tiny,fid-tiny", "--scorer-batch-size", "1", "--reference", str(reference),
          "--out", str(out), *extra])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, reference_folder):
    root = tmp_path_factory.mktemp("runs")
    _run(root / "a", reference_folder)
    _run(root / "b", reference_folder, "--guidance", "1.5")
    return root / "a", root / "b"


def _fid(run: Path) -> pd.Series:
    rows = pd.read_parquet(run / "set_scores.parquet")
    return rows[rows["scorer"] == "fid-tiny"].iloc[0]


def test_run_writes_a_set_level_value(two_runs, capsys):
    a, b = two_runs
    row = _fid(a)
    assert row["group"] == "all" and row["n"] == 6 and row["n_reference"] == 6 and row["value"] > 0
    assert np.isnan(row["std"]) and row["scorer_version"].startswith("fid-tiny/")
    assert _fid(b)["value"] != row["value"] and _fid(b)["reference"] == row["reference"]
    summary = pd.read_csv(a / "summary.csv")
    fid = summary[summary["scorer"] == "fid-tiny"].iloc[0]
    assert fid["level"] == "set" and fid["n_reference"] == 6 and not fid["higher_is_better"]
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["scorers"]["fid-tiny"]["higher_is_better"] == {"fid": False}
    assert manifest["scorers"]["hps-tiny"]["higher_is_better"] == {"hps": True}



def test_verify_checks_set_level_values(two_runs, tmp_path, capsys):
    """A folder with set-level values verifies clean; a value computed on other images than the folder holds is
    named (its summary row is not taken for a per-image count)."""
    from molebench.store.verify import verify

    a, _ = two_runs
    assert verify(a)[1] == []
    copy = tmp_path / "stale"
    shutil.copytree(a, copy)
    rows = pd.read_parquet(copy / "set_scores.parquet")
    rows["images_sha256"] = "0" * 16
    rows.to_parquet(copy / "set_scores.parquet", index=False)
    problems = verify(copy)[1]
    assert [(p.check, p.path) for p in problems] == [("set scores", "set_scores.parquet")]
    assert "computed on other images" in problems[0].detail

def test_compare_report_leaderboard_and_regress(two_runs, tmp_path, capsys):
    a, b = two_runs
    better, worse = sorted(two_runs, key=lambda run: _fid(run)["value"])
    capsys.readouterr()
    main(["compare", str(worse), str(better), "--format", "json", "--resamples", "200"])
    tables = json.loads(capsys.readouterr().out)["tables"]
    fid = next(t for t in tables if t["scorer"] == "fid-tiny")
    assert fid["level"] == "set" and fid["higher_is_better"] is False and "↓" in fid["title"]
    assert fid["rows"][1]["verdict"] == "better (no test)" and fid["rows"][1]["diff"] < 0
    assert fid["rows"][1]["n_reference"] == 6 and fid["rows"][1]["p_value"] is None
    main(["compare", str(worse), str(better), "--resamples", "200"])  # the terminal table renders set rows
    assert "6 vs 6 ref" in capsys.readouterr().out

    page = tmp_path / "report.html"
    main(["report", str(a), str(b), "--out", str(page), "--resamples", "200"])
    html = page.read_text()
    assert "fid-tiny/fid ↓" in html and "6 vs 6 ref" in html

    board = tmp_path / "lb.csv"
    main(["leaderboard", "export", str(a), str(b), "--out", str(board), "--resamples", "200"])
    rows = pd.read_csv(board)
    fid_rows = rows[rows["scorer"] == "fid-tiny"]
    assert len(fid_rows) == 2 and set(fid_rows["level"]) == {"set"} and set(fid_rows["n_reference"]) == {6}
    assert not fid_rows["higher_is_better"].any() and rows[rows["scorer"] == "hps-tiny"]["higher_is_better"].all()

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # candidate with the higher FID: worse, exit 1
        main(["regress", "--baseline", str(better), "--candidate", str(worse), "--metric", "fid-tiny"])
    assert exc.value.code == 1 and "lower is better" in capsys.readouterr().out
    main(["regress", "--baseline", str(worse), "--candidate", str(better), "--metric", "fid-tiny"])  # exit 0
    assert "verdict: PASS" in capsys.readouterr().out
    gap = abs(_fid(worse)["value"] - _fid(better)["value"])
    main(["regress", "--baseline", str(better), "--candidate", str(worse), "--metric", "fid-tiny",
          "--max-drop", str(gap * 1.01)])  # a tolerated rise passes
    assert "verdict: PASS" in capsys.readouterr().out


def test_kill_9_then_resume_gives_the_same_value(two_runs, tmp_path, capsys):
    """A copy of a finished run without its set-level value and feature shards, scored again in a child process
    that is killed (SIGKILL, by the fault hook) right after the first feature shard of its images is written."""
    out = tmp_path / "killed"
    shutil.copytree(two_runs[0], out, ignore=shutil.ignore_patterns("set_scores.parquet", "features"))
    command = [sys.executable, "-m", "molebench", "score", str(out), "--scorers", "fid-tiny", "--batch-size", "1"]
    env = {**os.environ, "MOLEBENCH_TEST_KILL_AFTER": "features:1"}
    killed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "set_scores.parquet").exists()
    assert len(list((out / "features").rglob("*.npz"))) == 1
    capsys.readouterr()
    main(["score", str(out), "--scorers", "fid-tiny", "--batch-size", "1"])
    err = " ".join(capsys.readouterr().err.split())
    assert "features of 2 generated and 0 reference images extracted now (4 and 6 cached)" in err
    assert _fid(out)["value"] == pytest.approx(_fid(two_runs[0])["value"], abs=1e-9)

    # a crash after some feature shards: only the missing features are extracted, the value is the same
    shards = sorted((out / "features").rglob("*.npz"))
    assert sorted(p.stem.rsplit("-", 1)[1] for p in shards) == ["2", "4"]  # 6 images, chunks of 4 (batch 1 × 4)
    next(p for p in shards if p.stem.endswith("-4")).unlink()
    (out / "set_scores.parquet").unlink()
    capsys.readouterr()
    main(["score", str(out), "--scorers", "fid-tiny"])
    err = capsys.readouterr().err
    assert "features of 4 generated and 0 reference images extracted now (2 and 6 cached)" in " ".join(err.split())
    assert _fid(out)["value"] == pytest.approx(_fid(two_runs[0])["value"], abs=1e-9)


def test_paper_protocol_run_has_one_value_per_repeat(tmp_path, reference_folder):
    """`--protocol paper`: FID of the whole run and of each repeat's sample (groups repeat-0..2), from one
    extraction of the union's features."""
    out = tmp_path / "paper"
    main(["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--protocol", "paper", "--sample-size", "3",
          "--steps", "2", "--scorers", "fid-tiny", "--reference", str(reference_folder), "--out", str(out)])
    rows = pd.read_parquet(out / "set_scores.parquet").set_index("group")
    repeats = pd.read_parquet(out / "repeats.parquet")
    assert list(rows.index) == ["all", "repeat-0", "repeat-1", "repeat-2"]
    assert rows.loc["all", "n"] == len(repeats) == 9  # every repeat's own images
    assert (rows.loc[["repeat-0", "repeat-1", "repeat-2"], "n"] == 3).all() and (rows["n_reference"] == 6).all()
    assert rows["value"].nunique() > 1
    from molebench.report.compare import compare
    from molebench.report.runs import load_runs

    table = compare(load_runs([out]), settings=None).tables
    fid = next(t for t in table if t.scorer == "fid-tiny").rows[0]
    assert fid.n_repeats == 3 and fid.repeats_mean == pytest.approx(rows.loc[["repeat-0", "repeat-1", "repeat-2"],
                                                                             "value"].mean())
