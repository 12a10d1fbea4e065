"""Packed oneDNN convolutions (`--option conv_prepack=true`, FID's Inception): same outputs up to float rounding, the
module's parameters untouched, packed again whenever what the packed copy was made from changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from molebench.assets.conv_pack import PackedConv2d, available, pack_convolutions, unpack_convolutions
from molebench.perf.flop_count import count_flops

pytestmark = pytest.mark.skipif(not available(), reason="this PyTorch build has no oneDNN (mkldnn) CPU kernels")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.SiLU(), nn.Conv2d(16, 16, 3, stride=2, padding=1),
                         nn.Conv2d(16, 8, 1), nn.Conv2d(8, 8, 3, padding="same"),
                         nn.Conv2d(8, 4, 3, padding=1, padding_mode="reflect", bias=False)).eval()


def test_packed_network_matches_the_plain_one_and_keeps_its_parameters():
    net, x = _net(), torch.randn(2, 3, 12, 12)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.inference_mode():
        reference = net(x)
        assert pack_convolutions(net) == 3  # not the string padding nor the reflect padding
        assert [type(m).__name__ for m in net] == ["PackedConv2d", "SiLU", "PackedConv2d", "PackedConv2d",
                                                   "Conv2d", "Conv2d"]
        packed = net(x)
        assert net[0]._molebench_pack is not None  # the packed path ran, not the fallback
    assert packed.shape == reference.shape
    torch.testing.assert_close(packed, reference, rtol=1e-5, atol=1e-5)
    assert net.state_dict().keys() == state.keys()
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    assert pack_convolutions(net) == 0  # packing twice changes nothing
    assert unpack_convolutions(net) == 3 and all(type(m) is not PackedConv2d for m in net)
    with torch.inference_mode():
        assert torch.equal(net(x), reference)


def test_a_new_input_shape_or_changed_weight_is_packed_again():
    conv = nn.Conv2d(4, 6, 3, padding=1).eval()
    pack_convolutions(conv)
    with torch.no_grad():
        for shape in [(1, 4, 8, 8), (3, 4, 5, 7)]:
            x = torch.randn(shape)
            torch.testing.assert_close(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias, padding=1),
                                       rtol=1e-5, atol=1e-5)
            assert conv._molebench_pack[0][0] == shape
        conv.weight.mul_(2)  # in place: the packed copy is stale
        torch.testing.assert_close(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias, padding=1),
                                   rtol=1e-5, atol=1e-5)


def test_gradients_and_other_dtypes_take_the_plain_path():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    pack_convolutions(conv)
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    conv(x).sum().backward()  # the packed op has no backward; the fallback does
    assert x.grad is not None and conv._molebench_pack is None
    with torch.no_grad():
        out = conv.double()(x.detach().double())
    assert out.dtype == torch.float64 and conv._molebench_pack is None


def test_packed_convolutions_count_their_flops():
    net, x = _net(), torch.randn(2, 3, 12, 12)
    with torch.inference_mode():
        plain = count_flops(lambda: net(x))
        pack_convolutions(net)
        assert count_flops(lambda: net(x)) == plain > 0


def _image(model_name: str, **options):
    from molebench.registry import MODELS
    from molebench.runner.environment import resolve_device

    model = MODELS.get(model_name)(**options)
    settings = model.settings(steps=2, device="cpu")
    model.load(resolve_device("cpu"), settings)
    (image,) = model.generate(["a woman waving"], [torch.Generator().manual_seed(3)], settings)
    return model, np.asarray(image, dtype=np.int16)


def test_conv_prepack_option_packs_the_pipeline_and_keeps_the_image():
    # prompt_weighting=none: with MoLE's default official weighting the tiny model's images are NaN (reported)
    model, packed = _image("tiny-mole-sd15", conv_prepack=True, prompt_weighting="none")
    kinds = {type(m) for part in (model.pipe.unet, model.pipe.vae) for m in part.modules()
             if isinstance(m, nn.Conv2d)}
    assert PackedConv2d in kinds and model.memory_options()["conv_prepack"] is True
    plain_model, plain = _image("tiny-mole-sd15", prompt_weighting="none")
    assert plain.std() > 0
    assert model.settings(steps=2, device="cpu").extra == plain_model.settings(steps=2, device="cpu").extra
    assert np.abs(packed - plain).max() <= 2  # float rounding can move a pixel by a level, nothing more


def test_conv_prepack_is_refused_off_the_cpu():
    from molebench.errors import InputError
    from molebench.registry import MODELS

    with pytest.raises(InputError, match="conv_prepack=true packs convolution weights for the CPU"):
        MODELS.get("tiny-sd15")(conv_prepack=True).settings(device="cuda")


def test_conv_prepack_is_refused_beside_half_precision_storage():
    """Packing would copy the half-precision weights that storage_dtype keeps and casts per call."""
    from molebench.errors import InputError
    from molebench.registry import MODELS

    with pytest.raises(InputError, match="conv_prepack: not with storage_dtype"):
        MODELS.get("tiny-sd15")(conv_prepack=True, storage_dtype="float16").settings(device="cpu")
