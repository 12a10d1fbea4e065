"""Registered MoLE models: `mole-sd15`, `mole-sdxl` (official releases) and `tiny-mole-sd15` (offline, seeded).

A MoLE model is the base diffusers pipeline with MoLE layers attached to its UNet after loading; everything else
(scheduler swap, device placement, generation) is the plain `DiffusersModel` path.

Options (`molebench run --option KEY=VALUE`):
- files: `face=PATH`, `hand=PATH`, `gates=PATH` (expert LoRAs and gate file), `base=DIR` (diffusers pipeline),
  `base_unet=PATH` (fine-tuned UNet: diffusers folder or single file), `base_text_encoder=PATH` (fine-tuned text
  encoder: transformers folder or single file);
- recorded in the settings (and so in every image's content key): the ablations `local_gate=false`,
  `global_gate=false`, `expert_scales=1,1` (fixed weights instead of gates: plain LoRA mixing), `experts=face`;
  `expert_weights=gates` (the gate file's expert copies instead of the LoRA files, see checkpoint.py); and what the
  official scripts do around the model, on by default: their prompt suffix and negative prompt (`prompt_text=none`
  turns it off; molebench.models.prompt_text), their prompt weighting (`prompt_weighting=none`;
  molebench.models.prompt_weighting) and their DDIM config (`scheduler_config=pipeline`; molebench.models.sampler).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, make_dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text

from molebench import ui
from molebench.assets.fetch import fetch_command, pipeline_fetch_command
from molebench.assets.materialize import materialized
from molebench.assets.weights import (WeightsStatus, explicit_weights, file_sha256, lookup_description, probe_status,
                                      resolve_snapshot, weight_hashes)
from molebench.errors import InputError, MissingWeightsError, raise_missing
from molebench.models.base import DiffusersModel
from molebench.models.mole.attach import MoLEOptions, attach_mole
from molebench.models.mole.checkpoint import (EXPERT_WEIGHTS, OFFICIAL_EXPERTS, MoLECheckpointWarning,
                                              load_mole_checkpoint)
from molebench.models.mole.files import (MissingMoLEWeightsError, MoLEFiles, load_base_text_encoder, load_base_unet,
                                         locate_files)
from molebench.models.options import choice, option, option_keys, parse_options, path
from molebench.models.sdxl import StableDiffusionXL
from molebench.models.stable_diffusion import StableDiffusion15
from molebench.models.tiny_variant import TinyVariant
from molebench.paths import weights_env_var
from molebench.registry import register_model

if TYPE_CHECKING:
    import torch

FILE_OPTIONS = ("gates", "base", "base_unet", "base_text_encoder")


@lru_cache(maxsize=None)
def release_options(expert_names: tuple[str, ...]) -> type:
    """The options that say where a MoLE release is: a path per expert LoRA (named after the experts), the gate file,
    the base pipeline and fine-tuned UNet (paths: their hashes identify them), and which copy of the expert weights
    to use (recorded under `mole` in the settings)."""
    paths = [(name, str | None, option(None, path(), recorded=False)) for name in (*expert_names, *FILE_OPTIONS)]
    source = ("expert_weights", str, option("lora", choice(*EXPERT_WEIGHTS)))
    return make_dataclass("MoLEReleaseOptions", [*paths, source], frozen=True)


class MoLEModel(DiffusersModel):
    """The base pipeline of `base_hub_id` (or a local one) with face/hand MoLE experts on its UNet."""

    base_hub_id: ClassVar[str] = ""
    expert_names: ClassVar[tuple[str, ...]] = OFFICIAL_EXPERTS
    release_note: ClassVar[str] = ""
    # the model the paper's numbers come from sits on a fine-tune of these base components (warned when missing)
    paper_base: ClassVar[tuple[str, ...]] = ()
    default_prompt_text = "official"  # gen_img_diffusers_moe.py / moe_sdxl_gen_img.py add it to every prompt
    default_scheduler_config = "official"  # both scripts build their own DDIM scheduler (molebench.models.sampler)

    def __init__(self, weights: str | Path | None = None, **options: Any) -> None:
        super().__init__(weights, **options)  # unknown keys are refused there, against every group of option_groups
        context = {"owner": self.registry_name, "known": option_keys(*self.option_groups())}
        release = parse_options(release_options(self.expert_names), options, **context)
        self.file_options = {k: v for k, v in asdict(release).items() if k != "expert_weights" and v is not None}
        self.expert_weights = release.expert_weights
        self.mole_options = MoLEOptions.parse(options, self.expert_names, label="--option", **context)
        self._dtype: torch.dtype | None = None  # the pipeline's, set by from_pretrained before the UNet loads

    def option_groups(self) -> tuple[type, ...]:
        return (release_options(self.expert_names), MoLEOptions, *super().option_groups())

    # --- files ------------------------------------------------------------------------------------------------
    def mole_root(self) -> Path | None:
        """The folder holding the release: --weights, MOLEBENCH_WEIGHTS_<NAME>, or the hub snapshot."""
        explicit = explicit_weights(self.registry_name, self.weights)
        if explicit is not None:
            if not explicit.is_dir():
                raise InputError(f"weights for {self.registry_name} must be a folder (face/hand LoRAs and the gate "
                                 f"file); {explicit} is not one")
            return explicit
        if all(self.file_options.get(role) for role in (*self.expert_names, "gates")):
            return None
        if self.hub_id:
            return resolve_snapshot(self.registry_name, self.hub_id)
        raise MissingMoLEWeightsError(
            f"missing weights for {self.registry_name}: {self.release_note} Put the face and hand kohya LoRA files "
            f"and the gate (moe) file in a folder, optionally with the fine-tuned base UNet, and pass --weights DIR "
            f"or set {weights_env_var(self.registry_name)}=DIR (or name each file with --option face=PATH "
            "--option hand=PATH --option gates=PATH)."
        )

    @cached_property
    def files(self) -> MoLEFiles:
        try:
            files = locate_files(self.mole_root(), self.expert_names, self.file_options, self.registry_name)
        except MissingWeightsError as exc:  # name the base pipeline too when it is missing as well
            raise_missing([exc, *self._missing_base()])
        if files.pipeline is None:
            files.stock_pipeline = True
            files.pipeline = self._base_pipeline()
        return files

    def _base_pipeline(self) -> Path:
        return resolve_snapshot(f"{self.registry_name}-base", self.base_hub_id, required=("model_index.json",),
                                components=True, fetch=pipeline_fetch_command(self.base_hub_id))

    def _missing_base(self) -> list[MissingWeightsError]:
        try:
            self._base_pipeline()
        except MissingWeightsError as exc:
            return [exc]
        return []

    def weights_path(self) -> Path:
        """The base pipeline folder (what `from_pretrained` loads); the experts are attached afterwards."""
        return self.files.pipeline

    def fetch_command(self) -> str:
        base = pipeline_fetch_command(self.base_hub_id)
        if self.hub_id:
            return f"{fetch_command(self.hub_id)} && {base}"
        return f"no public release known: --weights DIR (base: {base})"

    def weights_status(self) -> WeightsStatus:
        return probe_status(lambda: self.files.root or self.files.pipeline, self._looked, self.fetch_command())

    def _looked(self) -> str:
        if self.hub_id:
            where = lookup_description(self.registry_name, self.hub_id, self.weights)
        else:
            where = str(self.weights) if self.weights else f"--weights, else ${weights_env_var(self.registry_name)}"
        base = lookup_description(f"{self.registry_name}-base", self.base_hub_id, self.file_options.get("base"))
        return f"{where}; base pipeline: {base}"

    def fingerprint(self) -> dict[str, Any]:
        self.pipeline_type()
        files = self.files
        mole = {**{f"mole/{e}/{p.name}": p for e, p in files.experts.items()}, f"mole/gates/{files.gates.name}": files.gates}
        own = {p.resolve() for p in mole.values()}
        hashes = {f"base/{k}": v for k, v in weight_hashes(files.pipeline).items()
                  if (files.pipeline / k).resolve() not in own}
        if files.base_unet is not None:
            hashes.update({f"base_unet/{k}": v for k, v in weight_hashes(files.base_unet).items()})
        if files.base_text_encoder is not None:
            hashes.update({f"base_text_encoder/{k}": v for k, v in weight_hashes(files.base_text_encoder).items()})
        hashes.update({k: file_sha256(p) for k, p in mole.items()})
        return {
            "name": self.registry_name,
            "family": self.family,
            "hub_id": self.hub_id,
            "base_hub_id": self.base_hub_id,
            "path": str(files.root or files.pipeline),
            "files": {"pipeline": str(files.pipeline), "base_unet": str(files.base_unet) if files.base_unet else None,
                      "base_text_encoder": str(files.base_text_encoder) if files.base_text_encoder else None,
                      **{e: str(p) for e, p in files.experts.items()}, "gates": str(files.gates)},
            "weights_sha256": hashes,
            "warnings": self.base_warnings(),
        }

    def base_warnings(self) -> list[str]:
        """Why this run's base is not the paper's: the stock pipeline's UNet or text encoder where the paper's
        model sits on its Stage-1 fine-tune of both (appendix A.1). A base pipeline from the MoLE folder or
        `--option base` is taken as the fine-tune (molebench cannot tell, no fine-tune is public)."""
        files = self.files
        given = {"unet": files.base_unet, "text_encoder": files.base_text_encoder}
        stock = [part for part in self.paper_base if files.stock_pipeline and given.get(part) is None]
        if not stock:
            return []
        names = " and ".join(part.replace("_", " ") for part in stock)
        return [f"{self.registry_name} runs on the stock {self.base_hub_id} {names}: the paper's MoLE sits on its "
                f"Stage-1 fine-tune of the UNet and the text encoder (appendix A.1), which is not public; numbers "
                f"are not the paper's model's (give the fine-tune with --option base_unet=PATH --option "
                f"base_text_encoder=PATH, or --option base=DIR)"]

    def extra_settings(self) -> dict[str, Any]:
        mole = {**self.mole_options.to_json(self.expert_names), "expert_weights": self.expert_weights}
        return {**super().extra_settings(), "mole": mole}

    # --- loading: the base pipeline as usual, then the experts on its UNet (before placement/offload) ---------------
    def from_pretrained(self, path: Path, dtype: torch.dtype) -> Any:
        self._dtype = dtype
        return super().from_pretrained(path, dtype)

    def load_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(super().load_kwargs())
        if self.files.base_unet is not None:
            kwargs["unet"] = load_base_unet(self.files.base_unet, self.files.pipeline, self._dtype)
        if self.files.base_text_encoder is not None:
            kwargs["text_encoder"] = load_base_text_encoder(self.files.base_text_encoder, self.files.pipeline,
                                                            self._dtype)
        return kwargs

    def place(self, pipe: Any, device: torch.device) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MoLECheckpointWarning)
            checkpoint = load_mole_checkpoint(dict(self.files.experts), self.files.gates,
                                              expert_weights=self.expert_weights)
        for warning in caught:  # the loader's warnings in the CLI's own style; anything else as it came
            if issubclass(warning.category, MoLECheckpointWarning):
                ui.err.print(Text.assemble(("warning: ", "bold yellow"), str(warning.message)), soft_wrap=True)
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        attach_mole(pipe.unet, checkpoint, self.mole_options)
        return super().place(pipe, device)


@register_model("mole-sd15")
class MoLESD15(MoLEModel, StableDiffusion15):
    """The sd15 baseline's pipeline and settings (the official gen_mole.sh uses the same) plus the experts."""

    default_prompt_weighting = "official"  # gen_img_diffusers_moe.py weights (x), [x], (x:1.3)

    description = "MoLE on Stable Diffusion v1.5: face + hand low-rank experts with soft local/global gates"
    hub_id = None
    base_hub_id = StableDiffusion15.hub_id
    paper_settings = ("DDIM with the script's own config (set_alpha_to_one=True), 50 steps, guidance 7.5, 512x512, "
                      "fp16, 1 image per prompt (official gen_mole.sh); prompt + ' best quality, 8K', negative prompt "
                      "' poor quality, unclear hand, bad face ', (x)/[x]/(x:w) prompt weighting "
                      "(gen_img_diffusers_moe.py)")
    release_note = ("No public SD1.5 MoLE release is confirmed (the authors released SDXL weights as "
                    "jiezhueval/MoLE-SDXL).")
    paper_base = ("unet", "text_encoder")


