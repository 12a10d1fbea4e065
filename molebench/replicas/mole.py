"""MoLE replicas: rank-256 face and hand kohya LoRAs and the gate (moe) file, in the official key layout and names.

File names are those of the official scripts (JiePKU/MoLE): kohya names each file after its training command
(`--output_name=$my_name`, the script's name), and the SDXL generation script loads
`lora_sdxl_face_llavacap_30k-lr2e-5-d256-step00030000.safetensors`,
`lora_sdxl_hand_llavacap_60k-lr1e-5-d256-step00060000.safetensors` and
`moe_sdxl_clip25_50K-highquality-llavacap-step00030000.safetensors`; the SD1.5 commands are
`lora_unet_adamw_face-bsd15.sh`, `lora_unet_adamw_hand-bsd15.sh` and `moe_unet_adamw_2ex_gate_50k_bsd15.sh` (no
step suffix: the final save). Ranks and alphas: 256 for both experts, alpha 64 (face) and 128 (hand). The SDXL files
are saved in bfloat16 (`--save_precision="bf16"` in the SDXL commands), the SD1.5 ones in float32 (kohya's default).
Tensor names: `lora_unet_<module>` with the module path in diffusers' spelling for SD1.5 and in the original
(LDM/SGM) spelling for SDXL, as kohya writes each family (molebench.models.mole.names). The SD1.5 gate file holds
the experts' copies (`softmoe.experts.{0,1}`), as the official training saves them; the SDXL replica's gate file
leaves them out to save 2.6 GB of disk (the loader takes the experts from the LoRA files either way).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from molebench.models.mole.names import MOLE_PREFIX, kohya_name, ldm_path
from molebench.models.mole.synthetic import kohya_targets
from molebench.replicas.tensors import on_meta, random_value, save_safetensors

RANK = 256
ALPHAS = {"face": 64.0, "hand": 128.0}
SD15_FILES = {"face": "lora_unet_adamw_face-bsd15.safetensors", "hand": "lora_unet_adamw_hand-bsd15.safetensors",
              "gates": "moe_unet_adamw_2ex_gate_50k_bsd15.safetensors"}
SDXL_FILES = {"face": "lora_sdxl_face_llavacap_30k-lr2e-5-d256-step00030000.safetensors",
              "hand": "lora_sdxl_hand_llavacap_60k-lr1e-5-d256-step00060000.safetensors",
              "gates": "moe_sdxl_clip25_50K-highquality-llavacap-step00030000.safetensors"}


def _targets(unet_config: dict, ldm: bool) -> list[tuple[str, tuple[int, int], bool]]:
    """(kohya name, (d_in, d_out), is 1×1 conv) for every kohya LoRA target of the UNet the config describes."""
    import diffusers

    unet = on_meta(lambda: diffusers.UNet2DConditionModel.from_config(unet_config))
    up_attention = [hasattr(block, "attentions") for block in unet.up_blocks]
    found = []
    for path in kohya_targets(unet):
        module = unet.get_submodule(path)
        name = ldm_path(path, unet_config["layers_per_block"], up_attention) if ldm else path
        assert name is not None, path
        found.append((kohya_name(name), (module.weight.shape[1], module.weight.shape[0]), isinstance(module, nn.Conv2d)))
    return found


def write_mole_files(folder: Path, unet_config: dict, files: dict[str, str], ldm: bool, dtype: torch.dtype,
                     copies: bool, seed: int) -> dict[str, Path]:
    """The two expert LoRA files and the gate file in `folder`, one file in memory at a time."""
    targets = _targets(unet_config, ldm)
    written = {}
    for expert in ("face", "hand"):
        state = {}
        for key, (d_in, d_out), conv in targets:
            tail = (1, 1) if conv else ()
            state[f"{key}.lora_down.weight"] = random_value(f"{expert}:{key}.down", (RANK, d_in, *tail), dtype, seed)
            state[f"{key}.lora_up.weight"] = random_value(f"{expert}:{key}.up", (d_out, RANK, *tail), dtype, seed)
            state[f"{key}.alpha"] = torch.tensor(ALPHAS[expert], dtype=dtype)
        written[expert] = save_safetensors(state, folder / files[expert])
        del state
    gates: dict[str, torch.Tensor] = {}
    for key, (d_in, d_out), conv in targets:
        prefix = f"{MOLE_PREFIX}{key}.softmoe"
        gates[f"{prefix}.Phi_1.weight"] = random_value(f"{prefix}.Phi_1.weight", (2, d_in), dtype, seed)
        gates[f"{prefix}.Phi_1.bias"] = torch.zeros(2, dtype=dtype)
        for index, expert in enumerate(("face", "hand")):
            gates[f"{prefix}.{expert}_scale.weight"] = random_value(f"{prefix}.{expert}", (1, d_out), dtype, seed)
            gates[f"{prefix}.{expert}_scale.bias"] = torch.zeros(1, dtype=dtype)
            if copies:  # the same values as the LoRA file's (the official training starts from them)
                tail = (1, 1) if conv else ()
                gates[f"{prefix}.experts.{index}.lora_down.weight"] = random_value(
                    f"{expert}:{key}.down", (RANK, d_in, *tail), dtype, seed)
                gates[f"{prefix}.experts.{index}.lora_up.weight"] = random_value(
                    f"{expert}:{key}.up", (d_out, RANK, *tail), dtype, seed)
    written["gates"] = save_safetensors(gates, folder / files["gates"])
    return written


def build_mole_sd15(folder: Path, dtype: torch.dtype, seed: int) -> None:
    from molebench.replicas.configs_sd import SD15

    write_mole_files(folder, SD15["unet/config.json"], SD15_FILES, ldm=False, dtype=torch.float32, copies=True,
                     seed=seed)


def build_mole_sdxl(writer, scratch: Path, dtype: torch.dtype, seed: int) -> None:
    from molebench.replicas.configs_sd import SDXL

    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        written = write_mole_files(Path(tmp), SDXL["unet/config.json"], SDXL_FILES, ldm=True, dtype=torch.bfloat16,
                                   copies=False, seed=seed)
        for path in written.values():
            writer.add_file(path.name, path)
