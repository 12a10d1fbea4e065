"""Test environment: offline, a private molebench cache and an empty Hugging Face cache for the session.

The caches are set in os.environ at import so subprocesses (CLI runs, kill tests) see the same ones; the tiny
models are materialised once per session into that cache.
"""

from __future__ import annotations

import os
import shutil

# One CPU thread for the whole session, set before anything imports torch (subprocesses inherit it): on the
# project's 2 shared cores a second OpenMP thread makes the tiny models' convolutions ~200x slower.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest


def _shared_models_dir(uid: str) -> Path:
    """The tiny models the workers of one parallel run share (built once per run)."""
    return Path(tempfile.gettempdir()) / f"molebench-tests-{uid}-models"


# The environment as the user had it (real weights tests look for real weights where the user keeps them).
ORIGINAL_ENV = dict(os.environ)
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="molebench-tests-"))
os.environ["MOLEBENCH_CACHE"] = str(_SESSION_DIR / "cache")
if os.environ.get("PYTEST_XDIST_TESTRUNUID"):
    # Parallel workers (make test) share the tiny models: they are built once per run instead of once per worker
    # (seconds each). Safe because a model is built in a temporary folder and renamed into place.
    _shared_models = _shared_models_dir(os.environ["PYTEST_XDIST_TESTRUNUID"])
    _shared_models.mkdir(exist_ok=True)
    (_SESSION_DIR / "cache").mkdir()
    (_SESSION_DIR / "cache" / "models").symlink_to(_shared_models, target_is_directory=True)
os.environ["HF_HOME"] = str(_SESSION_DIR / "hf")
os.environ["HF_HUB_CACHE"] = str(_SESSION_DIR / "hf" / "hub")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
for _name in list(os.environ):
    if _name.startswith("MOLEBENCH_WEIGHTS_"):
        del os.environ[_name]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m molebench ARGS` in a subprocess and return the finished process (text output)."""
    return subprocess.run([sys.executable, "-m", "molebench", *args], capture_output=True, text=True,
                          cwd=cwd or REPO_ROOT, timeout=timeout)


def exit_code(args: list[str]) -> int:
    """Run `molebench ARGS` in this process: its exit code, 0 when it returns normally."""
    from molebench.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def exit_code_and_error(capsys, *argv: str) -> tuple[int, str]:
    """Run `molebench ARGV` in this process (no interpreter start-up) where it must fail: exit code and stderr."""
    from molebench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real source data folder {SHARED_DATA} is absent (it lies beside the project root)")
    return SHARED_DATA


# Files whose tests take longest (process launches, browsers) go first, so that under `make test`'s parallel workers
# (pytest-xdist, one file per worker at a time) no long file starts last and leaves the other workers idle.
LONGEST_FIRST = ("test_scale_out.py", "test_set_metrics.py", "test_detector_validation.py", "test_scorer_contract.py",
                 "test_study_many_runs.py", "test_report_figures.py", "test_study_e2e.py", "test_baselines.py",
                 "test_manifest_contract.py", "test_reliability.py")


def pytest_configure(config: pytest.Config) -> None:
    """The controller of a parallel run picks the run id itself, so that it knows which shared model folder to
    remove when the workers are done."""
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "testrunuid", "") is None:
        config.option.testrunuid = uuid.uuid4().hex


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every process removes its private caches; the controller of a parallel run removes the shared tiny models
    (each run used to leave about 230 MB in the temporary folder)."""
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
    uid = getattr(session.config.option, "testrunuid", None)
    if uid and not hasattr(session.config, "workerinput"):
        shutil.rmtree(_shared_models_dir(uid), ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty private Hugging Face hub cache, where the hub client looks for downloads (model and replica tests)."""
    from huggingface_hub import constants

    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(folder))
    return folder