@register_model("mole-sdxl")
class MoLESDXL(MoLEModel, StableDiffusionXL):
    """The sdxl baseline's pipeline and settings (DDIM, 50 steps, 7.5, 1024², bf16 with the fp32 VAE memory option,
    as in the official moe_sdxl_gen-id0-llava.sh) plus the experts."""

    description = "MoLE on SDXL (official release jiezhueval/MoLE-SDXL): face + hand experts, soft gates"
    default_prompt_weighting = "official"  # moe_sdxl_gen_img.py weights (x), [x], (x:1.3) for both encoders
    hub_id = "jiezhueval/MoLE-SDXL"
    base_hub_id = StableDiffusionXL.hub_id
    paper_settings = ("DDIM with the script's own config (set_alpha_to_one=True), 50 steps, guidance 7.5, 1024x1024, "
                      "bf16 with fp32 VAE, 2 images per prompt (official moe_sdxl_gen-id0-llava.sh; --seeds 0,1 here); "
                      "prompt + ' best quality, 8K', negative prompt ' poor quality, unclear hand, bad face ' "
                      "and (x)/[x]/(x:w) prompt weighting (moe_sdxl_gen_img.py)")


TINY_MOLE_SEED = 20240602
TINY_RANKS = {"face": 4, "hand": 8}
TINY_ALPHAS = {"face": 2.0, "hand": 8.0}


