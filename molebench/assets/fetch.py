"""The commands that fetch weights from the Hugging Face hub on a connected machine (molebench never downloads).

A leaf module: `molebench.errors` quotes these commands in its missing-weights message, and the lookup code in
`molebench.assets.weights` raises those errors, so the commands cannot live in either without an import circle.
"""

from __future__ import annotations


def fetch_command(repo_id: str, files: list[str] | tuple[str, ...] = ()) -> str:
    """The shell command that puts `files` of `repo_id` (all of it when empty) into the Hugging Face cache."""
    return " ".join(["hf", "download", repo_id, *files])


# A diffusers pipeline is model_index.json plus one folder per component. Repositories also hold single-file
# checkpoints at their root (4-8 GB each), fp16 / non-EMA duplicates and other frameworks' weights, none of which
# `from_pretrained` reads: the fetch command leaves them out.
PIPELINE_EXCLUDES = ("*.bin", "*.ckpt", "*.fp16.*", "*non_ema*", "*.onnx*", "*.msgpack", "*.h5")


def pipeline_fetch_command(repo_id: str, excludes: tuple[str, ...] = PIPELINE_EXCLUDES) -> str:
    """The command that fetches the whole diffusers pipeline of `repo_id` (every component folder), nothing else."""
    patterns = ['--include "model_index.json"', '--include "*/*"', *(f'--exclude "{p}"' for p in excludes)]
    return " ".join([fetch_command(repo_id), *patterns])
