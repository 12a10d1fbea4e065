"""End to end: `molebench study serve` in a subprocess, headless Chromium casting votes by click and by keyboard
(including "no face / no hands visible"), zooming an image, a server killed (SIGKILL) and restarted mid-study, then
every vote checked in the database and in `study results`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from browser import launch_chromium
from conftest import REPO_ROOT
from molebench.cli import main
from study_runs import make_run

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def study_server(database: Path, port: int, log: Path) -> Iterator[subprocess.Popen]:
    """`python -m molebench study serve` until the block ends; killed with SIGKILL (no clean shutdown)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(log, "ab") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "molebench", "study", "serve", str(database),
                                 "--port", str(port)], cwd=REPO_ROOT, env=env, stdout=handle, stderr=handle)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"study server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/study", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"study server did not answer on port {port}:\n{log.read_text()}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _wait_pair(page, pair_id: int) -> None:
    """Wait until the page shows pair `pair_id`; on timeout say what the page showed instead."""
    try:
        page.wait_for_selector(f'#study[data-pair-id="{pair_id}"]', state="visible", timeout=15000)
    except Exception:
        shown = page.evaluate("[document.getElementById('status').textContent, JSON.stringify(pair)]")
        pytest.fail(f"pair {pair_id} not shown; status and pair in the page: {shown}")


def _wait_images(page) -> None:
    page.wait_for_function("['img-left', 'img-right'].every(id => document.getElementById(id).complete && "
                           "document.getElementById(id).naturalWidth === 16)", timeout=15000)


def _button(page, question: str, choice: str):
    return page.locator(f'#questions button[data-question="{question}"][data-choice="{choice}"]')


def _check_definitions_and_zoom(page) -> None:
    """Each criterion shows its definition; face and hands (not overall) offer "does not apply"; a click zooms an
    image, keys then switch sides or close it and never answer."""
    assert "five fingers" in page.text_content('.question[data-question="hands"] .definition')
    assert "Judge faces only" in page.text_content('.question[data-question="face"] .definition')
    assert _button(page, "overall", "na").count() == 0
    assert _button(page, "face", "na").text_content() == "No face visible"
    assert _button(page, "hands", "na").text_content() == "No hands visible"
    page.click("#img-left")
    page.wait_for_selector("#zoom", state="visible")
    page.wait_for_function("document.getElementById('zoom-img').complete")
    shown = page.evaluate("(() => { const r = document.getElementById('zoom-img').getBoundingClientRect();"
                          " return [document.getElementById('zoom-img').src, r.width, r.height, innerHeight]; })()")
    assert shown[0].endswith("/images/1/left") and shown[2] > 0.8 * shown[3] and shown[1] == pytest.approx(shown[2])
    page.keyboard.press("d")  # not an answer while zoomed
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#zoom-img", "src").endswith("/images/1/right")
    page.keyboard.press("Escape")
    page.wait_for_selector("#zoom", state="hidden")
    assert not _button(page, "overall", "right").is_disabled() and page.text_content("#status") == ""