def build_tiny_mole_sd15(folder: Path) -> None:
    """tiny-sd15's pipeline plus seeded face/hand experts and gates, saved in the official file layout."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from molebench.models.mole.synthetic import synthetic_checkpoint
    from molebench.models.tiny_sd import build_tiny_sd15

    build_tiny_sd15(folder)
    unet = UNet2DConditionModel.from_pretrained(str(folder / "unet"))
    loras, gates = synthetic_checkpoint(unet, TINY_RANKS, TINY_ALPHAS, seed=TINY_MOLE_SEED, up_std=0.2, gate_std=0.5,
                                        copies=True)
    for name, tensors in loras.items():
        save_file(tensors, str(folder / f"{name}_lora.safetensors"))
    save_file(gates, str(folder / "moe_gates.safetensors"))


@register_model("tiny-mole-sd15")
class TinyMoLESD15(TinyVariant, MoLESD15):
    description = "MoLE on tiny-sd15: seeded face/hand experts + gates in the official key layout (offline)"
    release_note = ""
    paper_base = ()  # its own seeded base: nothing to compare with
    default_steps = 10
    default_size = (64, 64)
    paper_settings = "not in the paper; MoLE's layer and checkpoint format on a tiny SD1.5-architecture pipeline"
    build = staticmethod(build_tiny_mole_sd15)

    def weights_path(self) -> Path:
        return MoLEModel.weights_path(self)  # the pipeline found in the MoLE folder, not the folder itself

    def mole_root(self) -> Path | None:
        """The materialised seeded release, unless --weights or MOLEBENCH_WEIGHTS_TINY_MOLE_SD15 name another."""
        if explicit_weights(self.registry_name, self.weights):
            return super().mole_root()
        return materialized(self.registry_name, self.tiny_version, self.build)
