"""MoLE layer and checkpoint loader against the formula, computed independently here from the raw tensors.

Formula (../shared/notes/mole.md): R_i = up_i(down_i(X))·alpha_i/rank_i, D = sigmoid(Phi X), g_i =
sigmoid(W_i·mean_tokens(R_i) + b_i), out = base(X) + Σ_i R_i ⊙ D_i ⊙ g_i; conv inputs are flattened to tokens.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from molebench.errors import InputError
from molebench.models.mole.attach import MoLEOptions, attach_mole, detach_mole, mole_layers
from molebench.models.mole.checkpoint import MoLECheckpointWarning, load_mole_checkpoint
from molebench.models.mole.layer import MoLELayer
from molebench.models.mole.names import ldm_path, unet_module_index
from molebench.models.tiny_sd import tiny_unet

EXPERTS = ("face", "hand")
ALPHA = {"face": 2.0, "hand": 8.0}
RANK = {"face": 4, "hand": 8}
KXK_TARGET = "down_blocks.0.resnets.0.conv1"  # a 3×3 conv, as kohya targets when a conv dim is given


@pytest.fixture(autouse=True, scope="module")
def tiny_workloads():
    """Tiny tensors: one thread is faster than two fighting over shared cores; no autograd needed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.no_grad():
        yield
    torch.set_num_threads(threads)


