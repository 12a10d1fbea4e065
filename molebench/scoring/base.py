"""The scorer interface: batched, inference-mode, weights loaded once per process."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator, Mapping

import numpy as np
from PIL import Image, UnidentifiedImageError

from molebench.assets.weights import WeightsStatus, file_sha256
from molebench.errors import InputError, MolebenchError

if TYPE_CHECKING:  # imported where a scorer loads or runs, not where its weights are looked up (a run's first check)
    import torch


_SHARED_MODELS: dict[tuple[Any, ...], Any] = {}


def shared_model(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """Build a scorer's network once per process (two runs, or two scorer objects, reuse the loaded checkpoint)."""
    if key not in _SHARED_MODELS:
        _SHARED_MODELS[key] = build()
    return _SHARED_MODELS[key]


def release_shared_models() -> None:
    """Drop every network `shared_model` holds (a process that scores with several large models in turn)."""
    _SHARED_MODELS.clear()


def checkpoint_label(label: str, checkpoint: Path | Mapping[str, Path]) -> str:
    """A scorer version naming the weights, so scores from other weights never mix in one run: `label/ckpt-` + 12
    hex digits of the checkpoint's sha256, or for several files `label/head-<12 hex>+clip-<12 hex>` (their names)."""
    files = checkpoint if isinstance(checkpoint, Mapping) else {"ckpt": checkpoint}
    return f"{label}/" + "+".join(f"{name}-{file_sha256(path)[:12]}" for name, path in files.items())


def checkpoint_fields(path: Path, name: str = "checkpoint") -> dict[str, str]:
    """A weights file as a scorer fingerprint records it: `{name: path, name_sha256: hex}`."""
    return {name: str(path), f"{name}_sha256": file_sha256(path)}


def to_unit_float(image: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
    """An RGB image as float32 (3, H, W) in [0, 1], equal to torchvision's `to_tensor`.

    Scorers preprocess one image at a time: one image's float copy stays in cache through to-float, resize and
    normalise, where the same steps on a batched tensor are memory bound (50 MB per 16 images of 512 px). numpy, not
    torch, for this per-image arithmetic: it runs on the calling thread, where torch would start a team of OpenMP
    threads per calling thread and preprocessing threads would oversubscribe the cores (measured 15-25% slower).
    One pass: the cast and the division run in one ufunc loop, into `out` when given (else a new array that keeps
    the image's channels-last memory order, which torch's resize reads fastest).
    """
    return np.divide(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1), np.float32(255), out=out,
                     dtype=np.float32)


def normalize_into(pixels: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], out: np.ndarray) -> None:
    """Per-channel `(x - mean) / std` of a (C, H, W) float32 image written into `out`, in float32 as torchvision's
    Normalize computes it; `pixels` is overwritten on the way."""
    pixels -= np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    np.divide(pixels, np.asarray(std, dtype=np.float32).reshape(-1, 1, 1), out=out)


_POOLS: dict[str, Any] = {}
_POOLS_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of the parent's threads


def _pool(name: str, workers: int):
    """A process-wide thread pool, started on first use and kept (a batch does not pay for starting threads)."""
    with _POOLS_LOCK:
        if name not in _POOLS:
            from concurrent.futures import ThreadPoolExecutor

            _POOLS[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"molebench-{name}")
        return _POOLS[name]


def map_parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`fn` over items on a small thread pool: PIL's resampling and numpy's arithmetic release the GIL, so per-image
    preprocessing uses every core while staying per image (and so equal to the reference transforms)."""
    items = list(items)
    if len(items) < 4:
        return [fn(item) for item in items]
    return list(_pool("map", min(8, os.cpu_count() or 1)).map(fn, items))


def load_image_rgb(path: str | Path) -> Image.Image:
    """Open an image file as RGB (RGBA is composited on white, greyscale/palette converted); names the file on error."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError:
        raise InputError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"unreadable image {path}: {exc}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


class TinyVersion:
    """Mixed into a tiny scorer ahead of its real class: with its seeded weights built offline the version is
    `<registry name>/<tiny_version>`; pointed at real weights (`--weights`) it is the real scorer's version."""

    tiny_version: ClassVar[str] = "v1"

    @property
    def version(self) -> str:
        return super().version if self.weights else f"{self.registry_name}/{self.tiny_version}"  # type: ignore[misc]


