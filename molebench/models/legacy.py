"""VQ-Diffusion and Versatile Diffusion: the paper's two older baselines, on diffusers' deprecated pipelines.

Both pipelines still ship in the pinned diffusers (0.42.1) under `diffusers.pipelines.deprecated` (moved there in
0.25.0, huggingface/diffusers#6169, frozen since), and both run. What does not work is diffusers' own
`from_pretrained` for their hub snapshots (evidence in docs/models.md):
- the snapshots declare components under the old pipeline-folder library names (`["vq_diffusion", ...]`,
  `["versatile_diffusion", ...]`), which 0.42.1 no longer resolves ("vq_diffusion is not one of the libraries
  Diffusers can load components from"; open upstream as huggingface/diffusers#14008);
- VQ-Diffusion's transformer config predates `norm_type`, and the Transformer2DModel remapping reads
  `config["norm_type"]` unguarded (KeyError; microsoft/VQ-Diffusion#47);
- even a save/load round trip fails: 0.42.1 saves the embeddings as `["diffusers", ...]`, a name it cannot load.
So molebench loads these two component by component, each component with its own class's `from_pretrained`
from the snapshot folder, resolving the declared library names itself, and builds the pipeline from the parts.
"""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from molebench.assets.fetch import PIPELINE_EXCLUDES
from molebench.assets.materialize import materialized
from molebench.atomic import sha256_json
from molebench.errors import InputError
from molebench.models.base import DiffusersModel, GenerationSettings
from molebench.models.options import number, option
from molebench.models.tiny_legacy_builders import build_tiny_versatile_diffusion, build_tiny_vq_diffusion
from molebench.models.tiny_variant import TinyVariant
from molebench.registry import register_model

if TYPE_CHECKING:
    import torch

VERIFIED_DIFFUSERS = "0.42.1"


def component_class(pipe_cls: type, library: str, class_name: str) -> type:
    """The class model_index.json declares, from transformers, diffusers or the pipeline's own (deprecated) package."""
    package_name = pipe_cls.__module__.rsplit(".", 1)[0]  # e.g. diffusers.pipelines.deprecated.vq_diffusion
    package = importlib.import_module(package_name)
    if library == "transformers":
        found = getattr(importlib.import_module("transformers"), class_name, None)
    elif library == "diffusers":
        found = getattr(importlib.import_module("diffusers"), class_name, None) or getattr(package, class_name, None)
    elif library == package_name.rsplit(".", 1)[-1]:
        found = getattr(package, class_name, None)
    else:
        raise InputError(f"model_index.json declares {class_name} from '{library}', which is neither transformers, "
                         f"diffusers nor {package_name}; molebench loads no other code")
    if found is None:
        raise InputError(f"model_index.json declares {library}.{class_name}, which the installed packages lack")
    return found


def load_component(cls: type, folder: Path, dtype: torch.dtype) -> Any:
    """One component with its class's own `from_pretrained` (safetensors, or .bin with weights_only)."""
    from diffusers import ModelMixin
    from diffusers.models.modeling_utils import LegacyModelMixin
    from transformers import PreTrainedModel

    if issubclass(cls, ModelMixin):
        config = json.loads((folder / "config.json").read_text())
        if issubclass(cls, LegacyModelMixin) and "norm_type" not in config:
            folder = with_norm_type(folder, config)
        return cls.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    if issubclass(cls, PreTrainedModel):
        return cls.from_pretrained(str(folder), dtype=dtype, local_files_only=True)
    return cls.from_pretrained(str(folder), local_files_only=True)  # tokenizer, scheduler, image processor


def with_norm_type(folder: Path, config: dict[str, Any]) -> Path:
    """A copy of a pre-0.12 Transformer2DModel folder whose config names the `norm_type` it implies.

    diffusers' class remapping reads `config["norm_type"]` before the model's own default applies, so such a config
    cannot be loaded as it is. The copy (config rewritten, weight files symlinked) lives in the molebench cache.
    The value is the one Transformer2DModel itself infers: `ada_norm` when `num_embeds_ada_norm` is set.
    """
    patched = {**config, "norm_type": "ada_norm" if config.get("num_embeds_ada_norm") else "layer_norm"}

    def build(target: Path) -> None:
        for source in folder.iterdir():
            if source.name != "config.json":
                (target / source.name).symlink_to(source.resolve())
        (target / "config.json").write_text(json.dumps(patched, indent=2, sort_keys=True))

    key = sha256_json({"folder": str(folder.resolve()), "config": patched})[:16]
    return materialized(f"config-patch-{key}", "v1", build)


