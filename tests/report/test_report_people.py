"""Faces and hands in the reports: conditional metrics are over the images where the part was found (n shown, read
beside the rate), `regress` gates on the directed human metrics and never on counts, and the HTML report shows the
crops and detections of a run of real photographs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from browser import launch_chromium
from molebench.cli import main
from molebench.report import people
from people_runs import open_hand, people_run, photo_run

RNG = np.random.default_rng(22)
N = 30


def _hands(quality, found) -> list[list]:
    """One open hand per image where `found`, with that image's landmark quality."""
    return [[open_hand((2, 2, 14, 14), quality=float(q))] if f else [] for q, f in zip(quality, found)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("people")
    quality = np.clip(RNG.normal(0.85, 0.03, N), 0, 1)
    everywhere, half = np.ones(N, bool), np.arange(N) % 2 == 0
    worse = np.clip(quality - 0.1 + RNG.normal(0, 0.01, N), 0, 1)
    return {
        "base": people_run(root / "base", _hands(quality, everywhere), model="base"),
        "worse_hands": people_run(root / "worse_hands", _hands(worse, everywhere), model="worse-hands"),
        "fewer_hands": people_run(root / "fewer_hands", _hands(quality, half), model="fewer-hands"),
    }


def _regress(capsys, baseline, candidate, *metrics: str) -> tuple[int, str]:
    args = ["regress", "--baseline", str(baseline), "--candidate", str(candidate), "--resamples", "999"]
    try:
        main(args + [a for m in metrics for a in ("--metric", m)])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


def test_conditional_metrics_are_over_the_images_where_the_part_was_found(runs, capsys, tmp_path):
    out = tmp_path / "c.json"
    main(["compare", str(runs["base"]), str(runs["fewer_hands"]), "--format", "json", "--out", str(out),
          "--resamples", "999", "--metric", "hps-tiny", "--metric", "hands"])
    tables = {(t["scorer"], t["metric"]): t for t in json.loads(out.read_text())["tables"]}
    quality, rate = tables[("hands", "hand_quality")], tables[("hands", "hand_found_when_asked")]
    # found vs not found counted apart: a quality rests on the prompts where both runs found a hand (every number of
    # a table rests on the pairs all its runs share), a rate on every prompt that asks for a hand
    assert [r["n"] for r in quality["rows"]] == [N // 2, N // 2]
    assert [r["n"] for r in rate["rows"]] == [N, N]  # every prompt asks for a hand ("waving a hand")
    assert [r["mean"] for r in rate["rows"]] == [1.0, 0.5]
    base_q, fewer_q = quality["rows"]
    assert fewer_q["n_pairs"] == N // 2 and fewer_q["diff"] == pytest.approx(0.0) and fewer_q["verdict"] == "n.s."
    assert rate["rows"][1]["verdict"] == "worse"
    order = [f"{s}/{m}" for s, m in tables]  # the rate first, then the count, then what is measured given a hand
    assert order.index("hands/hand_found_when_asked") < order.index("hands/hands") < order.index("hands/hand_quality")
    assert order[0] == "hps-tiny/hps"
    assert tables[("hands", "hands")]["higher_is_better"] is None

    main(["compare", str(runs["base"]), str(runs["fewer_hands"]), "--overview", "--format", "md",
          "--resamples", "999", "--metric", "hands"])
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith("| fewer-hands"))
    assert "0.500 ± " in row and f"(n={N // 2})" in row and f"(n={N})" in row  # rate over N, quality over N/2
    assert "where the part was found" in text


def test_regress_fails_on_a_drop_of_hand_quality_or_of_the_hand_rate(runs, capsys):
    assert _regress(capsys, runs["base"], runs["base"])[0] == 0
    code, out = _regress(capsys, runs["base"], runs["worse_hands"], "hands/hand_quality")
    assert code == 1 and "hands/hand_quality" in out and "SIGNIFICANTLY WORSE" in out
    code, out = _regress(capsys, runs["base"], runs["fewer_hands"], "hands/hand_found_when_asked")
    assert code == 1 and "SIGNIFICANTLY WORSE" in out
    # the hands it still finds are as good: the quality, paired where both found one, does not fail
    code, out = _regress(capsys, runs["base"], runs["fewer_hands"], "hands/hand_quality")
    assert code == 0 and f"over {N // 2} prompts" in out


def test_regress_never_gates_counts(runs, capsys):
    code, out = _regress(capsys, runs["base"], runs["fewer_hands"], "hands/hands")
    assert code == 0 and "not gated (the metric has no better direction)" in out


def test_report_shows_crops_and_detections_of_real_photographs(tmp_path):
    run = photo_run(tmp_path / "photos")
    out = tmp_path / "site" / "report.html"
    main(["report", str(run), "--out", str(out), "--metric", "hands/hand_quality", "--resamples", "999"])
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(out.resolve().as_uri())
        page.wait_for_load_state("load")
        dom = page.evaluate("""() => ({
            heading: document.querySelector('#people') && document.querySelector('#people').innerText,
            crops: Array.from(document.querySelectorAll('.people figure.crop')).map(f => ({
                part: f.dataset.part, rank: f.dataset.rank, presence: f.dataset.presence, quality: f.dataset.quality,
                anatomy: f.dataset.anatomy, width: f.querySelector('img').naturalWidth,
                shown: f.querySelector('img').getBoundingClientRect().width, caption: f.innerText})),
            drawn: Array.from(document.querySelectorAll('.people figure.detections')).map(f => {
                const svg = f.querySelector('svg').getBoundingClientRect();
                const view = f.querySelector('svg').viewBox.baseVal;
                return {faces: +f.dataset.faces, hands: +f.dataset.hands, width: svg.width,
                    view: Math.max(view.width, view.height),
                    boxes: Array.from(f.querySelectorAll('rect.box')).map(r => {
                        const b = r.getBoundingClientRect();
                        return {part: r.classList[1], x: (b.x - svg.x) * view.width / svg.width,
                                w: b.width * view.width / svg.width, x0: +r.getAttribute('x'),
                                w0: +r.getAttribute('width')};
                    }),
                    bones: f.querySelectorAll('line.bone').length,
                    keypoints: f.querySelectorAll('circle.keypoint').length};
            }),
        })""")
    assert dom["heading"] == "Faces and hands: what was measured"
    faces = [c for c in dom["crops"] if c["part"] == "face"]
    hands = [c for c in dom["crops"] if c["part"] == "hand"]
    assert [c["rank"] for c in faces] == ["worst", "best", "best"] and len(hands) == 1  # few crops: all shown
    assert all(c["width"] > 0 and c["shown"] == 128 for c in dom["crops"])  # decoded and laid out
    best, worst = (next(c for c in faces if c["rank"] == r) for r in ("best", "worst"))
    assert float(best["presence"]) > float(worst["presence"]) > 0.5  # faces have no landmark quality: presence
    assert best["quality"] is None and "quality —" in best["caption"]
    assert float(hands[0]["quality"]) == pytest.approx(0.9) and 0 < float(hands[0]["anatomy"]) <= 1
    assert "anatomy" in hands[0]["caption"]
    assert sum(d["faces"] for d in dom["drawn"]) == 3 and sum(d["hands"] for d in dom["drawn"]) == 1
    hand_image = next(d for d in dom["drawn"] if d["hands"])
    assert hand_image["bones"] == 21 and hand_image["keypoints"] == 21 + 6  # hand skeleton + the face's 6 points
    for drawn in dom["drawn"]:
        assert drawn["width"] == 256 and drawn["view"] == 256  # in the photograph's own pixels (256 px at most)
        for box in drawn["boxes"]:  # each box is drawn where the detector put it on the image (±1.5 px stroke)
            assert box["x"] == pytest.approx(box["x0"], abs=1.5) and box["w"] == pytest.approx(box["w0"], abs=3)


def test_a_run_without_stored_detections_says_so(runs, tmp_path):
    """Scores that count hands but no regions/ folder (an older molebench): the section says the detections are not
    stored rather than that nothing was found; the section's modules never import torch."""
    from molebench.report.people_html import section
    from molebench.report.runs import load_run

    old = shutil.copytree(runs["fewer_hands"], tmp_path / "old")
    shutil.rmtree(old / "regions")
    text = section([load_run(old)], 3, lambda label: "")
    assert f"its scores count {N // 2} faces and hands, but no detections are stored" in text
    code = "import sys, molebench.report.people_html; assert 'torch' not in sys.modules, 'the report imported torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_metric_kinds_and_order():
    assert [people.given(s, m) for s, m in [("hands", "hand_quality"), ("faces", "face_presence"),
                                            ("hps-v2.1@hand", "hps"), ("hands", "hands"),
                                            ("hands", "hand_found_when_asked"), ("hps-v2.1", "hps"),
                                            ("hps-v2.1@elbow", "hps")]] == ["hand", "face", "hand", None, None, None,
                                                                            None]
    stored = [("faces", "face_quality"), ("hands", "hand_anatomy"), ("hps-v2.1", "hps"), ("hps-v2.1@hand", "hps"),
              ("hands", "hands"), ("faces", "faces"), ("hands", "hand_found_when_asked"), ("aux", "score"),
              ("faces", "face_found_when_asked")]
    assert people.order(stored) == [
        ("hps-v2.1", "hps"), ("aux", "score"),
        ("faces", "face_found_when_asked"), ("faces", "faces"), ("faces", "face_quality"),
        ("hands", "hand_found_when_asked"), ("hands", "hands"), ("hands", "hand_anatomy"), ("hps-v2.1@hand", "hps")]


def test_regress_says_when_no_image_has_a_value_in_both_runs(runs, capsys, tmp_path):
    nowhere = people_run(tmp_path / "nowhere", _hands(np.zeros(N), np.zeros(N, bool)), model="no-hands")
    code, out = _regress(capsys, runs["base"], nowhere, "hands/hand_quality", "hands/hand_found_when_asked")
    assert code == 1  # the rate fails: no hand drawn where the prompt asks for one
    assert "hands/hand_quality: no image has a value in both runs" in out and "nan" not in out
