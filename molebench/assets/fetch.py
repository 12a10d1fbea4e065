"""The commands that fetch whole diffusers pipelines from the Hugging Face hub on a connected machine (molebench
never downloads). The single-repository command is `molebench.errors.fetch_command`: the missing-weights message on
the ground floor quotes it.
"""

from __future__ import annotations

from molebench.errors import fetch_command


# A diffusers pipeline is model_index.json plus one folder per component. Repositories also hold single-file
# checkpoints at their root (4-8 GB each), fp16 / non-EMA duplicates and other frameworks' weights, none of which
# `from_pretrained` reads: the fetch command leaves them out.
PIPELINE_EXCLUDES = ("*.bin", "*.ckpt", "*.fp16.*", "*non_ema*", "*.onnx*", "*.msgpack", "*.h5")


def pipeline_fetch_command(repo_id: str, excludes: tuple[str, ...] = PIPELINE_EXCLUDES) -> str:
    """The command that fetches the whole diffusers pipeline of `repo_id` (every component folder), nothing else."""
    patterns = ['--include "model_index.json"', '--include "*/*"', *(f'--exclude "{p}"' for p in excludes)]
    return " ".join([fetch_command(repo_id), *patterns])