def test_votes_by_click_and_keyboard_survive_a_server_restart(tmp_path, capsys):
    make_run(tmp_path / "a", "model-a")
    make_run(tmp_path / "b", "model-b", colour=(40, 40, 200))
    database = tmp_path / "study.db"
    main(["study", "create", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(database), "--n", "4"])
    port, log = _free_port(), tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}/"
    cast: dict[tuple[str, int, str], str] = {}  # (rater, pair, question) -> choice the browser stored

    with launch_chromium() as browser:
        alice = browser.new_context().new_page()
        with study_server(database, port, log):
            alice.goto(url)
            alice.fill("#rater-input", "alice")
            alice.click("#start")
            _wait_pair(alice, 1)
            _wait_images(alice)
            _check_definitions_and_zoom(alice)
            for question, choice in (("overall", "left"), ("face", "tie"), ("hands", "right")):  # pair 1: mouse
                _button(alice, question, choice).click()
                cast[("alice", 1, question)] = choice
            _wait_pair(alice, 2)
            _wait_images(alice)
            for key, question, choice in (("ArrowRight", "overall", "right"), ("s", "face", "tie"),
                                          ("a", "hands", "left")):  # pair 2: keyboard
                alice.keyboard.press(key)
                cast[("alice", 2, question)] = choice
            _wait_pair(alice, 3)
            alice.keyboard.press("d")  # pair 3, overall: right; then the server dies
            cast[("alice", 3, "overall")] = "right"
            alice.wait_for_selector("#status:has-text('saved: pair 3, overall = right')")
            assert alice.get_attribute("#progress", "data-done") == "2"

        # Server gone: a vote is not shown as saved, and the answer is undone in the page.
        alice.keyboard.press("ArrowLeft")
        alice.wait_for_selector("#status.error:has-text('not saved')")
        assert not _button(alice, "face", "left").is_disabled()

        with study_server(database, port, log):
            alice.reload()
            _wait_pair(alice, 3)
            _wait_images(alice)
            assert _button(alice, "overall", "right").evaluate("b => b.classList.contains('chosen')")
            assert _button(alice, "overall", "left").is_disabled(), "the answer saved before the restart is kept"
            assert alice.text_content("#who") == "rater: alice", "the rater name is kept for the session"
            for key, question, choice in (("ArrowDown", "face", "tie"), ("ArrowLeft", "hands", "left")):
                alice.keyboard.press(key)
                cast[("alice", 3, question)] = choice
            _wait_pair(alice, 4)
            for question, choice in (("overall", "tie"), ("face", "na"), ("hands", "left")):  # no face visible
                _button(alice, question, choice).click()
                cast[("alice", 4, question)] = choice
            alice.wait_for_selector("#done", state="visible")
            assert alice.text_content("#progress") == "4 / 4 pairs done"

            bob = browser.new_context().new_page()  # a second rater in another session
            bob.goto(url)
            bob.fill("#rater-input", "bob")
            bob.press("#rater-input", "Enter")
            _wait_pair(bob, 1)
            for key, question, choice in (("a", "overall", "left"), ("ArrowLeft", "face", "left"),
                                          ("n", "hands", "na")):
                bob.keyboard.press(key)
                cast[("bob", 1, question)] = choice
            _wait_pair(bob, 2)

    with sqlite3.connect(database) as con:
        rows = con.execute("SELECT r.name, v.pair_id, v.question, v.choice, v.winner, p.left_side FROM votes v "
                           "JOIN raters r ON r.id = v.rater_id JOIN pairs p ON p.id = v.pair_id").fetchall()
    assert {(name, pair, question): choice for name, pair, question, choice, _, _ in rows} == cast
    assert len(rows) == len(cast) == 15
    for *_, choice, winner, left in rows:
        assert winner == {"left": left, "right": "B" if left == "A" else "A", "tie": "tie", "na": "na"}[choice]

    capsys.readouterr()
    main(["study", "results", str(database), "--csv", str(tmp_path / "results.csv")])
    out = capsys.readouterr().out
    assert "model-a" in out and "model-b" in out and "Fleiss" in out
    table = pd.read_csv(tmp_path / "results.csv")
    for question in ("overall", "face", "hands"):
        asked = [row for row in rows if row[2] == question]
        mine = [row for row in asked if row[3] != "na"]  # "does not apply" is no vote for either side
        a = table[(table.question == question) & (table.side == "A")].iloc[0]
        assert a.n_votes == len(mine) == {"overall": 5, "face": 4, "hands": 4}[question]
        assert a.not_applicable == len(asked) - len(mine)
        assert a.wins == sum(row[4] == "A" for row in mine) and a.losses == sum(row[4] == "B" for row in mine)
        assert a.ties == sum(row[4] == "tie" for row in mine) and a.n_raters == len({row[0] for row in mine})
    overall = table[table.question == "overall"].iloc[0]
    assert overall.agreement_items == 1 and overall.percent_agreement == 1.0, "alice and bob both chose left on pair 1"
