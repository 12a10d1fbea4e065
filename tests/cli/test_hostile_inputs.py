"""Hostile text through the whole chain: run → report page → study API and page → leaderboard and study CSV files.

Prompts carry HTML and script, quotes, unicode (bidi control, emoji), spreadsheet formulas and 10 kB of text; the run
folder and benchmark names start with formula characters. The page must show them as text, the API return them
exactly, and every CSV cell starting with =, +, -, @ must be neutralised (numbers stay numbers).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fastapi.testclient import TestClient

from molebench.benchmarks.base import Benchmark, PromptItem, PromptSet
from molebench.cli import main
from molebench.registry import BENCHMARKS, register_benchmark
from molebench.study.app import create_app

HOSTILE = (
    "<script>alert('x')</script> a woman waving",
    "a man saying \"hi\" & 'bye' </td></tr><img src=x onerror=alert(1)>",
    '=HYPERLINK("http://evil.invalid","click") a chef chopping',
    "-2+3 @SUM(A1) a boy clapping",
    "ünïcödé 人物 👋🏽 \u202eright-to-left\u202c and a\ttab",
    "a person raising a hand, " * 400,  # 10 kB
)
NAME = "@hostile"


class HostilePrompts(Benchmark):
    description = "prompts written to break escaping (tests only)"

    def load(self) -> PromptSet:
        return PromptSet(NAME, tuple(PromptItem(f"h{i}", p) for i, p in enumerate(HOSTILE)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    if NAME not in BENCHMARKS.names():
        register_benchmark(NAME)(HostilePrompts)
    root = tmp_path_factory.mktemp("hostile")
    a, b = root / "=HYPERLINK(run)", root / "+b"
    main(["run", "--model", "tiny-sd15", "--benchmark", NAME, "--steps", "2", "--scorers", "hps-tiny", "--out", str(a)])
    shutil.copytree(a, b)  # the same run in a second folder: enough to pair and to rank
    return a, b


def test_report_shows_hostile_prompts_as_text(runs, tmp_path):
    page = tmp_path / "report.html"
    main(["report", *map(str, runs), "--out", str(page), "--resamples", "100", "--top", "3"])
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    assert soup.find("script") is None
    assert all(img["src"].startswith("data:image/png;base64,") for img in soup.find_all("img"))
    cells = [td.get_text() for td in soup.select("td.prompt")]
    for prompt in HOSTILE:
        assert any(cell.endswith(prompt) for cell in cells), prompt[:40]


def test_study_api_returns_prompts_exactly_and_csv_is_neutralised(runs, tmp_path):
    database = tmp_path / "study.db"
    main(["study", "create", "--runs", *map(str, runs), "--out", str(database)])
    http = TestClient(create_app(database))
    prompts = {http.get(f"/api/pairs/{i}").json()["prompt"]: i for i in range(1, len(HOSTILE) + 1)}
    assert set(prompts) == set(HOSTILE)
    page = http.get("/").text
    assert "innerHTML" not in page and "<script>alert" not in page, "prompts only ever reach the page as text"
    vote = {"pair_id": prompts[HOSTILE[2]], "rater": "=cmd|' /C calc'!A0", "question": "overall", "choice": "left"}
    assert http.post("/api/votes", json=vote).status_code == 201
    votes = tmp_path / "votes.csv"
    main(["study", "results", str(database), "--votes-csv", str(votes)])
    (row,) = list(csv.DictReader(votes.open(encoding="utf-8")))
    assert row["rater"] == "'" + vote["rater"]
    assert row["prompt"] == "'" + HOSTILE[2]


def test_leaderboard_and_compare_csv_cells_are_neutralised(runs, tmp_path):
    board = tmp_path / "board.csv"
    for _ in range(2):  # the second export finds its own (neutralised) rows and replaces them
        main(["leaderboard", "export", *map(str, runs), "--out", str(board), "--resamples", "100"])
    rows = list(csv.DictReader(board.open(encoding="utf-8")))
    assert len(rows) == 2
    assert {r["run_id"] for r in rows} == {"'=HYPERLINK(run)", "'+b"}
    assert {r["benchmark"] for r in rows} == {"'@hostile"}
    assert all(float(r["mean"]) == float(r["mean"]) for r in rows), "numbers are left as numbers"
    table = tmp_path / "compare.csv"
    main(["compare", *map(str, runs), "--out", str(table), "--resamples", "100"])
    cells = [cell for r in csv.reader(table.open(encoding="utf-8")) for cell in r]
    assert "'@hostile" in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    assert not any(c.startswith("-") and not _number(c) for c in cells)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Payload:
    """Pickles to a call of open(marker, 'w'): a file appears if the pickle is ever executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_as_a_mole_gate_file_runs_no_code(tmp_path):
    import torch

    from molebench.errors import InputError
    from molebench.models.mole.checkpoint import read_tensors

    marker = tmp_path / "executed"
    torch.save({"gate": _Payload(marker)}, tmp_path / "moe.pt")
    with pytest.raises(InputError, match="weights-only torch file"):
        read_tensors(tmp_path / "moe.pt", "MoLE gates")
    assert not marker.exists()
