"""Acceptance: a report of 3 runs on 2 benchmarks whose folders share a name (`runs/coco/sd15`, `runs/ddb/sd15`)
opens in headless Chromium, and every figure and grid shows the right run: values read back off the drawn SVG
(bar tops, forest points, box quartiles, through the axis ticks) equal the run's own scores, legends match the
colours of the series and of the runs table, legends stay clear of the plot areas, every series is visible in the
screenshot, and each grid thumbnail is that run's image for that prompt and seed."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from browser import launch_chromium
from molebench.cli import main
from molebench.store import RunStore
from molebench.store.summary import display_scale
from report_runs import make_run

N = 14
READ_FIGURES = """() => {
  const box = (el) => { const b = el.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
  const screen = (el) => { const r = el.getBoundingClientRect();
    return [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY]; };
  const drawn = (el) => el.matches('path,use') ? el : [...el.querySelectorAll('path,use')].find(e => !e.closest('defs'));
  const paint = (el) => { const s = getComputedStyle(drawn(el)); return [s.fill, s.stroke]; };
  return [...document.querySelectorAll('figure.plot')].map(fig => {
    const svg = fig.querySelector('svg'), pre = 'f-' + fig.id.slice(4) + '-';
    const own = (id) => svg.querySelector(`[id="${pre}${id}"]`);
    const starts = (root, id) => [...root.querySelectorAll(`[id^="${pre}${id}"]`)];
    const ticks = (ax, kind) => starts(ax, kind + 'tick_').filter(t => t.querySelector('use') && t.querySelector('text'))
      .map(t => ({text: t.querySelector('text').textContent, at: box(t.querySelector('use'))}))
      .filter(t => t.text !== '');
    return {
      name: fig.id, kind: fig.dataset.kind, benchmark: fig.dataset.benchmark, labels: fig.dataset.labels.split('|'),
      metrics: fig.dataset.metrics.split('|').map(m => m.split('/')),
      legend: box(own('legend')),
      entries: starts(svg, 'legend-text-run').map(t => { const run = t.id.split('legend-text-run')[1];
        return {run, text: t.textContent.trim(), paint: paint(own('legend-handle-run' + run))}; }),
      axes: starts(svg, 'axes-').map(ax => ({
        box: box(ax), screen: screen(ax.querySelector('[id*="patch_"]')), xticks: ticks(ax, 'x'), yticks: ticks(ax, 'y'),
        series: starts(ax, 'series-').concat(starts(ax, 'ci-')).map(el => ({
          id: el.id.slice(pre.length), box: box(el), paint: paint(el)})),
      })),
    };
  });
}"""
READ_PAGE = """() => ({
  runs: [...document.querySelectorAll('table.runs tr[data-label]')].map(r => ({label: r.dataset.label,
    benchmark: r.dataset.benchmark, path: r.dataset.path,
    colour: getComputedStyle(r.querySelector('.swatch')).backgroundColor})),
  overview: [...document.querySelectorAll('table.overview tr')].map(r => [...r.cells].map(c => c.innerText.trim())),
  grids: [...document.querySelectorAll('table.grid td[data-label]')].map(td => ({
    benchmark: td.closest('table').dataset.benchmark, metric: td.closest('table').dataset.metric.split('/'),
    label: td.dataset.label, prompt: td.dataset.prompt,
    seed: Number(td.dataset.seed), src: td.querySelector('img').src, score: td.querySelector('span').innerText})),
  external: [...document.querySelectorAll('[src]')].map(e => e.getAttribute('src')).filter(u => !u.startsWith('data:')),
})"""


def _runs(root):
    rng = np.random.default_rng(5)
    extra = lambda centre: {"aux/score": rng.normal(centre, 0.05, (N, 2))}  # noqa: E731
    return {  # disjoint value ranges: a figure showing another run's data cannot pass
        ("coco", "sd15"): make_run(root / "runs" / "coco" / "sd15", rng.normal(0.20, 0.004, (N, 2)), model="sd15",
                                   benchmark="coco", prompt_set="coco", seeds=(0, 1), extra=extra(-0.5)),
        ("ddb", "sd15"): make_run(root / "runs" / "ddb" / "sd15", rng.normal(0.30, 0.004, (N, 2)), model="sd15",
                                  benchmark="ddb", prompt_set="ddb", seeds=(0, 1), extra=extra(0.6)),
        ("coco", "mole-sd15"): make_run(root / "runs" / "coco" / "mole", rng.normal(0.24, 0.004, (N, 2)),
                                        model="mole-sd15", benchmark="coco", prompt_set="coco", seeds=(0, 1),
                                        extra=extra(0.3)),
    }


def _scores(folder, scorer, metric):
    store = RunStore(folder)
    scores = store.read_scores()
    rows = scores[(scores["scorer"] == scorer) & (scores["metric"] == metric)]
    return rows.assign(value=rows["value"] * display_scale(store.read_manifest().data["scorers"], scorer, metric))


def _reader(ticks, axis):
    """Data value of an SVG coordinate, from two tick marks and their labels."""
    index = 0 if axis == "x" else 1
    points = [(t["at"][index], float(t["text"].replace("−", "-"))) for t in ticks]
    (p0, v0), (p1, v1) = points[0], points[-1]
    return lambda p: v0 + (p - p0) * (v1 - v0) / (p1 - p0), abs(v1 - v0)


def _overlap(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _visible(shot, rect, colour, minimum=15):
    """Pixels of the series colour inside the plot area of the screenshot (anti-aliasing tolerated)."""
    crop = np.asarray(shot.crop(tuple(round(v) for v in rect)).convert("RGB"), dtype=int)
    target = np.array([int(c) for c in colour[4:-1].split(",")])
    return int((np.abs(crop - target).sum(axis=-1) < 40).sum()) >= minimum


def test_report_of_colliding_folders_draws_every_run_from_its_own_folder(tmp_path):
    runs = _runs(tmp_path)
    out = tmp_path / "site" / "report.html"
    main(["report", *(str(p) for p in runs.values()), "--out", str(out), "--resamples", "999", "--top", "2"])
    labels = {("coco", "sd15"): "sd15", ("ddb", "sd15"): "sd15", ("coco", "mole-sd15"): "mole-sd15"}
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(out.resolve().as_uri())
        page.wait_for_load_state("load")
        dom, figures = page.evaluate(READ_PAGE), page.evaluate(READ_FIGURES)
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))

    # every figure also as files beside the page, for papers: SVG with text kept as text, PNG at 150 dpi
    files = sorted(p.name for p in (out.parent / "report_figures").iterdir())
    assert files == sorted(f"{f['name'][4:]}.{ext}" for f in figures for ext in ("svg", "png"))
    for name in files:
        data = (out.parent / "report_figures" / name).read_bytes()
        if name.endswith(".png"):
            with Image.open(io.BytesIO(data)) as image:
                assert image.width == 1800  # 12 in at 150 dpi
        else:
            assert data.startswith(b"<?xml") and b"sd15</text>" in data

    # the runs table: one row per folder, each with its colour; one system keeps one colour on both benchmarks
    assert sorted((r["benchmark"], r["label"], r["path"]) for r in dom["runs"]) == sorted(
        (bench, labels[(bench, model)], str(folder.resolve())) for (bench, model), folder in runs.items())
    colour = {r["label"]: r["colour"] for r in dom["runs"]}
    assert len({r["colour"] for r in dom["runs"]}) == 2 and dom["external"] == []
    header, metrics, *body = dom["overview"]
    assert header == ["run", "coco", "ddb"] and [row[0] for row in body] == ["sd15", "mole-sd15"]
    assert body[1][3] == "—" and all(" ± " in cell for cell in body[0][1:])

    kinds = sorted((f["kind"], f["benchmark"]) for f in figures)
    assert kinds == [("distribution", "coco")] * 2 + [("distribution", "ddb")] * 2 + [
        ("forest", "coco"), ("means", "coco"), ("means", "ddb")]
    for figure in figures:
        legend = {e["text"]: e for e in figure["entries"]}
        assert list(legend) == figure["labels"], figure["name"]
        for entry in figure["entries"]:  # legend colour = runs-table colour = every series of that run
            assert colour[entry["text"]] in entry["paint"], (figure["name"], entry)
            series = [s for ax in figure["axes"] for s in ax["series"] if s["id"].endswith("-run" + entry["run"])
                      and not s["id"].startswith("ci-")]
            assert series and all(colour[entry["text"]] in s["paint"] for s in series), (figure["name"], entry)
        for ax in figure["axes"]:
            assert not _overlap(figure["legend"], ax["box"]), f"legend covers a plot in {figure['name']}"
            for s in ax["series"]:
                run = s["id"].rsplit("-run", 1)[1]
                label = next(e["text"] for e in figure["entries"] if e["run"] == run)
                assert _visible(shot, ax["screen"], colour[label]), f"{label} not visible in {figure['name']}"
        _check_values(figure, runs, labels)

    # the grids: every thumbnail is the image of that run (by benchmark and label) for that prompt and seed
    folder = {(bench, labels[(bench, model)]): path for (bench, model), path in runs.items()}
    assert {(g["benchmark"], g["label"]) for g in dom["grids"]} == set(folder)
    for cell in dom["grids"]:
        scores = _scores(folder[(cell["benchmark"], cell["label"])], *cell["metric"])
        hit = scores[(scores["prompt_id"] == cell["prompt"]) & (scores["seed"] == cell["seed"])].iloc[0]
        places = len(cell["score"].split(".")[1])  # display units (as _scores) at the table's precision
        assert abs(float(cell["score"]) - hit["value"]) <= 0.5 * 10 ** -places + 1e-9
        thumb = Image.open(io.BytesIO(base64.b64decode(cell["src"].split(",", 1)[1]))).convert("RGB")
        with Image.open(RunStore(folder[(cell["benchmark"], cell["label"])]).image_path(hit["key"])) as image:
            assert thumb.getpixel((80, 80)) == image.convert("RGB").getpixel((8, 8))


def _check_values(figure, runs, labels):
    """Read each drawn value back through the axis ticks and compare it with the run's own scores."""
    folder = {labels[key]: path for key, path in runs.items() if key[0] == figure["benchmark"]}
    for panel, ax in enumerate(figure["axes"]):
        metric = figure["metrics"][panel if figure["kind"] != "distribution" else 0]
        for s in ax["series"]:
            kind, index, run = s["id"].split("-")[0], int(s["id"].split("-")[1]), s["id"].rsplit("-run", 1)[1]
            label = next(e["text"] for e in figure["entries"] if e["run"] == run)
            if kind == "ci":
                continue
            if figure["kind"] == "means":
                read, span = _reader(ax["yticks"], "y")
                per_prompt = _scores(folder[label], *metric).groupby("prompt_id")["value"].mean()
                top = s["box"][1] if per_prompt.mean() >= 0 else s["box"][3]
                assert abs(read(top) - per_prompt.mean()) < 0.02 * span, (figure["name"], label)
            elif figure["kind"] == "forest":
                read, span = _reader(ax["xticks"], "x")
                ref = _scores(folder["sd15"], *metric).groupby("prompt_id")["value"].mean()
                cand = _scores(folder[label], *metric).groupby("prompt_id")["value"].mean()
                centre = (s["box"][0] + s["box"][2]) / 2
                assert abs(read(centre) - (cand - ref).mean()) < 0.02 * span, (figure["name"], label)
            elif index == 1:  # the box plot: the box spans the run's quartiles
                values = _scores(folder[label], *metric)["value"].to_numpy()
                read, span = _reader(ax["yticks"], "y")
                q1, q3 = np.percentile(values, [25, 75])
                assert abs(read(s["box"][3]) - q1) < 0.02 * span and abs(read(s["box"][1]) - q3) < 0.02 * span, (
                    figure["name"], label)
