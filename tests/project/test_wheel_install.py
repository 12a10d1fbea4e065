"""A wheel install (not editable) carries what molebench reads at run time: the prompt-set definitions.

The wheel is built from a copy of the sources and installed with `pip install --no-deps` into a fresh venv whose
site-packages also reads the test venv's site-packages through a .pth file, so torch and friends are not installed
again; the commands then run from a folder outside the repository, so nothing of the source tree can be imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import REPO_ROOT


def _python(venv: Path, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def build_wheel(tmp_path: Path, packages: tuple[str, ...] = ("molebench",)) -> Path:
    """The wheel pip builds from a copy of the checkout holding `packages`, pyproject.toml and README.md."""
    source = tmp_path / "src"
    for name in packages:
        shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("molebench-*.whl")
    return wheel


def test_wheel_in_a_fresh_venv_builds_coco_human(tmp_path, shared_data):
    wheel = build_wheel(tmp_path)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "shared-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MOLEBENCH_PROMPTS_DIR")}
    env["MOLEBENCH_CACHE"] = str(tmp_path / "cache")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    installed = _python(venv, "-m", "pip", "install", "--no-deps", "-q", str(wheel), cwd=outside, env=env)
    assert installed.returncode == 0, installed.stderr

    where = _python(venv, "-c", "import molebench; print(molebench.__file__)", cwd=outside, env=env)
    assert Path(where.stdout.strip()).is_relative_to(purelib), where  # the wheel's copy, not the checkout
    captions = shared_data / "coco" / "captions_val2017.json"
    result = subprocess.run([str(venv / "bin" / "molebench"), "prompts", "build", "coco-human", "--source",
                             str(captions)], capture_output=True, text=True, cwd=outside, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    built_set = tmp_path / "cache" / "prompts" / "coco-human.jsonl"
    digest = hashlib.sha256(built_set.read_bytes()).hexdigest()
    assert f"coco-human: 1000 prompts  sha256 {digest}" in " ".join(result.stdout.split("\n"))
