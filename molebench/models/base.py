"""The model interface every registered text-to-image system implements, and its diffusers implementation.

A model is a registered class with its defaults as class attributes (hub id, pipeline class, scheduler, steps,
guidance, size, dtype) — the registry entry *is* the documentation of the settings used.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from molebench.assets.dtypes import torch_dtype
from molebench.assets.fetch import PIPELINE_EXCLUDES, pipeline_fetch_command
from molebench.assets.weights import (WeightsStatus, cached_repo_id, lookup_description, probe_status,
                                      resolve_snapshot, weight_hashes)
from molebench.errors import InputError, MissingPipelineError
from molebench.models.memory import MemoryOptions
from molebench.models.options import NoOptions, option_keys, parse_options, recorded
from molebench.models.prompt_text import PromptText
from molebench.models.sampler import SamplerOptions

if TYPE_CHECKING:  # torch and diffusers are imported where a model runs, not where its weights are looked up
    import torch
    from PIL import Image

# pipelines whose call takes `prompt_embeds` from CLIP text encoders (prompt weighting builds them)
WEIGHTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")


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


class T2IModel:
    """A text-to-image system. Subclasses set the class attributes and implement `load` and `generate`."""

    registry_name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hub_id: ClassVar[str | None] = None
    # what the fetch command leaves out of the hub repository (see molebench.errors.PIPELINE_EXCLUDES)
    fetch_excludes: ClassVar[tuple[str, ...]] = PIPELINE_EXCLUDES
    default_steps: ClassVar[int] = 50
    default_guidance: ClassVar[float] = 7.5
    default_size: ClassVar[tuple[int, int]] = (512, 512)
    default_scheduler: ClassVar[str] = "DDIMScheduler"
    default_dtype_gpu: ClassVar[str] = "float16"
    paper_settings: ClassVar[str] = ""
    default_scorers: ClassVar[tuple[str, ...]] = ("hps-v2.1", "imagereward")

    def __init__(self, weights: str | Path | None = None, **options: Any) -> None:
        self.weights = weights
        self.options: Any = options  # as given; DiffusersModel keeps its parsed options dataclass here
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
        """Fill unset options from the model's defaults. `auto` dtype is the model's GPU dtype on CUDA and float32 on
        CPU (half precision is slow there); an explicit dtype is honoured on every device."""
        import torch

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
        return resolve_snapshot(self.registry_name, self.hub_id, local_path=self.weights,
                                required=self.required_files(), components=True, fetch=self.fetch_command())

    def required_files(self) -> tuple[str, ...]:
        return ("model_index.json",)

    def weights_status(self) -> WeightsStatus:
        return probe_status(self.weights_path, lambda: lookup_description(self.registry_name, self.hub_id or "",
                                                                          self.weights), self.fetch_command())

    def fetch_command(self) -> str:
        return pipeline_fetch_command(self.hub_id, self.fetch_excludes) if self.hub_id else "built offline on first use"

    def fingerprint(self) -> dict[str, Any]:
        """Identity of the weights for the manifest: name, hub id, the repository and revision the files were found
        under (a moved repository may sit in the cache under its old id; None for a local folder), local path, sha256
        of every weight file."""
        path = self.weights_path()
        repo_id = cached_repo_id(path)
        return {
            "name": self.registry_name,
            "family": self.family,
            "hub_id": self.hub_id,
            "repo_id": repo_id,
            "revision": Path(path).name if repo_id else None,
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
    # the model's own `--option` keys: a frozen dataclass of `option(...)` fields (molebench.models.options);
    # memory options (molebench.models.memory) and prompt text (molebench.models.prompt_text) come on top
    options_class: ClassVar[type] = NoOptions
    # memory options this model turns on by default (e.g. SDXL's fp32 VAE)
    memory_defaults: ClassVar[dict[str, Any]] = {}
    # False for pipelines that take one generator per call: images are then made one at a time on every device
    batches_generators: ClassVar[bool] = True
    # text added to every prompt by default (molebench.models.prompt_text): "none", or "official" for MoLE
    default_prompt_text: ClassVar[str] = "none"
    # emphasis marks in prompts (molebench.models.prompt_weighting) and the DDIM config (molebench.models.sampler):
    # "official" for MoLE (what its scripts do), the pipeline's own behaviour for every other model
    default_prompt_weighting: ClassVar[str] = "none"
    weights_prompts: ClassVar[bool] = True  # False where the pipeline call is not the one prompt_kwargs feeds
    default_scheduler_config: ClassVar[str] = "pipeline"
    accepts_negative_prompt: ClassVar[bool] = True

    def __init__(self, weights: str | Path | None = None, **options: Any) -> None:
        super().__init__(weights)
        context = {"owner": self.registry_name, "known": option_keys(*self.option_groups())}
        self.options = parse_options(self.options_class, options, **context)
        self.memory = MemoryOptions.parse(options, self.memory_defaults, **context)
        self.prompt_text = PromptText.parse(options, self.default_prompt_text, self.default_prompt_weighting,
                                            **context)
        self.requested_sampler = SamplerOptions.parse(options, self.default_scheduler_config, **context)
        self.sampler_given = "scheduler_config" in options
        self.sampler = self.requested_sampler  # what `settings` decides for the run's scheduler class
        if self.prompt_text.negative and not self.accepts_negative_prompt:
            raise InputError(f"--option negative_prompt: {self.pipeline_class} takes no negative prompt")
        if self.prompt_text.prompt_weighting != "none" and (self.pipeline_class not in WEIGHTED_PIPELINES
                                                             or not self.weights_prompts):
            raise InputError(f"--option prompt_weighting: molebench weights prompts for "
                             f"{', '.join(WEIGHTED_PIPELINES)} alone, not {self.registry_name}")
        self.pipe: Any = None

    def option_groups(self) -> tuple[type, ...]:
        """The option dataclasses this model takes, in the order "known: ..." lists their keys."""
        return (self.options_class, MemoryOptions, PromptText, SamplerOptions)

    def pipeline_type(self) -> type:
        """The diffusers pipeline class (resolved early so a missing one fails before a run folder is written)."""
        diffusers = importlib.import_module("diffusers")
        try:
            return getattr(diffusers, self.pipeline_class)
        except (AttributeError, ImportError) as exc:
            raise MissingPipelineError(self.missing_pipeline_message(diffusers.__version__, exc)) from None

    def missing_pipeline_message(self, version: str, exc: Exception) -> str:
        return (f"{self.registry_name} needs the diffusers pipeline {self.pipeline_class}, which the installed "
                f"diffusers {version} does not provide ({exc})")

    def fingerprint(self) -> dict[str, Any]:
        self.pipeline_type()
        return super().fingerprint()

    def settings(self, **kwargs: Any) -> GenerationSettings:
        ddim = (kwargs.get("scheduler") or self.default_scheduler) == "DDIMScheduler"
        # the default official config is DDIM's: another --scheduler keeps the pipeline's config
        self.sampler = self.requested_sampler if self.sampler_given or ddim else SamplerOptions()
        import torch

        settings = super().settings(**kwargs)
        self.memory.check_device(torch.device(kwargs.get("device", "cpu")))
        if getattr(importlib.import_module("diffusers"), settings.scheduler, None) is None:
            raise InputError(f"--scheduler: diffusers has no scheduler class '{settings.scheduler}'")
        self.sampler.check(settings.scheduler)
        return settings

    def extra_settings(self) -> dict[str, Any]:
        return {**recorded(self.options), **self.memory.pixel_settings(),
                **self.prompt_text.settings(self.default_prompt_text), **self.sampler.settings()}

    def memory_options(self) -> dict[str, Any]:
        return self.memory.to_json()

    def load(self, device: torch.device, settings: GenerationSettings) -> None:
        self.device = device
        pipe = self.from_pretrained(self.weights_path(), torch_dtype(self.memory.load_dtype(settings.dtype)))
        set_scheduler(pipe, settings.scheduler)
        self.sampler.apply(pipe)
        self.pipe = self.place(pipe, device)
        self.memory.compute_in(self.pipe, settings.dtype)
        if hasattr(self.pipe, "set_progress_bar_config"):
            self.pipe.set_progress_bar_config(disable=True)

    def from_pretrained(self, path: Path, dtype: torch.dtype) -> Any:
        """Load the pipeline from a local folder (subclasses whose pipeline cannot use diffusers' loader override)."""
        return self.pipeline_type().from_pretrained(str(path), dtype=dtype, local_files_only=True,
                                                    **self.load_kwargs())

    def load_kwargs(self) -> dict[str, Any]:
        return {}

    def place(self, pipe: Any, device: torch.device) -> Any:
        """Move the pipeline to `device` with the memory options (offload, VAE tiling/fp32, attention)."""
        return self.memory.apply(pipe, device)

    def call_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        return {
            "num_inference_steps": settings.steps,
            "guidance_scale": settings.guidance,
            "width": settings.width,
            "height": settings.height,
        }

    def generate(
        self, prompts: list[str], generators: list[torch.Generator], settings: GenerationSettings
    ) -> list[Image.Image]:
        """Images for `prompts`, one generator each.

        On CPU each image is computed on its own: CPU kernels change their summation order with the batch size
        (measured: UNet outputs differ by ~1e-6 between batch 1 and 4), which flips PNG pixels, and bit-identical
        images whatever `--batch-size` matter more there than batching, which buys little on CPU.
        """
        import torch

        assert self.pipe is not None, "call load() first"
        one_at_a_time = not self.batches_generators or (self.device is not None and self.device.type == "cpu")
        if one_at_a_time and len(prompts) > 1:
            return [image for p, g in zip(prompts, generators) for image in self.generate([p], [g], settings)]
        with torch.inference_mode(), self.memory.attention_context():
            return self.run_pipeline(self.prompt_text.apply(list(prompts)), list(generators), settings)

    def run_pipeline(
        self, prompts: list[str], generators: list[torch.Generator], settings: GenerationSettings
    ) -> list[Image.Image]:
        """One pipeline call for a batch, prompts already suffixed (subclasses with other call conventions override
        this and pass `self.prompt_text.negative_kwargs` on)."""
        out = self.pipe(generator=generators, output_type="pil", **self.prompt_kwargs(prompts),
                        **self.call_kwargs(settings))
        return list(out.images)

    def prompt_kwargs(self, prompts: list[str]) -> dict[str, Any]:
        """The prompts and negative prompt for a pipeline call: as text, or as weighted embeddings when
        `prompt_weighting` is on."""
        if self.prompt_text.prompt_weighting == "official":
            from molebench.models.prompt_weighting import pipeline_embeddings

            return pipeline_embeddings(self.pipe, prompts, self.prompt_text.negative)
        return {"prompt": prompts, **self.prompt_text.negative_kwargs(len(prompts))}


def set_scheduler(pipe: Any, name: str | None) -> None:
    """Swap the pipeline's scheduler for the diffusers class `name`, keeping its config (betas, prediction type)."""
    if name and type(pipe.scheduler).__name__ != name:
        scheduler_cls = getattr(importlib.import_module("diffusers"), name, None)
        if scheduler_cls is None:
            raise InputError(f"--scheduler: diffusers has no scheduler class '{name}'")
        pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
