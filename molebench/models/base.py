"""The model interface every registered text-to-image system implements, and its diffusers implementation.

A model is a registered class with its defaults as class attributes (hub id, pipeline class, scheduler, steps,
guidance, size, dtype) — the registry entry *is* the documentation of the settings used.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from molebench.models.weights import lookup_description, resolve_snapshot, weight_hashes

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class GenerationSettings:
    """Everything that changes the pixels of an image besides prompt and seed (part of each image's content key)."""

    steps: int
    guidance: float
    width: int
    height: int
    scheduler: str
    dtype: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WeightsStatus:
    present: bool
    where: str
    fetch: str


class T2IModel:
    """A text-to-image system. Subclasses set the class attributes and implement `load` and `generate`."""

    registry_name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hub_id: ClassVar[str | None] = None
    default_steps: ClassVar[int] = 50
    default_guidance: ClassVar[float] = 7.5
    default_size: ClassVar[tuple[int, int]] = (512, 512)
    default_scheduler: ClassVar[str] = "DDIMScheduler"
    default_dtype_gpu: ClassVar[str] = "float16"
    paper_settings: ClassVar[str] = ""
    default_scorers: ClassVar[tuple[str, ...]] = ("hps-v2.1", "imagereward")

    def __init__(self, weights: str | Path | None = None, **options: Any) -> None:
        self.weights = weights
        self.options = options
        self.device: torch.device | None = None

    # --- settings -------------------------------------------------------------------------------------------
    def settings(
        self,
        *,
        steps: int | None = None,
        guidance: float | None = None,
        size: tuple[int, int] | None = None,
        scheduler: str | None = None,
        dtype: str | None = None,
        device: torch.device | str = "cpu",
    ) -> GenerationSettings:
        """Fill unset options from the model's defaults; fp32 on CPU (half precision there is slow or unsupported)."""
        device = torch.device(device)
        if dtype in (None, "auto"):
            dtype = self.default_dtype_gpu if device.type == "cuda" else "float32"
        width, height = size or self.default_size
        return GenerationSettings(
            steps=steps or self.default_steps,
            guidance=self.default_guidance if guidance is None else guidance,
            width=width,
            height=height,
            scheduler=scheduler or self.default_scheduler,
            dtype=dtype,
            extra=self.extra_settings(),
        )

    def extra_settings(self) -> dict[str, Any]:
        """Model-specific options that change images (recorded in the content key)."""
        return {}

    # --- weights --------------------------------------------------------------------------------------------
    def weights_path(self) -> Path:
        """Local folder of the weights; raises MissingWeightsError with the fetch command when absent."""
        assert self.hub_id, f"{self.registry_name} has no hub id; override weights_path()"
        return resolve_snapshot(self.registry_name, self.hub_id, local_path=self.weights, required=self.required_files())

    def required_files(self) -> tuple[str, ...]:
        return ("model_index.json",)

    def weights_status(self) -> WeightsStatus:
        from molebench.errors import MolebenchError, fetch_command

        fetch = fetch_command(self.hub_id) if self.hub_id else "built offline on first use"
        try:
            return WeightsStatus(True, str(self.weights_path()), fetch)
        except MolebenchError:
            return WeightsStatus(False, lookup_description(self.registry_name, self.hub_id or "", self.weights), fetch)

    def fingerprint(self) -> dict[str, Any]:
        """Identity of the weights for the manifest: name, hub id, local path, sha256 of every weight file."""
        path = self.weights_path()
        return {
            "name": self.registry_name,
            "family": self.family,
            "hub_id": self.hub_id,
            "path": str(path),
            "weights_sha256": weight_hashes(path),
        }

    # --- running --------------------------------------------------------------------------------------------
    def load(self, device: torch.device, settings: GenerationSettings) -> None:
        raise NotImplementedError

    def generate(
        self, prompts: list[str], generators: list[torch.Generator], settings: GenerationSettings
    ) -> list[Image.Image]:
        raise NotImplementedError

    def memory_options(self) -> dict[str, Any]:
        """GPU memory options in effect (recorded in the manifest)."""
        return {}


class DiffusersModel(T2IModel):
    """A model that is one diffusers pipeline class loaded with `from_pretrained` from a local folder."""

    pipeline_class: ClassVar[str] = "StableDiffusionPipeline"

    def __init__(self, weights: str | Path | None = None, **options: Any) -> None:
        super().__init__(weights, **options)
        self.pipe: Any = None

    def load(self, device: torch.device, settings: GenerationSettings) -> None:
        self.device = device
        pipe_cls = getattr(importlib.import_module("diffusers"), self.pipeline_class)
        pipe = pipe_cls.from_pretrained(
            str(self.weights_path()), dtype=DTYPES[settings.dtype], local_files_only=True, **self.load_kwargs()
        )
        if settings.scheduler and type(pipe.scheduler).__name__ != settings.scheduler:
            scheduler_cls = getattr(importlib.import_module("diffusers"), settings.scheduler)
            pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
        self.pipe = self.place(pipe, device)
        if hasattr(self.pipe, "set_progress_bar_config"):
            self.pipe.set_progress_bar_config(disable=True)

    def load_kwargs(self) -> dict[str, Any]:
        return {}

    def place(self, pipe: Any, device: torch.device) -> Any:
        """Move the pipeline to `device` (subclasses apply offload/tiling options here)."""
        return pipe.to(device)

    def call_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        return {
            "num_inference_steps": settings.steps,
            "guidance_scale": settings.guidance,
            "width": settings.width,
            "height": settings.height,
        }

    @torch.inference_mode()
    def generate(
        self, prompts: list[str], generators: list[torch.Generator], settings: GenerationSettings
    ) -> list[Image.Image]:
        """Images for `prompts`, one generator each.

        On CPU each image is computed on its own: CPU kernels change their summation order with the batch size
        (measured: UNet outputs differ by ~1e-6 between batch 1 and 4), which flips PNG pixels, and bit-identical
        images whatever `--batch-size` matter more there than batching, which buys little on CPU.
        """
        assert self.pipe is not None, "call load() first"
        if self.device is not None and self.device.type == "cpu" and len(prompts) > 1:
            return [image for p, g in zip(prompts, generators) for image in self.generate([p], [g], settings)]
        out = self.pipe(prompt=list(prompts), generator=list(generators), output_type="pil", **self.call_kwargs(settings))
        return list(out.images)
