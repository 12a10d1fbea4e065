"""The GPU check as one call on a lent GPU machine: the device script (run here in reduced mode, no wheels, tiny
models), the order rows are measured in and the budget that skips the last ones, the rows of a record stopped at its
time limit, and the pinned wheel set (`make gpu-wheels`; downloading and the install proof need the network and run
there, not here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import torch

from molebench.perf.gpu_check import check
from molebench.perf.gpu_check.__main__ import main
from molebench.perf.gpu_check.check import REDUCED_PLAN, run_check
from molebench.perf.gpu_check.report import BEGIN, END
from molebench.perf.gpu_check.sources import FULL_SCORERS, PRIORITY, REAL_MODELS, full_sources, in_priority
from molebench.perf.gpu_check.wheels import MODULES, WHEELS, main as wheels_main, normalized

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "molebench" / "perf" / "gpu_check" / "on_device.sh"


def test_device_script_runs_the_check_and_leaves_its_files(tmp_path):
    out, wheels = tmp_path / "out", tmp_path / "no-wheels"
    wheels.mkdir()
    env = {**os.environ, "MOLEBENCH_DEVICE_PYTHON": sys.executable, "MOLEBENCH_DEVICE_WHEELS": str(wheels),
           "MOLEBENCH_REPLICA_CACHE": str(tmp_path / "replicas"), "MOLEBENCH_REPLICA_THREADS": "2",
           "MOLEBENCH_GPU_CHECK_LIMIT_S": "300", "TMPDIR": str(tmp_path)}
    done = subprocess.run(["bash", str(SCRIPT), str(out), "--mode", "reduced", "--models", "vq-diffusion",
                           "--scorers", "fid"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    log = (out / "log.txt").read_text()
    assert f"no wheels in {wheels}/" in log and "drawn on 2 threads; check limit 300 s" in log
    record = json.loads((out / "gpu-check.json").read_text())
    assert record["mode"] == "reduced" and record["complete"] is True
    assert [r["status"] for r in record["models"] + record["scorers"]] == ["ok", "ok"]
    assert record["plan"]["budget_s"] == 210  # the limit less 90 s: no row starts that could not finish
    assert "| vq-diffusion (tiny-vq-diffusion) |" in (out / "gpu-check.md").read_text()
    assert (out / "README.md").read_text() == (ROOT / "README.md").read_text()  # reduced figures never go in


def test_rows_run_most_important_first_and_the_budget_skips_the_last(monkeypatch):
    ran, seen = [], []

    def stand_in(kind):
        def measure(source, *args):
            ran.append(source.stands_for)
            time.sleep(0.06)
            return {kind: source.stands_for, "run_as": source.name, "status": "skipped: stand-in"}
        return measure

    monkeypatch.setattr(check, "measure_model", stand_in("model"))
    monkeypatch.setattr(check, "measure_scorer", stand_in("scorer"))
    plan = REDUCED_PLAN.__class__(**{**REDUCED_PLAN.__dict__, "budget_s": 0.15})
    sources = full_sources()
    record = run_check(sources, torch.device("cpu"), plan, say=lambda line: None,
                       on_row=lambda r: seen.append((r["complete"], len(r["models"]) + len(r["scorers"]))))
    assert 1 <= len(ran) <= 3 and ran == list(PRIORITY[: len(ran)])  # sd15 first, then mole-sd15, sdxl
    total = len(REAL_MODELS) + len(FULL_SCORERS)
    assert seen == [(False, n) for n in range(1, total + 1)]  # the record so far, after every row
    assert record["complete"] is True
    assert [r["model"] for r in record["models"]] == list(REAL_MODELS)  # tables keep their own order
    skipped = [r for r in record["models"] + record["scorers"] if "budget" in r["status"]]
    assert len(skipped) == total - len(ran)


def test_priority_orders_every_row_once_paper_models_and_scorers_first():
    assert sorted(PRIORITY) == sorted(REAL_MODELS + FULL_SCORERS)
    order = [s.stands_for for _, s in in_priority(full_sources())]
    assert order == list(PRIORITY)
    assert order[:6] == ["sd15", "mole-sd15", "sdxl", "mole-sdxl", "hps-v1", "imagereward"]


def test_rows_from_a_record_stopped_at_its_time_limit(tmp_path, capsys):
    record = {"mode": "full", "created": "now", "seconds": 450.0, "complete": False, "protocol": {"images": 18000},
              "device": {"name": "NVIDIA H200"},
              "models": [{"model": "sd15", "run_as": "sd15", "status": "failed: RuntimeError: boom"}],
              "scorers": [{"scorer": "hps-v1", "run_as": "hps-v1", "status": "skipped: over the 360 s budget"}]}
    path, readme = tmp_path / "gpu-check.json", tmp_path / "README.md"
    path.write_text(json.dumps(record))
    readme.write_text(f"a\n{BEGIN}\nold\n{END}\nb\n")
    assert main(["--rows-from", str(path), "--readme", str(readme)]) == 1  # a failed row fails the check
    text = readme.read_text()
    assert "NVIDIA H200 (full mode, now, 450 s in all, stopped at its time limit;" in text and "old" not in text
    assert "| sd15 (sd15) | failed: RuntimeError: boom |" in path.with_suffix(".md").read_text()
    assert main(["--rows-from", str(tmp_path / "absent.json")]) == 1
    assert "absent.json" in capsys.readouterr().err


def test_carried_wheels_keep_the_project_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {normalized(d.split("==")[0]): d.split("==")[1] for d in project if "==" in d}
    carried = {normalized(name): version for name, version in WHEELS.items()}
    assert {n: v for n, v in carried.items() if n in pins} == {n: pins[n] for n in carried if n in pins}
    assert {"diffusers", "transformers", "open-clip-torch", "torch-fidelity", "timm"} <= set(pins) & set(carried)
    from molebench_testing.reference import OPENAI_CLIP_PACKAGE, REFERENCE_PACKAGES

    for pin in (*REFERENCE_PACKAGES.values(), OPENAI_CLIP_PACKAGE):
        name, version = pin.split("==")
        assert carried[normalized(name)] == version
    assert set(MODULES) == set(WHEELS)
    assert wheels_main(["fetch", ".whl"]) == 2
