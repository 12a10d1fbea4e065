"""`molebench study create | serve | results`: a local, blind human preference study between two or more runs."""

from __future__ import annotations

import contextlib
import ipaddress
from pathlib import Path
from typing import List, Optional

import typer

from molebench.cli import study_agreement

study_app = typer.Typer(help="Human preference study between two or more runs (create, serve in the browser, results).",
                        no_args_is_help=True)


@study_app.command("create")
def create_command(
    runs: List[Path] = typer.Option(
        ..., "--runs", metavar="RUN_A RUN_B [RUN_C ...]", help="the run folders to compare: --runs A B [C ...]"),
    more_runs: Optional[List[Path]] = typer.Argument(None, metavar="RUN", hidden=True,
                                                     help="the runs after the first --runs one"),
    out: Path = typer.Option(..., "--out", help="study database to write (SQLite), e.g. study.db"),
    n: Optional[int] = typer.Option(None, "--n", min=1,
                                    help="number of pairs (default: every common prompt/seed in every run pair)"),
    seed: int = typer.Option(0, "--seed", help="seed of the pair choice, order and left/right sides"),
    force: bool = typer.Option(False, "--force", help="replace an existing study database (its votes are lost)"),
) -> None:
    """Pair the images of two or more runs (same prompt and seed), randomise left/right, write the study database."""
    from molebench import ui
    from molebench.errors import InputError
    from molebench.study import db
    from molebench.study.pairing import build_pairs

    if out.exists() and not force:
        raise InputError(f"{out} already exists and may hold votes; choose another --out or pass --force")
    infos, pairs, meta = build_pairs([*runs, *(more_runs or [])], n, seed)
    for suffix in ("-wal", "-shm"):  # a replaced database must not inherit the old one's journal
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    db.create(out, infos, pairs, meta)
    ui.err.print(f"study {out}: {created_summary(infos, pairs)}; next: molebench study serve {out}", soft_wrap=True,
                 markup=False)


def created_summary(infos, pairs) -> str:
    """What `study create` made: pairs per run pair and how often each run pair's first run is on the left."""
    labels = {info.side: info.label for info in infos}
    parts = []
    for (first, second), group in pairs.groupby(["side_a", "side_b"], sort=True):
        left = int((group["left_side"] == first).sum())
        parts.append(f"{len(group)} pairs of {labels[first]} ({first}) vs {labels[second]} ({second}), {first} shown "
                     f"on the left in {left}")
    return "; ".join(parts)


@study_app.command("serve")
def serve_command(
    database: Path = typer.Argument(..., help="study database from `molebench study create`"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (default: this machine only)"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port"),
) -> None:
    """Serve the study in the browser; every vote is committed to the database as it is cast."""
    from molebench import ui
    from molebench.study.app import create_app, serve

    app = create_app(database)  # validates the database before the address is announced
    if not _is_loopback(host):
        ui.err.print(f"[bold yellow]warning:[/] binding {host}: anyone who can reach this address can vote "
                     "(there is no login)", markup=True, soft_wrap=True)
    ui.err.print(f"serving {database} on http://{host}:{port}/ (Ctrl+C stops; votes are already saved)",
                 soft_wrap=True, markup=False)
    serve(app, host=host, port=port)


