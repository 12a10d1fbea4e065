"""The study database: one SQLite file holds the pairs to judge and every vote cast.

Why SQLite: one file the user can copy, transactions, and WAL mode so the web app can commit each vote the moment it
arrives (synchronous=FULL: a vote acknowledged to the browser survives a server crash or restart) while `results`
reads concurrently.

Tables
    study   key/value metadata: schema version, creation time, seed, prompt-set sha256, questions (JSON)
    runs    side 'A', 'B', 'C', ... (the order given to `study create`): run folder (absolute), model name, display
            label, run identity hash
    pairs   id (= presentation order), prompt, seed, the two runs compared (side_a, side_b) and the image of each,
            which of the two is shown on the left
    raters  one row per rater name
    votes   UNIQUE(pair_id, rater_id, question): a vote is final; a second submission for the same pair, rater and
            question is refused (HTTP 409) and leaves the first one untouched. winner is the side of the run chosen,
            'tie', or 'na' (choice 'na': the question does not apply to the pair, no face / no hands visible; counted
            apart from wins, losses and ties).

Schema 3 lets a study hold more than two runs. Schema 2 files (two runs, pairs without side_a/side_b: every pair is
A against B) are read and voted on as they are; schema 1 files (no 'na') are upgraded to 2 in place, in one
transaction, when opened.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from molebench.atomic import atomic_path
from molebench.errors import InputError

SCHEMA_VERSION = 3
READABLE_VERSIONS = (2, 3)  # schema 2: two runs, A against B in every pair
MAX_RUNS = 26  # sides are the letters A-Z
# Question id -> label shown to raters. Ids are stored with every vote.
QUESTIONS: dict[str, str] = {"overall": "Overall", "face": "Face quality", "hands": "Hand quality"}
# What raters are told each question means (shown on the page, stored in the study for the record).
DEFINITIONS: dict[str, str] = {
    "overall": "Which image is better as a whole: it shows what the prompt asks for, looks natural and well made, "
               "and has fewer visible flaws.",
    "face": "Which image shows the more natural, correct face(s): plausible proportions, matching eyes, intact "
            "nose, mouth and teeth, no smeared or melted features. Judge faces only.",
    "hands": "Which image shows the more natural, correct hand(s): five fingers per hand, plausible joints and "
             "pose, no fused, extra or missing fingers. Judge hands only.",
}
NA = "na"
# Questions that may not apply to a pair, with the answer's label: the rater says so instead of guessing.
NOT_APPLICABLE: dict[str, str] = {"face": "No face visible", "hands": "No hands visible"}
CHOICES = ("left", "right", "tie", NA)
MAX_RATER_NAME = 64
SQLITE_INT_MIN, SQLITE_INT_MAX = -(2 ** 63), 2 ** 63 - 1  # SQLite INTEGER is a signed 64-bit number

SCHEMA = """
CREATE TABLE study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    side TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    identity_sha256 TEXT
);
CREATE TABLE pairs (
    id INTEGER PRIMARY KEY,
    prompt_index INTEGER NOT NULL,
    prompt_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    seed INTEGER NOT NULL,
    side_a TEXT NOT NULL REFERENCES runs (side),
    key_a TEXT NOT NULL,
    image_a TEXT NOT NULL,
    side_b TEXT NOT NULL REFERENCES runs (side),
    key_b TEXT NOT NULL,
    image_b TEXT NOT NULL,
    left_side TEXT NOT NULL CHECK (left_side IN (side_a, side_b)),
    UNIQUE (prompt_id, seed, side_a, side_b)
);
CREATE TABLE raters (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
"""
VOTES = """
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY,
    pair_id INTEGER NOT NULL REFERENCES pairs (id),
    rater_id INTEGER NOT NULL REFERENCES raters (id),
    question TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right', 'tie', 'na')),
    winner TEXT NOT NULL{winners},
    created TEXT NOT NULL,
    UNIQUE (pair_id, rater_id, question)
);
"""
TWO_RUN_WINNERS = " CHECK (winner IN ('A', 'B', 'tie', 'na'))"  # schema 2 (and the 1 -> 2 upgrade)
VOTES_INDEX = "CREATE INDEX votes_by_rater ON votes (rater_id, pair_id);"


class UnknownPairError(InputError):
    """A vote or image request names a pair id the study does not have."""


class DuplicateVoteError(InputError):
    """This rater already answered this question for this pair; votes are final."""

    def __init__(self, message: str, existing: dict[str, Any]) -> None:
        super().__init__(message)
        self.existing = existing


@dataclass(frozen=True)
class RunInfo:
    side: str
    path: str
    model: str
    label: str
    identity_sha256: str | None


def clean_rater_name(name: str) -> str:
    """Rater names are shown in results and used as identity: 1-64 printable characters, outer spaces dropped."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_RATER_NAME or not cleaned.isprintable():
        raise InputError(f"rater name must be 1-{MAX_RATER_NAME} printable characters, got {name!r}")
    return cleaned


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _configure(con: sqlite3.Connection) -> sqlite3.Connection:
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("PRAGMA busy_timeout = 10000")
    con.execute("PRAGMA synchronous = FULL")
    return con