def load_by_components(pipe_cls: type, folder: Path, dtype: torch.dtype) -> Any:
    """Build `pipe_cls` from the components its constructor takes, each loaded from `folder/<name>`."""
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    components: dict[str, Any] = {}
    for name, param in inspect.signature(pipe_cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        entry = index.get(name)
        if not entry or entry[0] is None:
            if param.default is param.empty:
                raise InputError(f"{index_path} declares no '{name}', which {pipe_cls.__name__} needs")
            continue
        components[name] = load_component(component_class(pipe_cls, *entry), folder / name, dtype)
    return pipe_cls(**components)


@dataclass(frozen=True)
class VQDiffusionOptions:
    # the share of the most likely tokens kept at each step (1.0: all; the ITHQ release's default)
    truncation_rate: float = option(1.0, number(0, 1, include_high=True))


class ComponentLoaded(DiffusersModel):
    """A deprecated diffusers pipeline loaded component by component (see the module docstring)."""

    deprecated_since: ClassVar[str] = "0.25.0"
    # repositories from before safetensors: their component weights may be .bin only, so the fetch keeps .bin
    fetch_excludes: ClassVar[tuple[str, ...]] = tuple(p for p in PIPELINE_EXCLUDES if p != "*.bin")

    def from_pretrained(self, path: Path, dtype: torch.dtype) -> Any:
        return load_by_components(self.pipeline_type(), path, dtype)

    def missing_pipeline_message(self, version: str, exc: Exception) -> str:
        return (f"{self.registry_name} needs diffusers' {self.pipeline_class}, deprecated since diffusers "
                f"{self.deprecated_since} and absent from the installed diffusers {version}; molebench verified it "
                f"in diffusers {VERIFIED_DIFFUSERS}: pip install 'diffusers=={VERIFIED_DIFFUSERS}'")


@register_model("vq-diffusion")
class VQDiffusion(ComponentLoaded):
    family = "vq-diffusion"
    description = "VQ-Diffusion (improved, ITHQ, learned classifier-free sampling): a paper baseline"
    hub_id = "microsoft/vq-diffusion-ithq"
    pipeline_class = "VQDiffusionPipeline"
    default_steps = 100
    default_guidance = 5.0
    default_size = (256, 256)
    default_scheduler = "VQDiffusionScheduler"
    default_dtype_gpu = "float16"
    options_class = VQDiffusionOptions
    batches_generators = False  # the VQ-Diffusion scheduler takes one generator per call
    accepts_negative_prompt = False  # its classifier-free guidance uses a learned null embedding
    paper_settings = ("the paper gives no sampling settings; molebench uses the ITHQ release defaults in diffusers: "
                      "100 steps (= the training steps), guidance 5.0 with the learned null embedding, truncation "
                      "rate 1.0, 256x256 (fixed by the 32x32 token grid), fp16")

    def settings(self, **kwargs: Any) -> GenerationSettings:
        if self.memory.cpu_offload != "none":
            raise InputError(f"--option cpu_offload: {self.pipeline_class} puts its inputs on `pipe.device`, not on "
                             "the offload execution device, so offloading would split one step across devices")
        settings = super().settings(**kwargs)
        if (settings.width, settings.height) != self.default_size:
            raise InputError(f"--size: {self.registry_name} makes {self.default_size[0]}x{self.default_size[1]} "
                             f"images only (its token grid is fixed), got {settings.width}x{settings.height}")
        if settings.scheduler != self.default_scheduler:
            raise InputError(f"--scheduler: {self.registry_name} samples discrete tokens and needs "
                             f"{self.default_scheduler}, got {settings.scheduler}")
        return settings

    def run_pipeline(
        self, prompts: list[str], generators: list[torch.Generator], settings: GenerationSettings
    ) -> list[Image.Image]:
        import torch

        (generator,) = generators
        if self.device is not None and self.device.type != "cpu":  # the scheduler draws noise on the model's device
            generator = torch.Generator(self.device).manual_seed(generator.initial_seed())
        out = self.pipe(prompt=prompts, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
                        truncation_rate=self.options.truncation_rate, generator=generator,
                        output_type="pil")
        return list(out.images)


@register_model("versatile-diffusion")
class VersatileDiffusion(ComponentLoaded):
    family = "versatile-diffusion"
    description = "Versatile Diffusion, text-to-image mode: a paper baseline"
    hub_id = "shi-labs/versatile-diffusion"
    pipeline_class = "VersatileDiffusionTextToImagePipeline"
    default_steps = 50
    default_guidance = 7.5
    default_size = (512, 512)
    default_scheduler = "DDIMScheduler"
    default_dtype_gpu = "float16"
    paper_settings = ("the paper gives no sampling settings; molebench uses Versatile Diffusion's own text-to-image "
                      "defaults: DDIM, 50 steps, guidance 7.5, 512x512, fp16")

    def from_pretrained(self, path: Path, dtype: torch.dtype) -> Any:
        pipe = super().from_pretrained(path, dtype)
        pipe.remove_unused_weights()  # the text-data UNet is only needed to swap its attention blocks in (done)
        return pipe


@register_model("tiny-vq-diffusion")
class TinyVQDiffusion(TinyVariant, VQDiffusion):
    description = "VQ-Diffusion pipeline at tiny size (hub snapshot layout), built offline"
    default_steps = 10
    default_size = (32, 32)
    build = staticmethod(build_tiny_vq_diffusion)


@register_model("tiny-versatile-diffusion")
class TinyVersatileDiffusion(TinyVariant, VersatileDiffusion):
    description = "Versatile Diffusion (text-to-image) at tiny size (hub snapshot layout), built offline"
    default_steps = 10
    default_size = (64, 64)
    build = staticmethod(build_tiny_versatile_diffusion)
