"""GPU memory and speed options of a diffusers model, set with `molebench run --option KEY=VALUE`.

One small set of switches users of these pipelines expect (half precision comes from `--dtype`):
- `cpu_offload`: `none`, `model` (`enable_model_cpu_offload`: one component on the GPU at a time) or `sequential`
  (`enable_sequential_cpu_offload`: weights streamed layer by layer; least memory, slowest). CUDA only.
- `vae_tiling` / `vae_slicing`: decode large images tile by tile / a batch image by image (`AutoencoderKL`).
- `vae_fp32`: keep the VAE in float32 while the denoiser runs in half precision; the SDXL VAE overflows in fp16 and
  MoLE's SDXL scripts decode in fp32 (`--no_half_vae`).
- `attention`: which kernel PyTorch's `scaled_dot_product_attention` may use: `sdpa` (PyTorch chooses), `flash`,
  `efficient`, `cudnn`, `math`; or `xformers` (needs the xformers package).
- `attention_slicing`: compute attention in slices (`enable_attention_slicing`; true, "auto", "max" or a size).
- `conv_prepack`: on a CPU, keep every convolution's weight packed in oneDNN's layout instead of reordering it on
  each call (`molebench.assets.conv_pack`): the SD1.5 UNet step at 256 px went from about 0.6 to about 0.8 of the
  dense-matmul rate (`make bench`, `flops`), for one extra copy of the convolution weights in memory (2.0 GiB for
  the SD1.5 UNet in float32). Float rounding only; off by default for that memory. CPU only.
- `storage_dtype`: `same` (weights in `--dtype`), `float16` or `bfloat16`: weights held in that dtype, each layer
  computed in `--dtype` (molebench.models.weight_storage); for CPUs where half-precision matmuls are emulated and
  the float32 pipeline does not fit in memory.

The options in effect go into the run manifest (`model.memory_options`); the ones that change pixels by design
(`vae_fp32`, `vae_tiling`, `storage_dtype`) also go into each image's content key.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from molebench.errors import InputError
from molebench.models.options import Rule, choice, flag, option, parse_options

if TYPE_CHECKING:
    import torch

OFFLOAD_MODES = ("none", "model", "sequential")
STORAGE_DTYPES = ("same", "float16", "bfloat16")
ATTENTION_KERNELS = ("sdpa", "flash", "efficient", "cudnn", "math", "xformers")
VAE_COMPONENTS = ("vae", "vqvae")


def _slicing(value: Any) -> bool | str | int:
    if isinstance(value, (bool, int)) or value in ("auto", "max"):
        return value
    raise ValueError(value)


@dataclass(frozen=True)
class MemoryOptions:
    cpu_offload: str = option("none", choice(*OFFLOAD_MODES))
    vae_tiling: bool = option(False, flag())
    vae_slicing: bool = option(False, flag())
    vae_fp32: bool = option(False, flag())
    attention: str = option("sdpa", choice(*ATTENTION_KERNELS))
    attention_slicing: bool | str | int = option(False, Rule("true, false, auto, max or a slice size", _slicing))
    conv_prepack: bool = option(False, flag())
    storage_dtype: str = option("same", choice(*STORAGE_DTYPES))

    @classmethod
    def parse(cls, options: Mapping[str, Any], defaults: Mapping[str, Any] | None = None, **context: Any
              ) -> "MemoryOptions":
        """The memory keys of `options` over the model's `defaults` (`context`: see `parse_options`)."""
        return parse_options(cls, options, defaults=defaults, **context)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def pixel_settings(self) -> dict[str, Any]:
        """Options that change images by design (part of the content key); empty when all are off."""
        settings: dict[str, Any] = {key: True for key in ("vae_fp32", "vae_tiling") if getattr(self, key)}
        if self.storage_dtype != "same":
            settings["storage_dtype"] = self.storage_dtype
        return settings

    def load_dtype(self, run_dtype: str) -> str:
        """The dtype weights are loaded in: the storage dtype when one is set, else the run's."""
        return run_dtype if self.storage_dtype == "same" else self.storage_dtype

    def compute_in(self, pipe: Any, run_dtype: str) -> None:
        """With a storage dtype, hook `pipe` (after `apply`) so every layer computes in the run's dtype."""
        if self.storage_dtype != "same" and self.storage_dtype != run_dtype:
            from molebench.assets.dtypes import torch_dtype
            from molebench.models.weight_storage import compute_in

            compute_in(pipe, torch_dtype(run_dtype))

    def check_device(self, device: torch.device) -> None:
        """Refuse options the device cannot honour (called before a run folder is written)."""
        if self.cpu_offload != "none" and self.storage_dtype != "same":
            raise InputError("--option storage_dtype: not with cpu_offload (both hook every layer's weights)")
        if self.cpu_offload != "none" and device.type != "cuda":
            raise InputError(f"--option cpu_offload={self.cpu_offload} needs a CUDA device (this run uses {device})")
        if self.conv_prepack and self.storage_dtype != "same":
            raise InputError("--option conv_prepack: not with storage_dtype (packing would copy the half-precision "
                             "weights the storage option keeps and computes from)")
        if self.conv_prepack and device.type != "cpu":
            raise InputError(f"--option conv_prepack=true packs convolution weights for the CPU's oneDNN kernels "
                             f"(this run uses {device})")

    # --- applying ----------------------------------------------------------------------------------------------
    def apply(self, pipe: Any, device: torch.device) -> Any:
        """Put `pipe` on `device` with these options (offload replaces `.to(device)`)."""
        self.check_device(device)
        if self.vae_fp32:
            upcast_vae(pipe)
        vaes = [getattr(pipe, name) for name in VAE_COMPONENTS if getattr(pipe, name, None) is not None]
        for key, method in (("vae_tiling", "enable_tiling"), ("vae_slicing", "enable_slicing")):
            if getattr(self, key):
                capable = [vae for vae in vaes if hasattr(vae, method)]
                if not capable:
                    raise InputError(f"--option {key}: {type(pipe).__name__} has no VAE that supports it")
                for vae in capable:
                    getattr(vae, method)()
        if self.attention_slicing is not False:
            pipe.enable_attention_slicing("auto" if self.attention_slicing is True else self.attention_slicing)
        if self.attention == "xformers":
            try:
                pipe.enable_xformers_memory_efficient_attention()
            except (ImportError, ModuleNotFoundError, ValueError) as exc:
                raise InputError(f"--option attention=xformers: {exc}") from None
        if self.cpu_offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif self.cpu_offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
        if self.conv_prepack:
            pack_pipeline_convolutions(pipe)
        return pipe

    @contextlib.contextmanager
    def attention_context(self) -> Iterator[None]:
        """Restrict PyTorch's SDPA to the chosen kernel while the pipeline runs (no-op for `sdpa`/`xformers`)."""
        from torch.nn.attention import SDPBackend, sdpa_kernel

        kernels = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                   "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
        if self.attention not in kernels:
            yield
            return
        with sdpa_kernel([kernels[self.attention]]):
            yield


def pack_pipeline_convolutions(pipe: Any) -> int:
    """Pack the convolutions of every module component of `pipe` (UNet, VAE, …); returns how many."""
    import torch

    from molebench.assets.conv_pack import pack_convolutions

    components = getattr(pipe, "components", {}) or {}
    return sum(pack_convolutions(part) for part in components.values() if isinstance(part, torch.nn.Module))


def upcast_vae(pipe: Any) -> None:
    """Keep the VAE in float32 and cast whatever reaches it (half-precision latents) to float32.

    Pipelines decode with the latents' dtype; forward pre-hooks on the VAE's entry modules cast inputs instead of
    copying each pipeline's decode code.
    """
    import torch

    vae = getattr(pipe, "vae", None)
    if vae is None or getattr(vae, "_molebench_fp32", False):
        return
    vae.to(torch.float32)
    for name in ("post_quant_conv", "decoder", "encoder", "quant_conv"):
        module = getattr(vae, name, None)
        if isinstance(module, torch.nn.Module):
            module.register_forward_pre_hook(_cast_inputs_to_float32)
    vae._molebench_fp32 = True


def _cast_inputs_to_float32(module: torch.nn.Module, args: tuple) -> tuple:
    import torch

    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)
