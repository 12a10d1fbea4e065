"""The report's study section (`molebench report ... --study STUDY`): which metric agrees with the raters, per
question, as `molebench study agreement` computes it, with its figure. Rows carry their question and metric as data
attributes, so the page can be checked against `study agreement --format csv`."""

from __future__ import annotations

from html import escape
from pathlib import Path

from molebench.report.figures import FigureSpec
from molebench.study import agreement, db
from molebench.report.agreement_plot import render

FIGURE_NAME = "study-agreement"


def agreement_section(database: Path, resamples: int, seed: int) -> tuple[str, FigureSpec]:
    """The section's heading, notes and table, and its figure (the page places the figure after the table)."""
    result = agreement.study_agreement(database, resamples, seed)
    con = db.connect(database)
    try:
        runs = db.read_runs(con)
    finally:
        con.close()
    head = "".join(f"<th>{escape(h)}</th>" for h in agreement.HEADERS)
    rows = []
    for record, cells in zip(result.table.itertuples(), agreement.display_rows(result)):
        rows.append(f"<tr class='{record.kind}' data-question='{escape(record.question)}' "
                    f"data-name='{escape(record.name)}'>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    skipped = "".join(f"<li>{escape(reason)}</li>" for reason in result.skipped)
    html = (f"<h2 id='study-agreement'>Which metric agrees with people? — study {escape(Path(database).name)}</h2>"
            f"<p class='note'>{' vs '.join(escape(run.label) for run in runs.values())}: "
            f"{escape(agreement.DEFINITION)} {result.resamples} resamples, seed {result.seed}. Also: "
            f"<code>molebench study agreement STUDY --format md|csv|json</code>.</p>"
            f"<table class='agreement'><tr>{head}</tr>{''.join(rows)}</table>"
            + (f"<p class='note'>Left out:</p><ul class='note'>{skipped}</ul>" if skipped else ""))
    metrics = tuple(dict.fromkeys(result.table.loc[result.table["kind"] == "metric", "name"]))
    caption = ("Pairwise accuracy of each metric against the decisive human votes (95% CI, bootstrap over pairs); "
               "the band is the human ceiling, the dashed line chance (0.5).")
    return html, FigureSpec("agreement", "", caption, render(result.table, FIGURE_NAME), (), metrics)
