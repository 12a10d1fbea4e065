"""Sizes of the real weights files, as their publishers list them, so a missing-weights message says how much a fetch
moves (a 2 GB scorer checkpoint is worth knowing about before a download on a slow link).

Only sizes read from a public listing are kept; each entry names its source. Files not listed here (the MoLE
releases, the diffusers pipelines, HPS v1's hpc.pt, which is published on OneDrive) are shown without a size.
"""

from __future__ import annotations

# (hub repository, or "" for a file name that is unique on its own, file name) -> bytes
KNOWN_SIZES: dict[tuple[str, str], int] = {
    # Git LFS pointer in commit 7a9e21f of the Hugging Face repository THUDM/ImageReward ("Upload ImageReward.pt")
    ("THUDM/ImageReward", "ImageReward.pt"): 1_786_880_927,
    # Git LFS pointers in commit 697403c of the Hugging Face repository xswu/HPSv2 ("Upload 2 files")
    ("xswu/HPSv2", "HPS_v2.1_compressed.pt"): 1_972_490_005,
    ("xswu/HPSv2", "HPS_v2_compressed.pt"): 1_972_484_501,
    # Git LFS pointer of a copy of the file (sha256 6726825d0af5f729…, the digits its name carries) in commit 6040b4d
    # of the Hugging Face repository RaphaelLiu/EvalCrafter-Models (pytorch-fid's name for the same network)
    ("", "weights-inception-2015-12-05-6726825d.pth"): 95_628_359,
    # "1.71 GB" (rounded) on the hub's file pages of copies with the same sha256 (a2bf730a0c7d…), e.g.
    # InvokeAI/clip-vit-large-patch14 (its commit says it is a copy of openai/clip-vit-large-patch14)
    ("openai/clip-vit-large-patch14", "model.safetensors"): 1_710_000_000,
}


def known_size(repo_id: str, filename: str) -> int | None:
    """Bytes of `filename` of `repo_id` where a public listing gives them, else None."""
    return KNOWN_SIZES.get((repo_id, filename), KNOWN_SIZES.get(("", filename)))


def with_size(repo_id: str, filename: str) -> str:
    """`filename (1.79 GB)` where the size is known (decimal units, as the hub lists them), else `filename`."""
    size = known_size(repo_id, filename)
    if size is None:
        return filename
    return f"{filename} ({size / 1e9:.2f} GB)" if size >= 100_000_000 else f"{filename} ({size / 1e6:.1f} MB)"
