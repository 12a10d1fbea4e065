"""The precisions a run can name (`--dtype`, a scorer's dtype) and the torch dtypes they stand for.

Runs and manifests record the name; models and scorers load weights in the dtype it names. Kept here, not in either
layer, because both use the same table.
"""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
