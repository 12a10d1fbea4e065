"""Deterministic crash points, so the reliability tests can kill a run exactly where they mean to.

    MOLEBENCH_TEST_KILL_AFTER=POINT[:N][:stop|:int|:term][@RANK]

sends this process SIGKILL (or SIGSTOP with `:stop`, so a test can hold a run still; SIGINT with `:int`, as Ctrl-C
does; SIGTERM with `:term`) the N-th time (default 1) it
reaches POINT; with `@RANK` only the process of that rank does (a multi-process run: the launcher's `RANK`, 0 for a
plain run), so a test can kill one process of several at a known point. Points: `generate` (an image and its hash record are written), `score` (a score shard is written),
`merge` (scores.parquet is written, its shards not yet removed), `features` (a set-level scorer's feature shard is
written), `summary` (summary.csv is written, the manifest
not yet marked complete). Unset, `reached` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "MOLEBENCH_TEST_KILL_AFTER"
SIGNALS = {"stop": signal.SIGSTOP, "int": signal.SIGINT, "term": signal.SIGTERM}
_counts: dict[str, int] = {}


def reached(point: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    spec, _, rank = spec.partition("@")
    name, *rest = spec.split(":")
    if name != point or (rank and rank != os.environ.get("RANK", "0")):
        return
    _counts[point] = _counts.get(point, 0) + 1
    target = int(rest[0]) if rest and rest[0].isdigit() else 1
    if _counts[point] == target:
        kind = next((SIGNALS[word] for word in rest if word in SIGNALS), signal.SIGKILL)
        os.kill(os.getpid(), kind)
