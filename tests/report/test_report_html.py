"""`molebench report`: the static page opens in headless Chromium and shows its tables, plots and image grid;
one smoke test drives the whole chain on real tiny runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from browser import launch_chromium
from molebench.cli import main
from report_runs import make_run

RNG = np.random.default_rng(3)


def _open(path):
    """DOM facts of the page as Chromium renders it."""
    with launch_chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        return page.evaluate("""() => ({
            title: document.title,
            tables: Array.from(document.querySelectorAll('table.comparison')).map(t =>
                Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim()))),
            headings: Array.from(document.querySelectorAll('h2,h3')).map(h => h.innerText),
            plots: Array.from(document.querySelectorAll('figure.plot')).map(f => ({kind: f.dataset.kind,
                w: f.querySelector('svg').getBoundingClientRect().width,
                h: f.querySelector('svg').getBoundingClientRect().height, page: document.body.clientWidth})),
            thumbs: Array.from(document.querySelectorAll('table.grid img.thumb')).map(i => i.naturalWidth),
            gridRows: Array.from(document.querySelectorAll('table.grid tr')).map(r => r.className),
            warn: document.querySelector('#mismatch') ? document.querySelector('#mismatch').innerText : null,
            external: Array.from(document.querySelectorAll('[src],link[href]')).map(e => e.getAttribute('src') ||
                e.getAttribute('href')).filter(u => !u.startsWith('data:')),
        })""")


def test_report_opens_in_chromium_with_tables_plots_and_grid(tmp_path):
    base = RNG.normal(0.25, 0.02, size=(12, 2))
    a = make_run(tmp_path / "a", base, model="sd15", seeds=(0, 1), extra={"aux/score": RNG.normal(size=(12, 2))})
    b = make_run(tmp_path / "b", base + 0.01, model="mole-sd15", seeds=(0, 1),
                 extra={"aux/score": RNG.normal(size=(12, 2))})
    out = tmp_path / "site" / "report.html"
    main(["report", str(a), str(b), "--out", str(out), "--top", "2", "--resamples", "999"])
    dom = _open(out)

    assert dom["title"] == "molebench report"
    assert len(dom["tables"]) == 2  # one per metric
    header, ref_row, cand_row = dom["tables"][1]
    assert header[:3] == ["run", "mean", "95% CI"] and ref_row[0] == "sd15 (ref)"
    assert cand_row[0] == "mole-sd15" and cand_row[-2] == "better" and cand_row[5] == "+1.00"  # mean's precision
    assert any(h.startswith("bench-x — hps-tiny/hps ×100") for h in dom["headings"])
    assert sorted(p["kind"] for p in dom["plots"]) == ["distribution", "distribution", "forest", "means"]
    for plot in dom["plots"]:  # inline SVG at the page's content width
        assert plot["w"] > 0.9 * (plot["page"] - 64) and plot["h"] > 150
    best_worst = ["", "best", "best", "worst", "worst"]  # per metric, then where the two runs differ most
    assert dom["gridRows"] == (best_worst + ["", "differ", "differ"]) * 2
    assert len(dom["thumbs"]) == (4 + 2) * 2 * 2 and all(w == 160 for w in dom["thumbs"])
    assert dom["warn"] is None and dom["external"] == []  # self-contained: nothing fetched


def test_mismatch_is_shown_on_the_page(tmp_path):
    a = make_run(tmp_path / "a", RNG.normal(0.25, 0.02, 8), model="sd15")
    b = make_run(tmp_path / "b", RNG.normal(0.25, 0.02, 6), model="sdxl")
    out = tmp_path / "r.html"
    with pytest.raises(SystemExit) as exc:
        main(["report", str(a), str(b), "--out", str(out)])
    assert exc.value.code == 2 and not out.exists()
    main(["report", str(a), str(b), "--out", str(out), "--allow-mismatch", "--resamples", "999"])
    dom = _open(out)
    assert "image counts differ" in dom["warn"]
    assert len(dom["tables"]) == 1 and len(dom["plots"]) == 3


def test_smoke_on_real_tiny_runs(tmp_path, capsys):
    """A real run of the tiny pipeline (and a copy: one generation keeps the test cheap) through compare, report,
    leaderboard and regress; pairing across runs whose image keys differ is covered by the synthetic tests."""
    main(["run", "--model", "tiny-sd15", "--benchmark", "tiny-human", "--limit", "2", "--seeds", "0,1", "--steps", "2",
          "--out", str(tmp_path / "real")])
    shutil.copytree(tmp_path / "real", tmp_path / "again")
    capsys.readouterr()
    runs = [str(tmp_path / "real"), str(tmp_path / "again")]

    main(["compare", *runs, "-f", "json", "--resamples", "999"])
    table = json.loads(capsys.readouterr().out)["tables"][0]
    assert (table["benchmark"], table["scorer"], table["scale"]) == ("tiny-human", "hps-tiny", 100)
    assert [r["n"] for r in table["rows"]] == [4, 4] and table["rows"][1]["n_pairs"] == 2
    assert table["rows"][1]["verdict"] == "n.s." and table["rows"][1]["diff"] == 0.0
    assert table["rows"][0]["label"] != table["rows"][1]["label"]  # same model: labels carry the folder

    main(["report", *runs, "--out", str(tmp_path / "report.html"), "--resamples", "999"])
    dom = _open(tmp_path / "report.html")
    # best and worst of the 4 images (2 prompts × 2 seeds), both runs; identical runs: no "differ most" grid
    assert len(dom["tables"]) == 1 and len(dom["plots"]) == 3 and len(dom["thumbs"]) == 4 * 2

    main(["leaderboard", "export", *runs, "--out", str(tmp_path / "lb.csv")])
    assert len((tmp_path / "lb.csv").read_text().splitlines()) == 3

    try:
        main(["regress", "--baseline", runs[0], "--candidate", runs[1], "--resamples", "999"])
        code = 0
    except SystemExit as exc:
        code = exc.code
    assert code == 0 and "verdict: PASS" in capsys.readouterr().out
