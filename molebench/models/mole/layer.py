"""One MoLE layer: a UNet `nn.Linear`/`nn.Conv2d` plus a soft mixture of low-rank experts, computed fused.

For input tokens X (a 4-D conv input counts its H·W positions as tokens) and experts i with down A_i (r_i×d),
up U_i (d_out×r_i) and kohya scale s_i = alpha_i / r_i:

    R_i = s_i · U_i A_i X                                  expert output
    D   = sigmoid(Phi X + b_Phi)                           local gate, one value per token and expert
    g_i = sigmoid(w_i · mean_tokens(R_i) + b_i)            global gate, one value per image and expert
    out = base(X) + Σ_i R_i ⊙ D_i ⊙ g_i

The fused forward never loops over experts. Because the expert path has no bias, the global gate needs no expert
output at all: w_i · mean(R_i) = (s_i A_iᵀ U_iᵀ w_i) · mean(X), a d-vector per expert computed once from the weights
(for a k×k conv, whose zero padding breaks that identity at the borders, the pooled rank activations are used
instead). Each layer then runs the cheaper of two exact plans, chosen from its shapes:

- "lowrank": one GEMM X·[A; Phi]ᵀ gives all experts' rank activations and the gate logits together, each expert's
  rank block is scaled by its per-token gate, and one GEMM with the concatenated (pre-scaled) up weights adds the
  result onto the base output (addmm/baddbmm). Cost per token (R + n)·d + R·d_out, R = Σ r_i.
- "dense": the per-expert products s_i U_i A_i are merged once into a (d_out × n·d) matrix; the input is copied once
  per expert scaled by that expert's gate and one GEMM adds n·d·d_out per token. Cheaper when experts' ranks are
  large relative to the layer (e.g. rank-256 experts on a 320×320 attention projection).

Derived matrices are cached and rebuilt when any source tensor changes (version counter), moves or changes dtype.
The fused path is inference-only; when gradients are needed for MoLE parameters the per-expert reference loop
(`mode = "loop"`, also used by the bench for comparison) runs instead.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from molebench.errors import InputError

PLANS = ("auto", "lowrank", "dense")
MODES = ("fused", "loop")


class MoLELayer(nn.Module):
    """Wraps `base` (kept as the child module `base`) and adds the gated experts to its output."""

    casts_own_tensors = True  # computes in its input's dtype whatever its tensors' (see `_in_dtype`)

    def __init__(
        self,
        base: nn.Module,
        downs: Sequence[Tensor],
        ups: Sequence[Tensor],
        scales: Sequence[float],
        phi_weight: Tensor,
        phi_bias: Tensor,
        gate_weight: Tensor,
        gate_bias: Tensor,
        *,
        expert_names: Sequence[str] | None = None,
        local_gate: bool = True,
        global_gate: bool = True,
        fixed_scales: Sequence[float] | None = None,
        plan: str = "auto",
        name: str = "",
    ) -> None:
        super().__init__()
        self.name = name or type(base).__name__
        self.kind = _kind_of(base, self.name)
        self.base = base
        n = len(downs)
        if not (n and n == len(ups) == len(scales)):
            raise InputError(f"{self.name}: need the same non-zero number of downs, ups and scales")
        weight = base.weight
        d_in = weight.shape[1]
        d_out = weight.shape[0]
        kernel = tuple(weight.shape[2:]) if self.kind == "conv" else ()
        downs = [_as_down(t, d_in, kernel, self.name, i) for i, t in enumerate(downs)]
        ups = [_as_up(t, d_out, downs[i].shape[0], self.name, i) for i, t in enumerate(ups)]
        _check_shape(phi_weight, (n, d_in), f"{self.name}: local gate Phi weight")
        _check_shape(phi_bias.reshape(-1), (n,), f"{self.name}: local gate Phi bias")
        _check_shape(gate_weight.reshape(n, -1), (n, d_out), f"{self.name}: global gate weights")
        _check_shape(gate_bias.reshape(-1), (n,), f"{self.name}: global gate biases")
        if fixed_scales is not None and len(fixed_scales) != n:
            raise InputError(f"{self.name}: {len(fixed_scales)} fixed expert scales for {n} experts")

        def frozen(t: Tensor) -> nn.Parameter:
            return nn.Parameter(t.detach().to(device=weight.device, dtype=weight.dtype).contiguous(), requires_grad=False)

        self.down = frozen(torch.cat(downs, 0))  # (R, d_in[, kh, kw])
        self.up = frozen(torch.cat(ups, 1))  # (d_out, R)
        self.phi_weight = frozen(phi_weight)
        self.phi_bias = frozen(phi_bias.reshape(n))
        self.gate_weight = frozen(gate_weight.reshape(n, d_out))
        self.gate_bias = frozen(gate_bias.reshape(n))
        self.ranks = tuple(int(t.shape[0]) for t in downs)
        self.scales = tuple(float(s) for s in scales)
        self.expert_names = tuple(expert_names or (f"expert{i}" for i in range(n)))
        self.d_in, self.d_out, self.kernel = d_in, d_out, kernel
        self.local_gate = bool(local_gate)
        self.global_gate = bool(global_gate)
        self.fixed_scales = None if fixed_scales is None else tuple(float(c) for c in fixed_scales)
        if plan not in PLANS:
            raise InputError(f"{self.name}: plan must be one of {PLANS}, got {plan!r}")
        self.plan = plan
        self.mode = "fused"
        self._derived_names: tuple[str, ...] = ()
        self._derived_key: tuple | None = None

    # --- compatibility: code that reads e.g. `attn.to_q.weight` or `proj_in.in_channels` still works ----------------
    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            base = self.__dict__.get("_modules", {}).get("base")
            if base is None:
                raise
            return getattr(base, name)

    @property
    def n_experts(self) -> int:
        return len(self.ranks)

    @property
    def total_rank(self) -> int:
        return sum(self.ranks)

    def extra_repr(self) -> str:
        experts = ", ".join(f"{e}(r={r}, s={s:g})" for e, r, s in zip(self.expert_names, self.ranks, self.scales))
        return f"{self.name}: {experts}, plan={self.chosen_plan()}, mode={self.mode}"

    # --- cost model ---------------------------------------------------------------------------------------------
    def macs_per_token(self) -> dict[str, int]:
        """Multiply-accumulates per output token of the base layer and of each way to compute the experts."""
        k = 1
        for size in self.kernel:
            k *= size
        d, o, R, n = self.d_in, self.d_out, self.total_rank, self.n_experts
        n_local = n if (self.local_gate and self.fixed_scales is None) else 0
        if self.fixed_scales is not None:
            lowrank, dense = R * d * k + R * o, d * o * k
        else:
            lowrank = (R + n_local) * d * k + R * o
            dense = n_local * d + n * d * o if k == 1 else None
        costs = {"base": d * o * k, "lowrank": lowrank}
        if dense is not None:
            costs["dense"] = dense
        return costs

    def chosen_plan(self) -> str:
        if self.plan != "auto":
            if self.plan == "dense" and self.kernel not in ((), (1, 1)) and self.fixed_scales is None:
                raise InputError(f"{self.name}: the dense plan needs a Linear or 1x1 conv target")
            return self.plan
        costs = self.macs_per_token()
        return "dense" if costs.get("dense", costs["lowrank"] + 1) < costs["lowrank"] else "lowrank"

    # --- forward -----------------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "loop" or (torch.is_grad_enabled() and any(p.requires_grad for p in self._sources())):
            return self.forward_loop(x)
        base_out = self.base(x)
        derived = self._in_dtype({**self._cached(), "phi_weight": self.phi_weight, "phi_bias": self.phi_bias,
                                  "gate_bias": self.gate_bias}, x.dtype)
        if self.kind == "linear":
            return self._fused_linear(x, base_out, derived)
        return self._fused_conv(x, base_out, derived)

    def _fused_linear(self, x: Tensor, base_out: Tensor, w: dict[str, Tensor]) -> Tensor:
        x3 = _tokens_last(x, self.name)
        B, m, d = x3.shape
        x2 = x3.reshape(B * m, d)
        out2 = base_out.reshape(B * m, self.d_out)
        plan = self.chosen_plan()
        if self.fixed_scales is not None:
            if plan == "dense":
                return _add_product(out2, x2, w["delta"].t()).view(base_out.shape)
            return _add_product(out2, F.linear(x2, w["down"]), w["up"].t()).view(base_out.shape)
        R = self.total_rank
        if plan == "lowrank":
            h_all = F.linear(x2, w["down"])  # (T, R [+ n]): rank activations and local gate logits in one GEMM
            h, logits = h_all[:, :R], h_all[:, R:]
        else:
            h, logits = None, (F.linear(x2, w["phi_weight"]) if self.local_gate else None)
        pooled = x3.mean(1) if self.global_gate else None
        gate = self._gates(logits, pooled, w, (B, m, self.n_experts), channels_first=False)  # (B, m|1, n)
        if plan == "lowrank":
            if gate is not None:
                self._scale_blocks(h.view(B, m, R), gate, 2)
            return _add_product(out2, h, w["up"].t()).view(base_out.shape)
        factor = gate.unsqueeze(-1) if gate is not None else x3.new_ones(1, 1, self.n_experts, 1)
        copies = (x3.unsqueeze(2) * factor).reshape(B * m, -1)  # (T, n·d): the input once per expert, gated
        return _add_product(out2, copies, w["stack"].t()).view(base_out.shape)

    def _fused_conv(self, x: Tensor, base_out: Tensor, w: dict[str, Tensor]) -> Tensor:
        B, d = x.shape[:2]
        x3 = x.reshape(B, d, -1)  # channels first: (B, d, N)
        N = x3.shape[-1]
        out3 = base_out.reshape(B, self.d_out, N)
        pointwise = self.kernel == (1, 1)
        plan = self.chosen_plan()
        if self.fixed_scales is not None:
            if plan == "dense":
                if pointwise:
                    return _add_product(out3, w["delta"].expand(B, -1, -1), x3).view(base_out.shape)
                return base_out + self._conv(x, w["delta"])
            h = torch.matmul(w["down"], x3) if pointwise else self._conv(x, w["down"]).reshape(B, -1, N)
            return _add_product(out3, w["up"].expand(B, -1, -1), h).view(base_out.shape)
        R = self.total_rank
        if plan == "lowrank":
            h_all = torch.matmul(w["down"], x3) if pointwise else self._conv(x, w["down"]).reshape(B, -1, N)
            h, logits = h_all[:, :R], h_all[:, R:]  # (B, R, N), (B, n, N)
        else:
            h, logits = None, (torch.matmul(w["phi_weight"], x3) if self.local_gate else None)
        pooled = None
        if self.global_gate:
            pooled = x3.mean(-1) if pointwise else h.mean(-1)
        gate = self._gates(logits, pooled, w, (B, self.n_experts, N), channels_first=True)  # (B, n, N|1)
        if plan == "lowrank":
            if gate is not None:
                self._scale_blocks(h, gate, 1)
            return _add_product(out3, w["up"].expand(B, -1, -1), h).view(base_out.shape)
        factor = gate.unsqueeze(2) if gate is not None else x3.new_ones(1, self.n_experts, 1, 1)
        copies = (x3.unsqueeze(1) * factor).reshape(B, -1, N)  # (B, n·d, N)
        return _add_product(out3, w["stack"].expand(B, -1, -1), copies).view(base_out.shape)

    def _gates(self, logits: Tensor | None, pooled: Tensor | None, w: dict[str, Tensor], local_shape: tuple, *,
               channels_first: bool) -> Tensor | None:
        """Combined gate D ⊙ g in the layer's layout, or None when both gates are off (every expert weighs 1)."""
        n = self.n_experts
        gate = None
        if self.local_gate:
            bias = w["phi_bias"].view(n, 1) if channels_first else w["phi_bias"]
            gate = torch.sigmoid(logits.reshape(local_shape) + bias)
        if self.global_gate:
            g = torch.sigmoid(torch.addmm(w["gate_bias"], pooled, w["global"]))
            g = g.view(-1, n, 1) if channels_first else g.view(-1, 1, n)
            gate = g if gate is None else gate * g
        return gate

    def _scale_blocks(self, h: Tensor, gate: Tensor, dim: int) -> None:
        """Multiply, in place, each expert's rank block of `h` (along `dim`) by that expert's gate (size n there).

        `h` is a slice of a tensor this layer just computed, so writing into it is safe (the fused path runs only
        when no gradient flows through the MoLE parameters; see `forward`)."""
        n, ranks = self.n_experts, self.ranks
        if len(set(ranks)) == 1:
            shape = list(h.shape)
            h.view(shape[:dim] + [n, ranks[0]] + shape[dim + 1 :]).mul_(gate.unsqueeze(dim + 1))
        else:
            h.mul_(gate.index_select(dim, self._buffers["fused_rank_index"]))

    def _in_dtype(self, tensors: dict[str, Tensor], dtype: torch.dtype) -> dict[str, Tensor]:
        """The forward's tensors in the input's dtype: the layer's own tensors stay in their storage dtype when a
        pipeline computes in another (molebench.models.weight_storage); a no-op otherwise."""
        if dtype == self.down.dtype or not dtype.is_floating_point:
            return tensors
        return {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}

    def _conv(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(x, weight, None, self.base.stride, self.base.padding, self.base.dilation)

    # --- derived matrices ------------------------------------------------------------------------------------------
    def _sources(self) -> tuple[Tensor, ...]:
        return (self.down, self.up, self.phi_weight, self.phi_bias, self.gate_weight, self.gate_bias)

    def prepare(self) -> None:
        """Build the fused matrices now (otherwise the first forward on a device/dtype does it)."""
        self._cached()

    def _cached(self) -> dict[str, Tensor]:
        """The fused matrices, kept as non-persistent buffers so `.to(device)` (and model CPU offload) moves them
        with the layer; rebuilt when a source tensor is edited or replaced, the dtype changes, or an option changes."""
        key = (self.down.dtype, self.chosen_plan(), self.local_gate, self.global_gate, self.fixed_scales,
               tuple((id(t), t._version) for t in self._sources()))
        derived = {name: self._buffers[f"fused_{name}"] for name in self._derived_names}
        if key != self._derived_key or any(t.device != self.down.device for t in derived.values()):
            for name in self._derived_names:
                del self._buffers[f"fused_{name}"]
            with torch.inference_mode(False), torch.no_grad():
                derived = self._build_derived()
            for name, tensor in derived.items():
                self.register_buffer(f"fused_{name}", tensor, persistent=False)
            self._derived_names = tuple(derived)
            self._derived_key = key
        return derived

    def _build_derived(self) -> dict[str, Tensor]:
        """The fused matrices, computed in float32 or better, then cast to the layer dtype."""
        work = torch.float64 if self.down.dtype == torch.float64 else torch.float32
        pointwise = self.kernel in ((), (1, 1))
        A = self.down.to(work)
        A = A.reshape(A.shape[0], -1) if pointwise else A  # (R, d_in) or (R, d_in, kh, kw)
        U = self.up.to(work)
        ranks = torch.tensor(self.ranks)
        per_rank = torch.repeat_interleave(torch.tensor(self.scales, dtype=work), ranks).to(A.device)
        if self.fixed_scales is not None:
            mix = torch.repeat_interleave(torch.tensor(self.fixed_scales, dtype=work), ranks).to(A.device)
            U_mix = U * (per_rank * mix)
            out = {"down": A, "up": U_mix}
            if self.chosen_plan() == "dense":
                out = {"delta": torch.einsum("or,ri...->oi...", U_mix, A)}
            return self._cast(out)
        Us = U * per_rank  # (d_out, R): each expert's up weight times its kohya scale
        out: dict[str, Tensor] = {}
        if self.chosen_plan() == "lowrank":
            phi = self.phi_weight.to(work)
            if not pointwise:  # Phi sees the token at the centre tap of a k×k window
                centre = torch.zeros(self.n_experts, self.d_in, *self.kernel, device=A.device, dtype=work)
                centre[:, :, self.kernel[0] // 2, self.kernel[1] // 2] = phi
                phi = centre
            out["down"] = torch.cat([A, phi]) if self.local_gate else A
            out["up"] = Us
        else:
            blocks = torch.split(torch.arange(self.total_rank, device=A.device), self.ranks)
            out["stack"] = torch.cat([Us[:, b] @ A[b] for b in blocks], dim=1)  # (d_out, n·d_in), built once
        # global gate: w_i · mean(R_i) = (Us_iᵀ w_i) · mean(h_i) = (A_iᵀ Us_iᵀ w_i) · mean(x) for pointwise layers
        per_block = torch.zeros(self.total_rank, self.n_experts, device=A.device, dtype=work)
        start = 0
        for i, r in enumerate(self.ranks):  # a loop over weights at build time, not over activations
            per_block[start : start + r, i] = Us[:, start : start + r].t() @ self.gate_weight[i].to(work)
            start += r
        if pointwise:
            out["global"] = A.t() @ per_block  # (d_in, n)
        else:
            out["global"] = per_block  # applied to the pooled rank activations
        return self._cast(out)

    def _cast(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {k: v.to(self.down.dtype).contiguous() for k, v in tensors.items()}
        ranks = torch.tensor(self.ranks)
        out["rank_index"] = torch.repeat_interleave(torch.arange(self.n_experts), ranks).to(self.down.device)
        return out

    # --- the literal per-expert computation (reference for the bench, autograd for training) ---------------------
    def forward_loop(self, x: Tensor) -> Tensor:
        base_out = self.base(x)
        conv = self.kind == "conv"
        tokens = x.flatten(2).transpose(1, 2) if conv else _tokens_last(x, self.name)  # (B, m, d)
        local = torch.sigmoid(F.linear(tokens, self.phi_weight, self.phi_bias))
        total: Tensor | float = 0.0
        start = 0
        for i, r in enumerate(self.ranks):
            down, up = self.down[start : start + r], self.up[:, start : start + r]
            start += r
            if conv:
                expert = F.conv2d(self._conv(x, down), up.reshape(*up.shape, 1, 1)).flatten(2).transpose(1, 2)
            else:
                expert = F.linear(F.linear(tokens, down), up)
            expert = expert * self.scales[i]  # R_i, (B, m, d_out)
            if self.fixed_scales is not None:
                total = total + expert * self.fixed_scales[i]
                continue
            gated = expert
            if self.local_gate:
                gated = gated * local[:, :, i : i + 1]
            if self.global_gate:
                logit = F.linear(expert.mean(1, keepdim=True), self.gate_weight[i : i + 1], self.gate_bias[i : i + 1])
                gated = gated * torch.sigmoid(logit)
            total = total + gated
        if conv:
            return base_out + total.transpose(1, 2).reshape(base_out.shape)
        return base_out + total.reshape(base_out.shape)


def _add_product(out: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """out + a @ b (2-D or batched). Without autograd the base output is updated in place: one allocation less."""
    if torch.is_grad_enabled() and out.requires_grad:
        return torch.addmm(out, a, b) if out.dim() == 2 else torch.baddbmm(out, a, b)
    return out.addmm_(a, b) if out.dim() == 2 else out.baddbmm_(a, b)


def _kind_of(base: nn.Module, name: str) -> str:
    if isinstance(base, nn.Linear):
        return "linear"
    if isinstance(base, nn.Conv2d):
        kh, kw = base.kernel_size
        same = (base.stride == (1, 1) and base.dilation == (1, 1) and base.groups == 1 and kh % 2 == 1
                and kw % 2 == 1 and base.padding == (kh // 2, kw // 2) and base.padding_mode == "zeros")
        if not same:
            raise InputError(
                f"{name}: a MoLE target conv must keep its token grid (stride 1, 'same' zero padding, one group); "
                f"got kernel {base.kernel_size}, stride {base.stride}, padding {base.padding}"
            )
        return "conv"
    raise InputError(f"{name}: MoLE wraps nn.Linear or nn.Conv2d modules, not {type(base).__name__}")


def _tokens_last(x: Tensor, name: str) -> Tensor:
    if x.dim() == 3:
        return x
    if x.dim() == 2:  # one token per row
        return x.unsqueeze(1)
    raise InputError(f"{name}: a Linear MoLE target needs (batch, tokens, features) input, got shape {tuple(x.shape)}")


def _as_down(t: Tensor, d_in: int, kernel: tuple, name: str, i: int) -> Tensor:
    if not kernel and t.dim() == 4 and t.shape[2:] == (1, 1):
        t = t.reshape(t.shape[:2])
    want = (t.shape[0], d_in, *kernel)
    _check_shape(t, want, f"{name}: expert {i} lora_down")
    return t


def _as_up(t: Tensor, d_out: int, rank: int, name: str, i: int) -> Tensor:
    if t.dim() == 4 and t.shape[2:] == (1, 1):
        t = t.reshape(t.shape[:2])
    _check_shape(t, (d_out, rank), f"{name}: expert {i} lora_up")
    return t


def _check_shape(t: Tensor, want: tuple, what: str) -> None:
    if tuple(t.shape) != tuple(want):
        raise InputError(f"{what} has shape {tuple(t.shape)}, expected {tuple(want)}")
