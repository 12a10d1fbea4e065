"""Output people can read (issue 27, group E): the HTML report at 1,400 px (runs table without a scrollbar, five
panel titles unclipped, "no data" panels, count histograms without an offset such as ×1e-9, best/worst grids over
every seed ranked per metric, the prompts where runs differ most), and the terminal's piped tables and help."""

from __future__ import annotations

import numpy as np
import pytest

from browser import launch_chromium
from molebench.cli import main
from report_runs import make_run

RNG = np.random.default_rng(14)
N = 6


def _extra(shift: float) -> dict[str, np.ndarray]:
    return {"aux/score": RNG.normal(shift, 0.1, (N, 2)), "aux2/other": RNG.normal(0, 1, (N, 2)),
            "counts/faces": np.ones((N, 2)),  # a count that never varies: its histogram has one bar
            "broken/value": np.full((N, 2), np.nan)}  # no finite value at all


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("readable")
    base = RNG.normal(0.2, 0.02, (N, 2))
    moved = base.copy()
    moved[3, 1] += 0.2  # prompt 3 with seed 1: where the two runs differ most
    a = make_run(root / "a" / "a-very-long-run-folder-name-for-the-baseline-model", base, model="baseline-model",
                 seeds=(0, 1), extra=_extra(0.0))
    b = make_run(root / "b" / "a-very-long-run-folder-name-for-the-candidate-model", moved, model="candidate-model",
                 seeds=(0, 1), extra=_extra(0.5))
    out = root / "report.html"
    main(["report", str(a), str(b), "--out", str(out), "--top", "2", "--resamples", "200"])
    with launch_chromium() as browser:
        view = browser.new_page(viewport={"width": 1400, "height": 1000})
        view.goto(out.resolve().as_uri())
        yield view.evaluate("""() => {
          const box = e => e.getBoundingClientRect();
          const means = document.querySelector("figure[data-kind='means'] svg");
          return {
            runsWidth: document.querySelector('table.runs').scrollWidth, body: document.body.clientWidth,
            pageScroll: document.documentElement.scrollWidth,
            titles: [...means.querySelectorAll('text')].filter(t => /\\//.test(t.textContent) ||
                t.closest('g[id*=text]')).map(t => ({r: box(t).right, l: box(t).left})),
            svg: {l: box(means).left, r: box(means).right},
            noData: [...document.querySelectorAll('svg text')].filter(t => t.textContent === 'no data').length,
            svgText: [...document.querySelectorAll('svg text')].map(t => t.textContent).join(' '),
            grids: [...document.querySelectorAll('table.grid')].map(t => ({metric: t.dataset.metric,
                differ: t.classList.contains('differ'),
                rows: [...t.querySelectorAll('tr[class]')].map(r => ({kind: r.className,
                    prompt: r.cells[1].dataset.prompt, seed: Number(r.cells[1].dataset.seed),
                    scores: [...r.querySelectorAll('td span')].map(s => Number(s.innerText))}))})),
          };
        }""")


def test_runs_table_fits_at_1400_px(page):
    assert page["runsWidth"] <= page["body"] and page["pageScroll"] <= 1400


def test_panel_titles_stay_inside_the_figure(page):
    assert page["titles"] and all(page["svg"]["l"] - 1 <= t["l"] and t["r"] <= page["svg"]["r"] + 1
                                  for t in page["titles"])


def test_empty_metrics_say_no_data_and_counts_have_no_offset_axis(page):
    assert page["noData"] >= 2  # the means panel and the distribution panels of broken/value
    assert "1e−9" not in page["svgText"] and "1e-9" not in page["svgText"]


def test_best_and_worst_grids_rank_every_seed_per_metric(page):
    best_worst = [g for g in page["grids"] if not g["differ"]]
    assert {g["metric"] for g in best_worst} >= {"hps-tiny/hps", "aux/score", "aux2/other"}
    for grid in best_worst:
        means = [np.mean(r["scores"]) for r in grid["rows"]]
        best = [m for m, r in zip(means, grid["rows"]) if r["kind"] == "best"]
        worst = [m for m, r in zip(means, grid["rows"]) if r["kind"] == "worst"]
        if best and not np.isnan(best).any():
            assert best == sorted(best, reverse=True) and min(best) >= max(worst)
    assert any(r["seed"] == 1 for g in best_worst for r in g["rows"])  # not seed 0 only


def test_the_images_where_runs_differ_most_come_first(page):
    differ = next(g for g in page["grids"] if g["differ"] and g["metric"] == "hps-tiny/hps")
    assert (differ["rows"][0]["prompt"], differ["rows"][0]["seed"]) == ("p003", 1)


def test_study_results_keep_names_whole_when_piped(tmp_path, capsys):
    from study_runs import make_run as study_run

    long_a, long_b = "tiny-sd15-with-a-long-name-a", "tiny-sd15-with-a-long-name-b"
    study_run(tmp_path / "a", long_a)
    study_run(tmp_path / "b", long_b, colour=(40, 40, 200))
    main(["study", "create", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "s.db")])
    capsys.readouterr()
    main(["study", "results", str(tmp_path / "s.db")])
    out = capsys.readouterr().out
    assert long_a in out and long_b in out and "…" not in out


def test_paper_help_is_a_whole_sentence(capsys):
    main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "beside each run of the same model, scorer and benchmark family" in text


def test_paper_file_without_source_fields_prints_cleanly(tmp_path, capsys):
    import json

    paper = tmp_path / "paper.json"
    paper.write_text(json.dumps({"schema": "molebench paper results 1", "source": {"title": "my test."},
                                 "results": [], "missing": []}))
    run = make_run(tmp_path / "r", np.linspace(0.2, 0.3, 4), model="sd21")
    main(["compare", str(run), "--paper-file", str(paper), "-f", "md", "--resamples", "200"])
    out = capsys.readouterr().out
    assert "paper: my test;" in out and ". ." not in out and "arXiv:;" not in out


def test_a_run_summary_keeps_long_scorer_and_metric_names_whole_when_piped(tmp_path, capsys):
    import json

    from molebench import ui
    from molebench.store import RunStore
    from molebench.store.summary import summarise, summary_table
    from report_runs import make_run

    scorer, metric = "imagereward-with-a-long-plugin-name", "imagereward_human_preference_score"
    root = make_run(tmp_path / "run", [0.1, 0.2, 0.3], scorer=scorer, version=scorer, metric=metric,
                    model="a-model-with-a-long-registered-name")
    store = RunStore(root)
    prints = json.loads((root / "manifest.json").read_text())["scorers"]
    ui.out.print(summary_table(summarise(store.read_scores(), prints), f"summary of {root}"))
    out = capsys.readouterr().out
    assert scorer in out and metric in out and "…" not in out
