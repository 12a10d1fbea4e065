"""Human preference studies beside the scores (`compare --study DB`, `report --study DB`): each study's win rates
with their Wilson 95% intervals, and with studies over more than two runs the Bradley–Terry ranking
(molebench.study.ranking). Study runs are named by the compare labels of the same folders where they are among the
compared runs, else by the label the study recorded."""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pandas as pd
from rich.console import Group
from rich.table import Table

from molebench.study.ranking import ranking, study_win_rates


@dataclass
class StudyView:
    rates: pd.DataFrame  # stats.WIN_COLUMNS plus `study`
    ranks: pd.DataFrame | None  # ranking.RANK_COLUMNS, only when the studies cover more than two runs

    def to_json(self) -> dict:
        def rows(frame: pd.DataFrame | None) -> list[dict]:
            if frame is None:
                return []
            return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                    for row in frame.to_dict("records")]
        return {"win_rates": rows(self.rates), "ranking": rows(self.ranks)}


def study_view(db_paths: list[str | Path], runs: list) -> StudyView:
    """Win rates of every study, and the ranking when more than two runs were judged; `runs`: the compared runs."""
    labels = {str(Path(run.root).resolve()): run.label for run in runs}
    rates = study_win_rates(db_paths)
    rates["label"] = [labels.get(run, label) for run, label in zip(rates["run"], rates["label"])]
    ranks = None
    if rates["run"].nunique() > 2:
        ranks = ranking(db_paths)
        ranks["label"] = [labels.get(run, label) for run, label in zip(ranks["run"], ranks["label"])]
    return StudyView(rates, ranks)


def _pct(value: float) -> str:
    return "—" if value != value else f"{value:.0%}"


def rate_rows(view: StudyView) -> list[list[str]]:
    """question, run, vs, votes, ties, win rate, 95% CI — one row per study side with votes."""
    out = []
    for row in view.rates.itertuples():
        ci = "—" if row.ci_low != row.ci_low else f"{row.ci_low:.0%}–{row.ci_high:.0%}"
        out.append([row.question_label, row.label, row.opponent, str(row.n_votes), str(row.ties),
                    _pct(row.win_rate), ci])
    return out


def rank_rows(view: StudyView) -> list[list[str]]:
    """question, rank, run, log-strength [95% CI], votes."""
    if view.ranks is None:
        return []
    return [[row.question, str(row.rank), row.label,
             f"{row.log_strength:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}]", str(row.n_votes)]
            for row in view.ranks.itertuples()]


RATE_HEADERS = ["question", "run", "vs", "votes", "ties", "win rate", "95% CI"]
RANK_HEADERS = ["question", "rank", "run", "Bradley–Terry log-strength [95% CI]", "votes"]
NOTE = ("win rate = wins / (wins + losses), ties apart, Wilson 95% interval; Bradley–Terry: log-strength centred on "
        "the mean (a difference of 1 = odds e:1), 95% bootstrap interval over votes within each study")


def rich_view(view: StudyView) -> Group:
    parts = []
    for title, headers, rows in (("human preference study: win rates", RATE_HEADERS, rate_rows(view)),
                                 ("human preference study: Bradley–Terry ranking", RANK_HEADERS, rank_rows(view))):
        if not rows:
            continue
        table = Table(title=title)
        for index, header in enumerate(headers):
            table.add_column(header, justify="left" if index < 3 else "right", overflow="fold")
        for row in rows:
            table.add_row(*row)
        parts.append(table)
    return Group(*parts)


def markdown(view: StudyView) -> str:
    out = [f"\n### Human preference study\n\n> {NOTE}\n"]
    for headers, rows in ((RATE_HEADERS, rate_rows(view)), (RANK_HEADERS, rank_rows(view))):
        if rows:
            out += ["| " + " | ".join(headers) + " |", "|" + "|".join([" --- "] * len(headers)) + "|"]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out) + "\n"


def html(view: StudyView) -> str:
    parts = ["<h2 id='study'>Human preference study</h2>", f"<p class='note'>{escape(NOTE)}</p>"]
    for kind, headers, rows in (("study-rates", RATE_HEADERS, rate_rows(view)),
                                ("study-ranking", RANK_HEADERS, rank_rows(view))):
        if rows:
            parts.append(f"<table class='{kind}'><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
                         + "</table>")
    return "".join(parts)
