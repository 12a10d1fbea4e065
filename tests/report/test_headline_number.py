"""One number everywhere (issue 27, group B): a `--protocol paper` run's headline — the mean of its repeat means ±
their standard error, in the paper's units — is the number its summary, `compare`, the report's table and means
figure, and the leaderboard show; the pooled mean appears only labelled as such."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from molebench.cli import main
from molebench.store.summary import headline_texts, summarise_repeats
from molebench.store import RunStore
from molebench.store.summary import summarise, summary_table
from report_runs import make_run

RNG = np.random.default_rng(2027)
MEMBERS = [[0, 1, 2, 3], [2, 3, 4, 5], [0, 4, 5, 6]]  # prompts drawn by two repeats count in both, as the protocol


@pytest.fixture()
def protocol_run(tmp_path):
    """A run of 7 distinct prompts recorded as 3 repeats of 4 prompts, as `--protocol paper --sample-size 4`."""
    values = RNG.normal(0.2, 0.05, size=(7, 2))
    values[6] += 0.3  # one prompt in one repeat only, far off: the pooled mean then differs from the headline
    root = make_run(tmp_path / "proto", values, model="sd21", seeds=(0, 1), extra={"imagereward/imagereward":
                                                                                   RNG.normal(0.5, 0.3, (7, 2))})
    store = RunStore(root)
    store.write_repeats(pd.DataFrame([{"repeat": r, "sample_seed": r, "prompt_index": i, "prompt_id": f"p{i:03d}"}
                                      for r, members in enumerate(MEMBERS) for i in members]))
    manifest = store.read_manifest().to_json()
    manifest["protocol"] = {"name": "paper", "repeats": 3, "sample_size": 4, "sample_seeds": [0, 1, 2],
                            "pool_size": 7, "distinct_prompts": 7, "members": MEMBERS}
    store.write_manifest(manifest)
    return root, values


def _headline(values, members):
    means = [values[m].mean() for m in members]  # seeds averaged per prompt, then over the repeat's prompts
    return np.mean(means) * 100, np.std(means, ddof=1) / np.sqrt(len(means)) * 100


def test_protocol_headline_is_the_same_number_everywhere(protocol_run, tmp_path, capsys):
    root, values = protocol_run
    mean, se = _headline(values, MEMBERS)
    pooled = values.mean() * 100
    assert abs(mean - pooled) > 0.5  # the two numbers really differ, so using the wrong one shows
    text = f"{mean:.2f} ± {se:.2f}"

    # the summary a run prints (run.finish / score: summary_table with the repeats' headline)
    store = RunStore(root)
    prints = store.read_manifest().data["scorers"]
    repeats = summarise_repeats(store.read_scores(), store.read_repeats(), prints)
    console = Console(file=io.StringIO(), width=200)
    console.print(summary_table(summarise(store.read_scores(), prints), "summary", headline_texts(repeats)))
    summary = console.file.getvalue()
    assert f"{text} (×100)" in summary and "headline: repeats mean ± s.e." in summary and "pooled mean" in summary

    # compare: the table's mean is the headline, the pooled mean only in its labelled column
    main(["compare", str(root), "-f", "json", "--resamples", "200"])
    row = json.loads(capsys.readouterr().out)["tables"][0]["rows"][0]
    assert row["mean"] == pytest.approx(mean, abs=1e-9) and row["repeats_se"] == pytest.approx(se, abs=1e-9)
    assert row["pooled_mean"] == pytest.approx(pooled, abs=1e-9) and row["ci_low"] is None
    main(["compare", str(root), "--resamples", "200"])
    printed = capsys.readouterr().out
    assert f"{text} (3 repeats)" in printed and "pooled mean" in printed

    # report: the table cell and the bar of the means figure
    out = tmp_path / "r.html"
    main(["report", str(root), "--out", str(out), "--resamples", "200"])
    page = out.read_text()
    assert f"<td>{mean:.2f}</td><td>± {se:.2f} (3 repeats)</td>" in page
    figure = re.search(r"data-kind='means'[^>]*data-values='([^']*)'", page).group(1)
    bars = {(m, label): (v, low, high) for m, label, v, low, high in json.loads(figure.replace("&quot;", '"'))}
    value, low, high = bars[("hps-tiny/hps", "sd21")]
    assert (value, high - value) == pytest.approx((mean, se), abs=1e-9)
    assert f"{mean:.2f} ± {se:.2f}" in page  # the overview cell

    # leaderboard: the same mean, with protocol, repeats, units and the pooled mean labelled
    board = tmp_path / "board.csv"
    main(["leaderboard", "export", str(root), "--out", str(board), "--resamples", "200"])
    rows = {r["scorer"]: r for r in csv.DictReader(board.open())}
    hps = rows["hps-tiny"]
    assert float(hps["mean"]) == pytest.approx(mean, abs=1e-6) and float(hps["se"]) == pytest.approx(se, abs=1e-6)
    assert (hps["protocol"], hps["repeats"], hps["units"], hps["scale"]) == ("paper", "3", "paper", "100")
    assert float(hps["pooled_mean"]) == pytest.approx(pooled, abs=1e-6) and hps["ci_low"] == ""


def test_protocol_units_are_the_papers_in_every_view(protocol_run, capsys):
    """ImageReward is shown ×1 in display units but ×100 in the paper's: a protocol run's tables use ×100."""
    root, _ = protocol_run
    main(["compare", str(root), "-f", "json", "--resamples", "200"])
    tables = {t["scorer"]: t for t in json.loads(capsys.readouterr().out)["tables"]}
    assert tables["imagereward"]["scale"] == 100 and "×100" in tables["imagereward"]["title"]
