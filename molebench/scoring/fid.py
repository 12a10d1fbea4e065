"""`fid` and `kid`: Fréchet and Kernel Inception Distance of a run's images to a reference set (torchmetrics).

Features: torchmetrics' `NoTrainInceptionV3` (torch-fidelity's port of the TensorFlow FID Inception, 2048-d pool
features) with weights from a local file, `weights-inception-2015-12-05-6726825d.pth` (torch-fidelity's release
v0.2.0; the 8 hex digits are the start of its sha256, checked here, except for a molebench replica of the file:
random weights, accepted from a replica folder only, its scores marked `replica: true` and its features kept apart
under their own tag). Nothing is downloaded: the file is looked up in
`$MOLEBENCH_WEIGHTS_INCEPTION` (file or folder), then in torch hub's `checkpoints/` folder, where torch-fidelity and
torchmetrics would have put it. It is first loaded with `torch.load(weights_only=True)` (refusing pickled code)
before torch-fidelity reads it.

On a CPU the network's convolution weights are kept packed in oneDNN's layout (`cpu_ready`): same features up to
float rounding, faster (see the function).

Resize rule: the centred square at the shorter side (see `centre_square`), handed as uint8 to the extractor, which
resizes it to 299×299 with bilinear interpolation and antialiasing (torchmetrics' default `antialias=True`).

Both metrics are biased by the sample size (FID strongly, upwards, below ~10k images; KID is unbiased but noisy):
numbers rest on few thousand images at most and are comparable only at equal image counts and reference sets —
every stored value carries `n` and `n_reference`. KID: 100 random subsets of min(1000, n, n_reference) images,
seeded (0), polynomial kernel of degree 3; its std over the subsets is stored as the value's uncertainty.

`fid-tiny` / `kid-tiny`: the same pipeline on a tiny seeded convolutional extractor (16 features at 32×32), saved
as safetensors and loaded back offline.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from molebench.assets.materialize import offline_status
from molebench.assets.weights import WeightsStatus, file_sha256, is_replica_path, probe_status
from molebench.errors import InputError, MissingWeightsError
from molebench.paths import weights_env_var, weights_override
from molebench.registry import register_scorer
from molebench.scoring.base import checkpoint_fields, shared_model
from molebench.scoring.sets import SetScorer, feed, seeded

if TYPE_CHECKING:
    import torch

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256_PREFIX = "6726825d"
INCEPTION_ORIGIN = "torch-fidelity release v0.2.0, the TensorFlow FID Inception converted to PyTorch"
INCEPTION_FETCH = ('python -c "import torch.hub, torch_fidelity.feature_extractor_inceptionv3 as m; '
                   'torch.hub.load_state_dict_from_url(m.URL_INCEPTION_V3)"')
KID_SUBSETS, KID_MAX_SUBSET, KID_SEED = 100, 1000, 0


def torch_hub_dir() -> Path:
    """torch hub's folder by torch's rule ($TORCH_HOME/hub, TORCH_HOME defaulting to $XDG_CACHE_HOME/torch, else
    ~/.cache/torch), read without importing torch; once torch is imported, its own answer (`torch.hub.set_dir`)."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(home).expanduser() / "hub"


def inception_candidate() -> Path:
    """Where the Inception weights file is looked for (not checked): `$MOLEBENCH_WEIGHTS_INCEPTION`, else torch hub."""
    explicit = weights_override("inception")
    hub = torch_hub_dir() / "checkpoints" / INCEPTION_FILE
    return (explicit / INCEPTION_FILE if explicit.is_dir() else explicit) if explicit is not None else hub


def inception_path() -> Path:
    """The local Inception weights file, or MissingWeightsError (exit 2) naming it and how to get it."""
    candidate = inception_candidate()
    if not candidate.is_file():
        explicit = weights_override("inception") is not None
        looked = f"{candidate}" if explicit else f"${weights_env_var('inception')}, then {candidate}"
        raise MissingWeightsError("fid/kid (Inception features)", INCEPTION_ORIGIN, [INCEPTION_FILE],
                                  hint=f"looked in {looked}", fetch=INCEPTION_FETCH, hub=False)
    if not file_sha256(candidate).startswith(INCEPTION_SHA256_PREFIX) and not is_replica_path(candidate):
        raise InputError(f"{candidate} is not torch-fidelity's {INCEPTION_FILE} (its sha256 does not start with "
                         f"{INCEPTION_SHA256_PREFIX}); fetch it with: {INCEPTION_FETCH}")
    return candidate


def _load_inception(path: Path, device: torch.device) -> torch.nn.Module:
    import torch
    from torchmetrics.image.fid import NoTrainInceptionV3

    try:
        torch.load(path, map_location="cpu", weights_only=True)  # refuse pickled code before torch-fidelity loads it
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        raise InputError(f"cannot load Inception weights {path}: {exc}") from None
    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                             feature_extractor_weights_path=str(path), antialias=True)
    return cpu_ready(net.to(device).eval(), device)


