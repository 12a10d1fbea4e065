"""The precisions a run can name (`--dtype`, a scorer's dtype) and the torch dtypes they stand for.

Runs and manifests record the name; models and scorers load weights in the dtype it names. Kept here, not in either
layer, because both use the same table. A function, not a module-level table, so that importing a model or scorer
module (to look its weights up before a run) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DTYPE_NAMES = ("float32", "float16", "bfloat16")


def torch_dtype(name: str) -> "torch.dtype":
    """The torch dtype named `name` (one of DTYPE_NAMES)."""
    import torch

    if name not in DTYPE_NAMES:
        raise KeyError(name)
    return getattr(torch, name)
