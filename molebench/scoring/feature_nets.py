"""The small torch networks of the set-level scorers (molebench.scoring.sets, fid, kid): torchmetrics' feature
extractor slot filled with features computed beforehand, and the seeded stand-in for Inception of `fid-tiny` and
`kid-tiny`. Kept apart from the scorer classes so that looking a scorer's weights up imports no torch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from molebench.assets.materialize import materialized


class GivenFeatures(torch.nn.Module):
    """torchmetrics' feature extractor slot filled with features computed (and cached) beforehand."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class TinyFeatureNet(torch.nn.Module):
    """A seeded stand-in for Inception with its interface: uint8 (N, 3, H, W) in, resized to 32×32 (bilinear,
    antialiased), scaled as Inception's input ((x − 128) / 128), two strided convolutions, mean-pooled: (N, 16)."""

    INPUT_SIZE = 32
    num_features = 16

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, self.num_features, 3, stride=2, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(images.float(), size=(self.INPUT_SIZE, self.INPUT_SIZE), mode="bilinear",
                                            align_corners=False, antialias=True)
        x = torch.relu(self.conv1((x - 128) / 128))
        return torch.relu(self.conv2(x)).mean(dim=(2, 3))


def _build_tiny(folder: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(20240614)
    save_file(TinyFeatureNet().state_dict(), str(folder / "tiny_inception.safetensors"))


def tiny_feature_net(device: torch.device | str = "cpu") -> TinyFeatureNet:
    from safetensors.torch import load_file

    net = TinyFeatureNet()
    net.load_state_dict(load_file(str(materialized("fid-tiny", "v1", _build_tiny) / "tiny_inception.safetensors")))
    return net.to(device).eval()