def cpu_ready(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """On a CPU, Inception's convolutions keep oneDNN-packed weights (`molebench.assets.conv_pack`): at 2 images
    of 512 px and 1 thread the network ran at about 0.75 of the dense-matmul rate instead of about 0.57
    (`make bench`, `flops`), for ~90 MB more memory and float-rounding differences in the features."""
    from molebench.assets.conv_pack import pack_convolutions

    if device.type == "cpu":
        pack_convolutions(net)
    return net


class InceptionSetScorer(SetScorer):
    """The real extractor (FID Inception, 2048 features)."""

    @property
    def feature_tag(self) -> str:
        """Names the features' cache folders (the reference set's is shared by every run): a replica's random
        features must never land in the real Inception's."""
        path = inception_candidate()
        if path.is_file() and is_replica_path(path):
            return f"inception-replica-{file_sha256(path)[:8]}-square"
        return f"inception-2015-12-05-{INCEPTION_SHA256_PREFIX}-square"

    def weights_status(self) -> WeightsStatus:
        hub = torch_hub_dir() / "checkpoints" / INCEPTION_FILE
        return probe_status(inception_path, lambda: f"{INCEPTION_FILE} ({INCEPTION_ORIGIN}) in "
                                                    f"${weights_env_var('inception')}, else {hub}", INCEPTION_FETCH)

    def fingerprint(self) -> dict:
        path = inception_path()
        return {**super().fingerprint(), "feature_extractor": INCEPTION_FILE, **checkpoint_fields(path, "weights"),
                "reference": str(self.reference or "")}

    def _load(self) -> None:
        path = inception_path()
        self.net = shared_model(("inception", str(path.resolve()), str(self.device)),
                                lambda: _load_inception(path, self.device))

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net(batch)


class TinySetScorer(SetScorer):
    @property
    def feature_tag(self) -> str:
        return "tiny-featurenet-v1-square"

    def weights_status(self) -> WeightsStatus:
        return offline_status("fid-tiny", "v1")

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "feature_extractor": "tiny-featurenet-v1",
                "reference": str(self.reference or "")}

    def _load(self) -> None:
        from molebench.scoring.feature_nets import tiny_feature_net

        self.net = shared_model(("fid-tiny", str(self.device)), lambda: tiny_feature_net(self.device))

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net(batch)


def frechet_distance(generated, reference, dim: int) -> dict[str, tuple[float, float]]:
    from torchmetrics.image.fid import FrechetInceptionDistance

    from molebench.scoring.feature_nets import GivenFeatures

    metric = FrechetInceptionDistance(feature=GivenFeatures(dim))
    n_fake, n_real = feed(metric, generated, reference)
    if n_fake < 2 or n_real < 2:
        raise InputError(f"FID needs at least 2 generated and 2 reference images, got {n_fake} and {n_real}")
    return {"fid": (float(metric.compute()), float("nan"))}


def kernel_distance(generated, reference, dim: int, n_fake: int, n_real: int) -> dict[str, tuple[float, float]]:
    from torchmetrics.image.kid import KernelInceptionDistance

    from molebench.scoring.feature_nets import GivenFeatures

    size = min(KID_MAX_SUBSET, n_fake, n_real)
    if size < 2:
        raise InputError(f"KID needs at least 2 generated and 2 reference images, got {n_fake} and {n_real}")
    with warnings.catch_warnings():  # "will save all extracted features": features, not images; said in the docs
        warnings.filterwarnings("ignore", message="Metric `Kernel Inception Distance`")
        metric = KernelInceptionDistance(feature=GivenFeatures(dim), subsets=KID_SUBSETS, subset_size=size)
    feed(metric, generated, reference)
    with seeded(KID_SEED):
        mean, std = metric.compute()
    return {"kid": (float(mean), float(std))}


class SetMetricVersion:
    """`version` = registry name / feature extractor tag / the computation's own tag (`computation`)."""

    registry_name: ClassVar[str]
    computation: ClassVar[str]
    feature_tag: str

    @property
    def version(self) -> str:
        return f"{self.registry_name}/{self.feature_tag}/{self.computation}"


class FIDMixin(SetMetricVersion):
    metrics: ClassVar[tuple[str, ...]] = ("fid",)
    higher_is_better: ClassVar[dict[str, bool | None]] = {"fid": False}
    computation: ClassVar[str] = "tm-v1"

    def compute(self, generated, reference, dim, n_fake=0, n_real=0):
        return frechet_distance(generated, reference, dim)


class KIDMixin(SetMetricVersion):
    metrics: ClassVar[tuple[str, ...]] = ("kid",)
    higher_is_better: ClassVar[dict[str, bool | None]] = {"kid": False}
    computation: ClassVar[str] = f"tm-s{KID_SUBSETS}-seed{KID_SEED}-v1"
    display_scale: ClassVar[dict[str, float]] = {"kid": 1000.0}  # KID is conventionally shown ×1000

    def compute(self, generated, reference, dim, n_fake=0, n_real=0):
        return kernel_distance(generated, reference, dim, n_fake, n_real)


@register_scorer("fid")
class FID(FIDMixin, InceptionSetScorer):
    description = "FID to a reference image set (torchmetrics, FID Inception 2048-d, centre square → 299 px)"


@register_scorer("kid")
class KID(KIDMixin, InceptionSetScorer):
    description = "KID to a reference image set (torchmetrics, 100 seeded subsets, ±std), shown ×1000"


@register_scorer("fid-tiny")
class TinyFID(FIDMixin, TinySetScorer):
    description = "FID pipeline on a tiny seeded feature extractor (demo and tests)"


@register_scorer("kid-tiny")
class TinyKID(KIDMixin, TinySetScorer):
    description = "KID pipeline on a tiny seeded feature extractor (demo and tests)"

