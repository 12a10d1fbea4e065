"""The aesthetic predictor's head (LAION's improved-aesthetic-predictor MLP on CLIP ViT-L/14 image embeddings), a
torch module kept apart from the scorer class in molebench.scoring.aesthetic so that looking the scorer's weights up
imports no torch."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from molebench.errors import InputError

HEAD_WIDTHS = (768, 1024, 128, 64, 16, 1)
HEAD_INDICES = (0, 2, 4, 6, 7)  # the linear layers' places in upstream's nn.Sequential (dropouts at 1, 3, 5)


class AestheticHead(torch.nn.Module):
    """The predictor's linear layers under upstream's state-dict names (`layers.0.weight`, ..., `layers.7.bias`)."""

    def __init__(self, widths: tuple[int, ...] = HEAD_WIDTHS) -> None:
        super().__init__()
        pairs = zip(widths[:-1], widths[1:])
        self.layers = torch.nn.Sequential(OrderedDict(
            (str(index), torch.nn.Linear(fan_in, fan_out)) for index, (fan_in, fan_out) in zip(HEAD_INDICES, pairs)))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.layers(embedding)


def load_head(path: Path, width: int) -> AestheticHead:
    """The head in `path` (a plain state dict, loaded without pickle code), checked strictly against its shape."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        raise InputError(f"cannot load aesthetic head {path}: {exc}") from None
    if not isinstance(state, dict):
        raise InputError(f"aesthetic head {path} holds no state dict")
    head = AestheticHead((width, *HEAD_WIDTHS[1:]))
    expected = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if found != expected or len(found) != len(state):
        raise InputError(f"{path} is not an aesthetic-predictor head on {width}-wide CLIP embeddings: expected "
                         f"{expected}, found {found}")
    head.load_state_dict(state)
    return head.float().eval()