def create(path: str | Path, runs: Iterable[RunInfo], pairs: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write a new study database atomically: a crash leaves no half-built file at `path`."""
    path = Path(path)
    with atomic_path(path) as tmp:
        con = _configure(sqlite3.connect(tmp, isolation_level=None))
        try:
            con.executescript(SCHEMA + VOTES.format(name="votes", winners="") + VOTES_INDEX)
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("BEGIN")
            values = {"schema_version": SCHEMA_VERSION, "created": now(), "questions": QUESTIONS,
                      "definitions": DEFINITIONS, "not_applicable": NOT_APPLICABLE, **meta}
            con.executemany("INSERT INTO study (key, value) VALUES (?, ?)",
                            [(k, json.dumps(v)) for k, v in values.items()])
            con.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                            [(r.side, r.path, r.model, r.label, r.identity_sha256) for r in runs])
            columns = ["id", "prompt_index", "prompt_id", "prompt", "seed", "side_a", "key_a", "image_a", "side_b",
                       "key_b", "image_b", "left_side"]
            rows = [tuple(_plain(v) for v in row) for row in pairs[columns].itertuples(index=False)]
            con.executemany(f"INSERT INTO pairs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            rows)
            con.execute("COMMIT")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (sqlite3 binds only the latter)."""
    return value.item() if hasattr(value, "item") else value


def connect(path: str | Path) -> sqlite3.Connection:
    """Open an existing study database (autocommit; writers use explicit transactions)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"study database {path} does not exist (create one with `molebench study create`)")
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        _configure(con)
        row = con.execute("SELECT value FROM study WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        con.close()
        raise InputError(f"{path} is not a molebench study database: {exc}") from None
    version = None if row is None else json.loads(row["value"])
    if version == 1:
        _upgrade_from_1(con)
    elif version not in READABLE_VERSIONS:
        con.close()
        raise InputError(f"{path}: study schema version {row and row['value']} is not {SCHEMA_VERSION}")
    return con


def _upgrade_from_1(con: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the votes table gains the 'na' answer (SQLite cannot alter a CHECK: copy into a new table).
    One transaction, so a crash leaves the file at schema 1 with every vote."""
    con.execute("BEGIN IMMEDIATE")
    try:
        if json.loads(con.execute("SELECT value FROM study WHERE key = 'schema_version'").fetchone()[0]) == 1:
            con.execute(VOTES.format(name="votes_v2", winners=TWO_RUN_WINNERS))
            con.execute("INSERT INTO votes_v2 SELECT * FROM votes")
            con.execute("DROP TABLE votes")
            con.execute("ALTER TABLE votes_v2 RENAME TO votes")
            con.execute(VOTES_INDEX)
            con.executemany("INSERT OR REPLACE INTO study (key, value) VALUES (?, ?)",
                            [("schema_version", json.dumps(2)), ("definitions", json.dumps(DEFINITIONS)),
                             ("not_applicable", json.dumps(NOT_APPLICABLE))])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def read_meta(con: sqlite3.Connection) -> dict[str, Any]:
    return {row["key"]: json.loads(row["value"]) for row in con.execute("SELECT key, value FROM study")}


def read_runs(con: sqlite3.Connection) -> dict[str, RunInfo]:
    return {row["side"]: RunInfo(**dict(row)) for row in con.execute("SELECT * FROM runs ORDER BY side")}


def pair_sides(pair: sqlite3.Row) -> tuple[str, str]:
    """The sides of the two runs a pair compares (a schema 2 pair is always A against B)."""
    keys = pair.keys()
    return (pair["side_a"], pair["side_b"]) if "side_a" in keys else ("A", "B")


def _side_columns(con: sqlite3.Connection) -> str:
    """SQL for the pairs' side_a, side_b columns, constant in a schema 2 file (it has none)."""
    columns = {row["name"] for row in con.execute("PRAGMA table_info(pairs)")}
    return "p.side_a, p.side_b" if "side_a" in columns else "'A' AS side_a, 'B' AS side_b"


def pairs_frame(con: sqlite3.Connection) -> pd.DataFrame:
    """Every pair in presentation order: id, side_a, key_a, side_b, key_b, left_side."""
    return pd.read_sql_query(f"SELECT p.id, {_side_columns(con)}, p.key_a, p.key_b, p.left_side FROM pairs p "
                             "ORDER BY p.id", con)


def count_pairs(con: sqlite3.Connection) -> int:
    return con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]


