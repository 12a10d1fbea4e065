"""`python -m molebench.perf.gpu_check.probe TARGET [--run]`: would the GPU check run on the lent machine's image?

Run by `wheels verify` with PYTHONPATH = (TARGET, the source tree). Of the packages installed in this environment,
imports see only those the lent machine's image holds (molebench.perf.gpu_check.wheels.DEVICE_PACKAGES); a package
that is neither there nor carried in TARGET is reported as not found, as it would be there. Then every module the
check imports is imported (the registered classes of every real model and full-size scorer, the diffusers pipeline
classes, the replica builders, the reference scorer packages through their shims), each carried distribution is
checked to come from TARGET at its pinned version, and `--run` runs the reduced check on a few rows.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import sys
import tempfile
from importlib.machinery import PathFinder
from pathlib import Path

from molebench.perf.gpu_check.wheels import DEVICE_PACKAGES, MODULES, WHEELS, normalized

PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
             "PixArtAlphaPipeline", "VQDiffusionPipeline", "VersatileDiffusionTextToImagePipeline")


class DeviceImageFinder(PathFinder):
    """PathFinder that does not find top-level packages the lent machine lacks (unless carried or in the tree)."""

    allowed_roots: tuple[str, ...] = ()
    owners: dict[str, list[str]] = {}
    hidden: set[str] = set()
    image: frozenset[str] = DEVICE_PACKAGES

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):  # type: ignore[override]
        spec = super().find_spec(fullname, path, target)
        if spec is None or path is not None or fullname in sys.stdlib_module_names:
            return spec
        origin = spec.origin or next(iter(spec.submodule_search_locations or []), "")
        if str(origin).startswith(cls.allowed_roots):
            return spec
        dists = {normalized(d) for d in cls.owners.get(fullname, [])}
        if not dists or dists & cls.image:
            return spec
        cls.hidden.add(f"{fullname} ({', '.join(sorted(dists))})")
        return None


def image_closure() -> frozenset[str]:
    """The image's packages and, as installed here, what they require (transitively): where a package here is
    another version than the image's, its own needs differ (huggingface_hub 2.x needs httpx2, 1.x httpx), and the
    image has what its own versions need."""
    from packaging.requirements import Requirement

    installed = {normalized(d.metadata["Name"]): d for d in metadata.distributions()}
    seen, todo = set(), [n for n in DEVICE_PACKAGES if n in installed]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in installed[name].requires or []:
            need = Requirement(line)
            if (need.marker is None or need.marker.evaluate({"extra": ""})) and normalized(need.name) in installed:
                todo.append(normalized(need.name))
    return frozenset(seen) | DEVICE_PACKAGES


def hide_other_packages(target: Path, tree: Path) -> None:
    DeviceImageFinder.allowed_roots = (str(target), str(tree))
    DeviceImageFinder.owners = metadata.packages_distributions()
    DeviceImageFinder.image = image_closure()
    sys.meta_path[sys.meta_path.index(PathFinder)] = DeviceImageFinder


def import_everything() -> None:
    """What the full check imports (its lazy imports included), without loading weights."""
    for name in ("molebench.perf.gpu_check.__main__", "molebench.perf.gpu_check.check", "molebench.replicas.build",
                 "molebench.replicas.pipelines", "molebench.replicas.scorers", "molebench.replicas.mole",
                 "torchmetrics.image.fid", "ftfy", "bs4"):
        importlib.import_module(name)
    from molebench.perf.gpu_check.sources import FULL_SCORERS, REAL_MODELS
    from molebench.registry import MODELS, SCORERS

    for name in REAL_MODELS:
        MODELS.get(name)
    for name in FULL_SCORERS:
        SCORERS.get(name)
    import diffusers

    for name in PIPELINES:
        getattr(diffusers, name)
    from torchmetrics.image.fid import NoTrainInceptionV3  # noqa: F401 - needs torch-fidelity
    from molebench.perf.oracles import reference_module

    reference = reference_module("gpu-check")
    reference._import_hpsv2_img_score()
    reference._import_imagereward()
    reference.import_openai_clip()


def carried_from(target: Path) -> list[str]:
    """Problems with the carried distributions: not imported from `target`, or not at the pinned version."""
    problems = []
    for dist, version in WHEELS.items():
        module = sys.modules.get(MODULES[dist]) or importlib.import_module(MODULES[dist])
        where = str(getattr(module, "__file__", "") or "")
        if not where.startswith(str(target)):
            problems.append(f"{dist}: imported from {where}, not from the carried wheels")
        if metadata.version(dist) != version:
            problems.append(f"{dist}: version {metadata.version(dist)}, pinned {version}")
    return problems


def run_reduced() -> int:
    from molebench.perf.gpu_check.__main__ import main

    with tempfile.TemporaryDirectory(prefix="molebench-probe-") as tmp:
        return main(["--mode", "reduced", "--models", "sd15,sdxl,pixart-alpha", "--scorers", "hps-v1,imagereward,fid",
                     "--out", str(Path(tmp) / "check.json")])


def main(argv: list[str]) -> int:
    target = Path(argv[0]).resolve()
    hide_other_packages(target, Path(__file__).resolve().parents[3])
    import_everything()
    problems = carried_from(target)
    print(f"imported with the image's packages and {len(WHEELS)} carried wheels; hidden from the imports (not on "
          f"the image, not carried, not needed): {', '.join(sorted(DeviceImageFinder.hidden)) or 'none'}")
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if problems:
        return 1
    print("every carried distribution imported from the target at its pinned version")
    return run_reduced() if "--run" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