# --- the formula, written out per expert and per token ----------------------------------------------------------
def formula(base, x, experts, phi_w, phi_b, gate_w, gate_b, local=True, glob=True, fixed=None):
    """experts: list of (down, up, alpha) exactly as stored in kohya files."""
    conv = isinstance(base, torch.nn.Conv2d)
    if conv:
        B, C, H, W = x.shape
        tokens = x.permute(0, 2, 3, 1).reshape(B, H * W, C)
    else:
        tokens = x
    D = torch.sigmoid(tokens @ phi_w.T + phi_b)
    y = torch.zeros_like(base(x) if not conv else base(x).permute(0, 2, 3, 1).reshape(B, H * W, -1))
    for i, (down, up, alpha) in enumerate(experts):
        s = alpha / down.shape[0]
        if conv:
            hidden = F.conv2d(x, down, padding=down.shape[-1] // 2)
            R = F.conv2d(hidden, up).permute(0, 2, 3, 1).reshape(B, H * W, -1) * s
        else:
            R = tokens @ down.T @ up.T * s
        if fixed is not None:
            y = y + R * fixed[i]
            continue
        g = torch.sigmoid(R.mean(1) @ gate_w[i] + gate_b[i]).reshape(-1, 1, 1)
        y = y + R * (D[:, :, i : i + 1] if local else 1) * (g if glob else 1)
    if conv:
        return base(x) + y.reshape(B, H, W, -1).permute(0, 3, 1, 2)
    return base(x) + y


def _layer_case(kind, ranks, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    d, o = 12, 10
    if kind == "linear":
        base, k = torch.nn.Linear(d, o), ()
    else:
        size = 1 if kind == "conv1x1" else 3
        base, k = torch.nn.Conv2d(d, o, size, padding=size // 2), (size, size)
    base = base.to(dtype)
    experts = [(torch.randn(r, d, *k, generator=g, dtype=dtype),
                torch.randn(o, r, *((1, 1) if k else ()), generator=g, dtype=dtype), a)
               for r, a in zip(ranks, (2.0, 8.0))]
    phi_w, phi_b = torch.randn(2, d, generator=g, dtype=dtype), torch.randn(2, generator=g, dtype=dtype)
    gate_w, gate_b = torch.randn(2, o, generator=g, dtype=dtype) * 0.1, torch.randn(2, generator=g, dtype=dtype)
    x = torch.randn(3, 7, d, generator=g, dtype=dtype) if kind == "linear" else torch.randn(3, d, 5, 4, generator=g, dtype=dtype)
    return base, experts, (phi_w, phi_b, gate_w, gate_b), x


ABLATIONS = [dict(), dict(local_gate=False), dict(global_gate=False), dict(local_gate=False, global_gate=False),
             dict(fixed_scales=(0.7, 1.3))]


@pytest.mark.parametrize("kind,plan,ranks,ablation", [
    (kind, plan, ranks, ablation)
    for kind, plan, ranks, ablation in itertools.product(["linear", "conv1x1", "conv3x3"], ["lowrank", "dense"],
                                                         [(4, 4), (3, 6)], range(len(ABLATIONS)))
    if not (kind == "conv3x3" and plan == "dense" and "fixed_scales" not in ABLATIONS[ablation])
], ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_layer_equals_formula(kind, plan, ranks, ablation):
    base, experts, (phi_w, phi_b, gate_w, gate_b), x = _layer_case(kind, ranks)
    options = ABLATIONS[ablation]
    layer = MoLELayer(base, [e[0] for e in experts], [e[1] for e in experts], [e[2] / e[0].shape[0] for e in experts],
                      phi_w, phi_b, gate_w.reshape(2, 1, -1), gate_b.reshape(2, 1), plan=plan, **options)
    want = formula(base, x, experts, phi_w, phi_b, gate_w, gate_b, options.get("local_gate", True),
                   options.get("global_gate", True), options.get("fixed_scales"))
    torch.testing.assert_close(layer(x), want, rtol=1e-10, atol=1e-10)
    layer.mode = "loop"
    torch.testing.assert_close(layer(x), want, rtol=1e-10, atol=1e-10)


def test_layer_follows_dtype_moves_and_weight_edits():
    base, experts, (phi_w, phi_b, gate_w, gate_b), x = _layer_case("linear", (4, 4), dtype=torch.float32)
    layer = MoLELayer(base, [e[0] for e in experts], [e[1] for e in experts], [0.5, 2.0], phi_w, phi_b, gate_w, gate_b)
    layer(x)
    layer.to(torch.float64)
    x = x.double()
    fused = layer(x)
    assert fused.dtype == torch.float64
    buffers = dict(layer.named_buffers())
    assert {"fused_down", "fused_up", "fused_global"} <= set(buffers)  # they travel with .to(device) / offload
    assert not any(k.startswith("fused_") for k in layer.state_dict())  # never saved
    layer.to(torch.float64)
    layer(x)
    assert all(dict(layer.named_buffers())[k] is v for k, v in buffers.items()), "no rebuild after a no-op move"
    layer.mode = "loop"
    torch.testing.assert_close(fused, layer(x), rtol=1e-10, atol=1e-10)
    layer.mode = "fused"
    layer.up.mul_(2.0)  # in-place edit: cached fused matrices must be rebuilt
    fused = layer(x)
    layer.mode = "loop"
    torch.testing.assert_close(fused, layer(x), rtol=1e-10, atol=1e-10)
    assert layer.weight is base.weight and layer.in_features == 12  # code reading the wrapped module still works


def test_bad_targets_are_refused():
    with pytest.raises(InputError, match="stride 1"):
        MoLELayer(torch.nn.Conv2d(4, 4, 3, stride=2, padding=1), [torch.zeros(2, 4, 3, 3)], [torch.zeros(4, 2)], [1.0],
                  torch.zeros(1, 4), torch.zeros(1), torch.zeros(1, 4), torch.zeros(1))
    with pytest.raises(InputError, match="lora_down"):
        MoLELayer(torch.nn.Linear(4, 4), [torch.zeros(2, 5)], [torch.zeros(4, 2)], [1.0],
                  torch.zeros(1, 4), torch.zeros(1), torch.zeros(1, 4), torch.zeros(1))


# --- a synthetic checkpoint in the official layout on the tiny UNet -----------------------------------------------
def _targets(unet):
    paths = [p for p, m in unet.named_modules() if ".attentions." in p and (
        isinstance(m, torch.nn.Linear) or (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)))]
    return paths + [KXK_TARGET]


def _official_files(unet, seed=1, copies=False):
    """Tensors keyed exactly as the official files: face/hand kohya LoRAs and the moe gate file."""
    g = torch.Generator().manual_seed(seed)
    loras = {e: {} for e in EXPERTS}
    gates = {}
    for path in _targets(unet):
        module = unet.get_submodule(path)
        o, d = module.weight.shape[:2]
        k = tuple(module.weight.shape[2:])
        name = "lora_unet_" + path.replace(".", "_")
        for i, e in enumerate(EXPERTS):
            down = torch.randn(RANK[e], d, *k, generator=g) / d**0.5
            up = torch.randn(o, RANK[e], *((1, 1) if k else ()), generator=g) * 0.3
            loras[e].update({f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up,
                             f"{name}.alpha": torch.tensor(ALPHA[e])})
            gates[f"moe_{name}.softmoe.{e}_scale.weight"] = torch.randn(1, o, generator=g)
            gates[f"moe_{name}.softmoe.{e}_scale.bias"] = torch.randn(1, generator=g)
            if copies:
                gates[f"moe_{name}.softmoe.experts.{i}.lora_down.weight"] = down.clone()
                gates[f"moe_{name}.softmoe.experts.{i}.lora_up.weight"] = up.clone()
        gates[f"moe_{name}.softmoe.Phi_1.weight"] = torch.randn(2, d, generator=g)
        gates[f"moe_{name}.softmoe.Phi_1.bias"] = torch.randn(2, generator=g)
    return loras, gates


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return tiny_unet().eval()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 4, 8, 8, generator=g), torch.tensor(500), torch.randn(2, 77, 32, generator=g)


@pytest.fixture(scope="module")
def files(unet):
    return _official_files(unet)


@pytest.fixture(scope="module")
def base_out(unet, inputs):
    return _run(unet, inputs)


def _run(unet, inputs):
    sample, t, text = inputs
    return unet(sample, t, encoder_hidden_states=text).sample


def test_checkpoint_files_load_and_layers_equal_formula(unet, inputs, files, tmp_path):
    loras, gates = files
    save_file(loras["face"], str(tmp_path / "face.safetensors"))
    save_file(loras["hand"], str(tmp_path / "hand.safetensors"))
    torch.save(gates, tmp_path / "moe.pt")  # the gate file may be a torch file; read with weights_only=True
    checkpoint = load_mole_checkpoint({"face": tmp_path / "face.safetensors", "hand": tmp_path / "hand.safetensors"},
                                      tmp_path / "moe.pt")
    assert checkpoint.experts_from == "LoRA files"
    seen = {}
    targets = _targets(unet)
    paths = attach_mole(unet, checkpoint)
    try:
        assert sorted(paths) == sorted(targets)
        def keep(path):
            def hook(module, args, out):
                seen.setdefault(path, (args[0].clone(), out.clone()))
            return hook

        hooks = [unet.get_submodule(p).register_forward_hook(keep(p)) for p in paths]
        _run(unet, inputs)
        for h in hooks:
            h.remove()
    finally:
        detach_mole(unet)
    checked = {"linear": 0, "conv1x1": 0, "conv3x3": 0, "text tokens": 0}
    for path, (x, out) in seen.items():
        name = "lora_unet_" + path.replace(".", "_")
        base = unet.get_submodule(path)
        experts = [(loras[e][f"{name}.lora_down.weight"], loras[e][f"{name}.lora_up.weight"], ALPHA[e]) for e in EXPERTS]
        gate_w = [gates[f"moe_{name}.softmoe.{e}_scale.weight"].reshape(-1) for e in EXPERTS]
        gate_b = [gates[f"moe_{name}.softmoe.{e}_scale.bias"] for e in EXPERTS]
        want = formula(base, x, experts, gates[f"moe_{name}.softmoe.Phi_1.weight"],
                       gates[f"moe_{name}.softmoe.Phi_1.bias"], gate_w, gate_b)
        torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)
        kind = "linear" if isinstance(base, torch.nn.Linear) else f"conv{base.kernel_size[0]}x{base.kernel_size[1]}"
        checked[kind] += 1
        checked["text tokens"] += int(x.shape[1] == 77)
    assert all(checked.values()), checked


def _set_gates(gates, phi_bias=None, gate_bias=None, zero_weights=False):
    out = dict(gates)
    for key in out:
        if zero_weights and key.endswith("weight") and ("Phi_1" in key or "_scale" in key):
            out[key] = torch.zeros_like(out[key])
        if phi_bias is not None and key.endswith("Phi_1.bias"):
            out[key] = torch.full_like(out[key], phi_bias)
        if gate_bias is not None and key.endswith("_scale.bias"):
            out[key] = torch.full_like(out[key], gate_bias)
    return out


def _with(unet, loras, gates, inputs, options=None):
    attach_mole(unet, load_mole_checkpoint(loras, gates), options)
    try:
        return _run(unet, inputs)
    finally:
        detach_mole(unet)


def test_gate_logits_minus_infinity_give_the_base_model(unet, inputs, files, base_out):
    loras, gates = files
    inf = float("-inf")
    for phi_bias, gate_bias in ((inf, inf), (inf, None), (None, inf)):  # both gates closed, or either one
        closed = _set_gates(gates, phi_bias=phi_bias, gate_bias=gate_bias)
        assert torch.equal(_with(unet, loras, closed, inputs), base_out)
    assert not torch.allclose(_with(unet, loras, gates, inputs), base_out)  # the experts do act when open


def _merged_base_output(unet, loras, inputs, weights=(1.0, 1.0)):
    """Base UNet with each LoRA merged into the weights at its kohya scale alpha/rank (times `weights`)."""
    saved = {p: unet.get_submodule(p).weight.clone() for p in _targets(unet)}
    try:
        for path in saved:
            module = unet.get_submodule(path)
            name = "lora_unet_" + path.replace(".", "_")
            for e, w in zip(EXPERTS, weights):
                down, up = loras[e][f"{name}.lora_down.weight"], loras[e][f"{name}.lora_up.weight"]
                scale = ALPHA[e] / down.shape[0] * w
                if down.dim() == 2:
                    delta = up @ down
                else:
                    delta = torch.einsum("or,rikl->oikl", up[:, :, 0, 0], down)
                module.weight += scale * delta
        return _run(unet, inputs)
    finally:
        for path, weight in saved.items():
            unet.get_submodule(path).weight.copy_(weight)


def test_gates_fixed_to_one_give_the_merged_loras(unet, inputs, files):
    loras, gates = files
    merged = _merged_base_output(unet, loras, inputs)
    opened = _set_gates(gates, phi_bias=float("inf"), gate_bias=float("inf"), zero_weights=True)
    torch.testing.assert_close(_with(unet, loras, opened, inputs), merged, rtol=1e-4, atol=1e-4)
    # the ablation "fixed expert scales" is the same plain LoRA mixing, by another code path
    fixed = MoLEOptions.parse({"expert_scales": "1,1"}, EXPERTS)
    torch.testing.assert_close(_with(unet, loras, gates, inputs, fixed), merged, rtol=1e-4, atol=1e-4)
    face_only = MoLEOptions.parse({"experts": "face", "expert_scales": 1}, EXPERTS)
    torch.testing.assert_close(_with(unet, loras, gates, inputs, face_only),
                               _merged_base_output(unet, loras, inputs, (1.0, 0.0)), rtol=1e-4, atol=1e-4)


def test_lora_files_win_over_differing_gate_copies(unet, inputs):
    """The official loader drops the gate file's expert copies (strict=False into a plain list): LoRA files win."""
    loras, gates = _official_files(unet, copies=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MoLECheckpointWarning)  # identical copies: silent
        checkpoint = load_mole_checkpoint(loras, gates)
        plain = _with(unet, loras, gates, inputs)
    assert checkpoint.experts_from == "LoRA files"
    changed = sorted({k.split(".softmoe.")[0] for k in gates if ".experts.0." in k})[:7]
    altered = {k: v * 1.5 if k.split(".softmoe.")[0] in changed and ".experts.0.lora_up" in k else v
               for k, v in gates.items()}
    first = changed[0].removeprefix("moe_")
    with pytest.warns(MoLECheckpointWarning, match=rf"differ from the LoRA files in 7 layer\(s\): {first} \(face\), "
                      r".*and 2 more; using the LoRA files' weights"):
        torch.testing.assert_close(_with(unet, loras, altered, inputs), plain, rtol=0, atol=0)
    # expert_weights="gates": the copies instead, exactly as if the LoRA files held them
    as_files = {e: dict(t) for e, t in loras.items()}
    for key in changed:
        name = key.removeprefix("moe_")
        as_files["face"][f"{name}.lora_up.weight"] = altered[f"{key}.softmoe.experts.0.lora_up.weight"]
    with pytest.warns(MoLECheckpointWarning, match="using the gate file's copies"):
        copies = load_mole_checkpoint(loras, altered, expert_weights="gates")
    assert copies.experts_from == "gate file copies"
    attach_mole(unet, copies)
    try:
        from_copies = _run(unet, inputs)
    finally:
        detach_mole(unet)
    no_copies = {k: v for k, v in gates.items() if ".experts." not in k}
    torch.testing.assert_close(from_copies, _with(unet, as_files, no_copies, inputs), rtol=0, atol=0)
    assert not torch.allclose(from_copies, plain)
    with pytest.raises(InputError, match="holds no expert copies"):
        load_mole_checkpoint(loras, no_copies, expert_weights="gates")
    with pytest.raises(InputError, match="swapped"):
        load_mole_checkpoint({"face": loras["hand"], "hand": loras["face"]}, gates)


def test_experts_bind_by_name_not_argument_order(unet, inputs, files):
    loras, gates = files
    face_first = load_mole_checkpoint({"face": loras["face"], "hand": loras["hand"]}, gates)
    hand_first = load_mole_checkpoint({"hand": loras["hand"], "face": loras["face"]}, gates)
    assert face_first.expert_names == hand_first.expert_names == ("face", "hand")
    out = _with(unet, {"face": loras["face"], "hand": loras["hand"]}, gates, inputs)
    assert torch.equal(_with(unet, {"hand": loras["hand"], "face": loras["face"]}, gates, inputs), out)
    # the names carry the meaning: the same two files under swapped names are another model
    assert not torch.allclose(_with(unet, {"face": loras["hand"], "hand": loras["face"]}, gates, inputs), out)


def test_text_encoder_keys_are_ignored_with_one_warning(unet, inputs, files):
    loras, gates = files
    te = {"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 32),
          "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.zeros(32, 4),
          "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha": torch.tensor(4.0)}
    sdxl_te = {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 32),
               "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.zeros(4, 32)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _with(unet, {"face": {**loras["face"], **te}, "hand": {**loras["hand"], **sdxl_te}}, gates, inputs)
    notes = [str(w.message) for w in caught if issubclass(w.category, MoLECheckpointWarning)]
    assert len(notes) == 2 and "face LoRA: ignored 3 text-encoder key(s)" in notes[0], notes
    assert "hand LoRA: ignored 2 text-encoder key(s)" in notes[1]
    assert torch.equal(out, _with(unet, loras, gates, inputs))


def test_unknown_and_missing_keys_are_listed(unet, files):
    loras, gates = files
    bad = dict(loras["face"], **{"lora_unet_down_blocks_1_attentions_0_proj_in.hada_w1_a": torch.zeros(1)})
    with pytest.raises(InputError, match="unknown keys.*lora_unet_down_blocks_1_attentions_0_proj_in.hada_w1_a"):
        load_mole_checkpoint({"face": bad, "hand": loras["hand"]}, gates)
    some = next(k for k in gates if k.endswith("hand_scale.bias"))
    with pytest.raises(InputError, match=f"missing keys.*{some.replace('.', '[.]')}"):
        load_mole_checkpoint(loras, {k: v for k, v in gates.items() if k != some})
    with pytest.raises(InputError, match="unknown keys.*softmoe.elbow_scale"):
        load_mole_checkpoint(loras, dict(gates, **{some.replace("hand_scale.bias", "elbow_scale.bias"): torch.zeros(1)}))
    other = {e: {k.replace("down_blocks_1", "down_blocks_7"): v for k, v in t.items()} for e, t in loras.items()}
    gates7 = {k.replace("down_blocks_1", "down_blocks_7"): v for k, v in gates.items()}
    with pytest.raises(InputError, match="does not have: lora_unet_down_blocks_7"):
        attach_mole(unet, load_mole_checkpoint(other, gates7))
    assert not mole_layers(unet)
    with pytest.raises(InputError, match="different modules"):
        load_mole_checkpoint({"face": other["face"], "hand": loras["hand"]}, gates)


def test_options_are_validated():
    with pytest.raises(InputError, match="unknown MoLE option"):
        MoLEOptions.parse({"gate": 1}, EXPERTS)
    with pytest.raises(InputError, match="replaces both gates"):
        MoLEOptions.parse({"expert_scales": "1,1", "local_gate": False}, EXPERTS)
    with pytest.raises(InputError, match="experts"):
        MoLEOptions.parse({"experts": "elbow"}, EXPERTS)
    assert MoLEOptions.parse({"local_gate": "false"}, EXPERTS).to_json(EXPERTS) == {
        "experts": ["face", "hand"], "local_gate": False, "global_gate": True, "expert_scales": None}


def test_sdxl_kohya_names_resolve_to_diffusers_modules():
    # SDXL's kohya names use the original UNet layout (input_blocks/middle_block/output_blocks)
    up_attention = [True, True, False]
    assert ldm_path("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 2, up_attention) == \
        "input_blocks.4.1.transformer_blocks.0.attn1.to_q"
    assert ldm_path("down_blocks.2.attentions.1.proj_in", 2, up_attention) == "input_blocks.8.1.proj_in"
    assert ldm_path("mid_block.attentions.0.transformer_blocks.9.ff.net.2", 2, up_attention) == \
        "middle_block.1.transformer_blocks.9.ff.net.2"
    assert ldm_path("up_blocks.0.attentions.2.transformer_blocks.0.attn2.to_out.0", 2, up_attention) == \
        "output_blocks.2.1.transformer_blocks.0.attn2.to_out.0"
    assert ldm_path("up_blocks.0.upsamplers.0.conv", 2, up_attention) == "output_blocks.2.2.conv"
    assert ldm_path("down_blocks.0.downsamplers.0.conv", 2, up_attention) == "input_blocks.3.0.op"
    assert ldm_path("down_blocks.0.resnets.1.conv1", 2, up_attention) == "input_blocks.2.0.in_layers.2"
    assert ldm_path("mid_block.resnets.1.time_emb_proj", 2, up_attention) == "middle_block.2.emb_layers.1"
    sdxl_like = tiny_unet(block_out_channels=(32, 32, 64), down_block_types=(
        "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"), up_block_types=(
        "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), use_linear_projection=True)
    index = unet_module_index(sdxl_like)
    assert index["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"] == \
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    assert index["lora_unet_output_blocks_5_1_proj_out"] == "up_blocks.1.attentions.2.proj_out"
    assert index["lora_unet_middle_block_1_transformer_blocks_0_ff_net_0_proj"] == \
        "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj"
    assert index["lora_unet_down_blocks_1_attentions_0_proj_in"] == "down_blocks.1.attentions.0.proj_in"