def get_pair(con: sqlite3.Connection, pair_id: int) -> sqlite3.Row:
    """The pair with this id; an id no SQLite integer can hold (26 digits) is unknown too, not an overflow."""
    fits = SQLITE_INT_MIN <= pair_id <= SQLITE_INT_MAX
    row = con.execute("SELECT * FROM pairs WHERE id = ?", (pair_id,)).fetchone() if fits else None
    if row is None:
        raise UnknownPairError(f"unknown pair id {pair_id} (this study has pairs 1..{count_pairs(con)})")
    return row


def rater_id(con: sqlite3.Connection, name: str) -> int | None:
    row = con.execute("SELECT id FROM raters WHERE name = ?", (name,)).fetchone()
    return None if row is None else row["id"]


def answers(con: sqlite3.Connection, pair_id: int, name: str) -> dict[str, str]:
    """This rater's answers for one pair: question -> left/right/tie."""
    rows = con.execute(
        "SELECT v.question, v.choice FROM votes v JOIN raters r ON r.id = v.rater_id "
        "WHERE v.pair_id = ? AND r.name = ?", (pair_id, name))
    return {row["question"]: row["choice"] for row in rows}


def next_pair(con: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    """The first pair (in presentation order) this rater has not answered every question for."""
    return con.execute(
        "SELECT p.* FROM pairs p WHERE (SELECT COUNT(*) FROM votes v JOIN raters r ON r.id = v.rater_id "
        "WHERE v.pair_id = p.id AND r.name = ?) < ? ORDER BY p.id LIMIT 1", (name, len(QUESTIONS))).fetchone()


def progress(con: sqlite3.Connection, name: str) -> dict[str, int]:
    """Pairs fully answered by this rater, and votes cast, out of the study's totals."""
    done = con.execute(
        "SELECT COUNT(*) FROM (SELECT v.pair_id FROM votes v JOIN raters r ON r.id = v.rater_id WHERE r.name = ? "
        "GROUP BY v.pair_id HAVING COUNT(*) >= ?)", (name, len(QUESTIONS))).fetchone()[0]
    votes = con.execute("SELECT COUNT(*) FROM votes v JOIN raters r ON r.id = v.rater_id WHERE r.name = ?",
                        (name,)).fetchone()[0]
    return {"done": done, "total": count_pairs(con), "votes": votes}


def add_vote(con: sqlite3.Connection, pair_id: int, name: str, question: str, choice: str) -> dict[str, Any]:
    """Record one vote and commit it before returning; refuse a second vote for the same pair/rater/question."""
    name = clean_rater_name(name)
    if question not in QUESTIONS:
        raise InputError(f"unknown question '{question}' (expected one of {', '.join(QUESTIONS)})")
    if choice not in CHOICES:
        raise InputError(f"unknown choice '{choice}' (expected one of {', '.join(CHOICES)})")
    if choice == NA and question not in NOT_APPLICABLE:
        raise InputError(f"question '{question}' always applies: answer left, right or tie")
    con.execute("BEGIN IMMEDIATE")
    try:
        pair = get_pair(con, pair_id)
        side_a, side_b = pair_sides(pair)
        right_side = side_b if pair["left_side"] == side_a else side_a
        winner = {"left": pair["left_side"], "right": right_side, "tie": "tie", NA: NA}[choice]
        con.execute("INSERT OR IGNORE INTO raters (name, created) VALUES (?, ?)", (name, now()))
        rid = rater_id(con, name)
        existing = con.execute("SELECT choice, created FROM votes WHERE pair_id = ? AND rater_id = ? AND question = ?",
                               (pair_id, rid, question)).fetchone()
        if existing is not None:
            raise DuplicateVoteError(
                f"rater '{name}' already answered '{question}' for pair {pair_id} ({existing['choice']}, "
                f"{existing['created']}); votes are final", dict(existing))
        created = now()
        con.execute("INSERT INTO votes (pair_id, rater_id, question, choice, winner, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (pair_id, rid, question, choice, winner, created))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"pair_id": pair_id, "rater": name, "question": question, "choice": choice, "created": created}


def votes_frame(path: str | Path) -> pd.DataFrame:
    """Every vote with its pair, prompt, rater and the runs it compared: the input of stats and CSV export. `winner`
    is the side of the run chosen (or tie / na); `pair_winner` the same relative to the pair: A for its first run
    (side_a), B for its second (side_b) — equal to `winner` in a two-run study."""
    con = connect(path)
    try:
        frame = pd.read_sql_query(
            "SELECT v.id AS vote_id, v.pair_id, p.prompt_id, p.prompt, p.seed, r.name AS rater, v.question, "
            f"v.choice, v.winner, p.left_side, {_side_columns(con)}, v.created FROM votes v "
            "JOIN pairs p ON p.id = v.pair_id JOIN raters r ON r.id = v.rater_id ORDER BY v.id", con)
    finally:
        con.close()
    pair_winner = frame["winner"].copy()
    pair_winner[frame["winner"] == frame["side_a"]] = "A"
    pair_winner[frame["winner"] == frame["side_b"]] = "B"
    frame["pair_winner"] = pair_winner
    return frame