@study_app.command("results")
def results_command(
    database: Path = typer.Argument(..., help="study database"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="also write the results table to this CSV file"),
    votes_csv: Optional[Path] = typer.Option(None, "--votes-csv", help="also write every vote to this CSV file"),
) -> None:
    """Win rates per question with Wilson 95% intervals (ties excluded, shown apart) and rater agreement."""
    from molebench import ui
    from molebench.atomic import atomic_path
    from molebench.report.csv_safe import safe_frame
    from molebench.study import db, tally

    table = tally.results_frame(database)
    ui.out.print(results_table(table, database))
    if table["n_votes"].sum() + table["not_applicable"].sum() == 0:
        ui.err.print(f"no votes yet: serve the study with `molebench study serve {database}`", soft_wrap=True,
                     markup=False)
    agree = tally.agreement(database)
    if (agree["n_raters"] >= 2).any():
        ui.out.print(agreement_table(agree))
    else:
        ui.err.print("agreement: needs two or more raters on the same pair")
    ranking_section(database)
    metric_agreement_section(database)
    for path, frame in ((csv, table), (votes_csv, db.votes_frame(database) if votes_csv else None)):
        if path is not None:
            with atomic_path(path) as tmp:
                safe_frame(frame).to_csv(tmp, index=False)  # rater names and prompts are typed by people
            ui.err.print(f"wrote {path}", soft_wrap=True, markup=False)


def ranking_section(database: Path) -> None:
    """A study of three or more runs: the runs ranked by a Bradley–Terry model with 95% intervals."""
    from molebench import ui
    from molebench.study import db, ranking

    with contextlib.closing(db.connect(database)) as con:
        several = len(db.read_runs(con)) > 2
    if several:
        frame = ranking.ranking([database])
        if not frame.empty:
            ui.out.print(ranking_table(frame))


def ranking_table(frame):
    """The ranking as `compare --study` shows it (molebench.report.study_view), one row per question and run."""
    import pandas as pd
    from rich.table import Table

    from molebench.report.study_view import RANK_HEADERS, StudyView, rank_rows

    table = Table(title="Bradley–Terry ranking of the runs",
                  caption="log-strength centred on the mean (a difference of 1 is odds e:1); 95% bootstrap interval "
                          "over the votes; a tie is half a win for each run")
    for index, header in enumerate(RANK_HEADERS):
        table.add_column(header, justify="left" if index < 3 else "right", overflow="fold")
    for row in rank_rows(StudyView(pd.DataFrame(), frame)):
        table.add_row(*row)
    return table


def metric_agreement_section(database: Path) -> None:
    """Which metric agrees with the raters (`study agreement`), when there are votes and the runs can be read."""
    from molebench import ui
    from molebench.errors import InputError
    from molebench.study import agreement

    try:
        result = agreement.study_agreement(database)
    except InputError as exc:
        ui.err.print(f"metric agreement: {exc}", soft_wrap=True, markup=False)
        return
    if result.table["n"].sum():
        study_agreement.print_wide(study_agreement.agreement_table(result))


def results_table(frame, database: Path):
    from rich.table import Table

    table = Table(title=f"preference study {database}",
                  caption="win rate = wins / (wins + losses); ties shown apart; 95% Wilson interval; n/a = "
                          "answered 'no face / no hands visible' (not a vote)")
    for column in ("question", "model", "votes", "wins", "losses", "ties", "win rate", "95% CI", "n/a"):
        table.add_column(column, justify="left" if column in ("question", "model") else "right")
    for row in frame.itertuples():
        ci = "-" if row.ci_low != row.ci_low else f"{100 * row.ci_low:.0f}-{100 * row.ci_high:.0f}%"
        table.add_row(row.question_label, row.label, str(row.n_votes), str(row.wins), str(row.losses), str(row.ties),
                      _pct(row.win_rate), ci, str(row.not_applicable))
    return table


def agreement_table(frame):
    from rich.table import Table

    table = Table(title="agreement between raters (pairs judged by 2+ raters)")
    for column in ("question", "raters", "pairs", "percent agreement", "Fleiss' kappa"):
        table.add_column(column, justify="left" if column == "question" else "right")
    for row in frame.itertuples():
        kappa = "-" if row.fleiss_kappa != row.fleiss_kappa else f"{row.fleiss_kappa:.3f}"
        table.add_row(row.question, str(row.n_raters), str(row.n_items), _pct(row.percent_agreement), kappa)
    return table


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.1%}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


study_agreement.register(study_app)


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")