class LoadsOnce:
    """Networks built on first use (`load`), not on construction: listing, fingerprinting and weight lookups stay
    cheap. Subclasses implement `_load`; scorers and detectors share this."""

    _loaded: bool = False

    def load(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    def _load(self) -> None:
        raise NotImplementedError


def metric_direction(directions: Mapping[str, bool | None], metric: str) -> bool | None:
    """A metric's direction from a scorer's `higher_is_better`: True (higher is better; the default for unlisted
    metrics), False (lower) or None (no direction). Read from the instance where one is at hand: crop scorers take
    their inner scorer's directions on the instance."""
    direction = directions.get(metric, True)
    return None if direction is None else bool(direction)


class Scorer(LoadsOnce):
    """Scores (image, prompt) pairs. Subclasses set `metrics` (first = primary) and implement `_load` and either
    `_score_batch` or `_prepare` (CPU work, run one batch ahead) + `_score_prepared` (the network).

    `display_scale` maps a metric to the factor reports multiply by (HPS is reported ×100 by convention);
    `paper_scale` the factor of the MoLE paper's tables where it differs (ImageReward: shown as is, ×100 there);
    `higher_is_better` (torchmetrics' attribute name) is True (the default for unlisted metrics), False (FID: lower
    is better) or None for counts that have no better side (faces, hands): `compare` verdicts and the `regress` gate
    follow it, and metrics with None are never gated. All three are recorded per metric in the run's scorer
    fingerprint, where summaries and reports read them. `kind` is "image" (one value per image, scores.parquet) or "set" (one value per run,
    set_scores.parquet; see molebench.scoring.sets).
    """

    registry_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ("score",)
    display_scale: ClassVar[dict[str, float]] = {}
    higher_is_better: ClassVar[dict[str, bool | None]] = {}
    kind: ClassVar[str] = "image"
    paper_scale: ClassVar[dict[str, float]] = {}
    default_batch_size: ClassVar[int] = 16
    experimental: ClassVar[bool] = False

    def __init__(
        self,
        device: str | torch.device = "cpu",
        dtype: str | None = None,
        batch_size: int | None = None,
        weights: str | Path | None = None,
    ) -> None:
        self._device = device  # as given; a torch.device from the first use of `device` (which imports torch)
        self.dtype = dtype or ("float16" if str(device).startswith("cuda") else "float32")
        self.batch_size = batch_size or self.default_batch_size
        self.weights = weights

    @property
    def device(self) -> torch.device:
        if not hasattr(self._device, "type"):
            import torch

            self._device = torch.device(self._device)
        return self._device  # type: ignore[return-value]

    @property
    def version(self) -> str:
        """Label stored with every score (changes when the weights or the scoring rule change)."""
        return self.registry_name

    def weights_status(self) -> WeightsStatus:
        return WeightsStatus(True, "no weights", "")

    def fingerprint(self) -> dict[str, Any]:
        """What the manifest records of this scorer (subclasses add their weights): name, version, kind, and each
        metric's display scale, direction (None: no direction) and paper scale, which summaries and reports read back
        without this class (or torch)."""
        display = {m: float(self.display_scale.get(m, 1.0)) for m in self.metrics}
        return {"name": self.registry_name, "version": self.version, "kind": self.kind, "display_scale": display,
                "higher_is_better": {m: metric_direction(self.higher_is_better, m) for m in self.metrics},
                "paper_scale": {m: float(self.paper_scale.get(m, display[m])) for m in self.metrics}}

    def score(self, images: list[Image.Image], prompts: list[str]) -> dict[str, np.ndarray]:
        """Metric name -> float array aligned with `images`, computed in batches of `batch_size`; each batch's
        `_prepare` runs on a helper thread while the network scores the previous batch."""
        self.check_pairs(images, prompts)
        import torch

        self.load()
        parts: dict[str, list[np.ndarray]] = {m: [] for m in self.metrics}
        starts = range(0, len(images), self.batch_size)
        batches = [(images[s : s + self.batch_size], list(prompts[s : s + self.batch_size])) for s in starts]
        with torch.inference_mode():
            for out in self._pipelined(batches):
                for metric in self.metrics:
                    parts[metric].append(np.asarray(out[metric], dtype=np.float64).reshape(-1))
        return {m: (np.concatenate(v) if v else np.zeros(0)) for m, v in parts.items()}

    def check_pairs(self, images: list[Image.Image], prompts: list[str]) -> None:
        """One prompt per image, or an error naming the scorer (scoring must never pair them up by position)."""
        if len(images) != len(prompts):
            raise MolebenchError(f"{self.registry_name}: {len(images)} images but {len(prompts)} prompts")

    def _pipelined(self, batches: list[tuple[list[Image.Image], list[str]]]) -> Iterator[dict[str, Any]]:
        def prepare(index: int) -> Any:
            images, prompts = batches[index]
            return self._prepare([to_rgb(im) for im in images], prompts)

        if len(batches) < 2:
            yield from (self._score_prepared(prepare(i)) for i in range(len(batches)))
            return
        ahead = _pool("prepare", 1)  # one batch ahead: its own thread, never a `map` worker (it submits there)
        pending = ahead.submit(prepare, 0)
        for index in range(len(batches)):
            prepared = pending.result()
            if index + 1 < len(batches):
                pending = ahead.submit(prepare, index + 1)
            yield self._score_prepared(prepared)

    def _prepare(self, images: list[Image.Image], prompts: list[str]) -> Any:
        """The CPU work of one batch of RGB images that needs no network (preprocessing, tokens). Subclasses
        override either this and `_score_prepared` (the network's part), or `_score_batch` (everything)."""
        return images, prompts

    def _score_prepared(self, prepared: Any) -> dict[str, Any]:
        return self._score_batch(*prepared)

    def _score_batch(self, images: list[Image.Image], prompts: list[str]) -> dict[str, Any]:
        raise NotImplementedError
