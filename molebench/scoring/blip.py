"""The ImageReward network: BLIP's ViT (timm) + BERT with cross-attention to the image ("med") + an MLP head.

Module and parameter names follow BLIP/ImageReward's so `ImageReward.pt` loads as it is (`blip.visual_encoder.*`,
`blip.text_encoder.*`, `mlp.layers.*`). Only the forward pass ImageReward's score uses is built: bidirectional
self-attention over the prompt, cross-attention to every image token, the [CLS] feature into the MLP.
transformers' own BertModel cannot stand in: its cross-attention reads keys of the text width (BLIP's read the
vision width) and it switches self-attention to causal when cross-attention is on.
"""

from __future__ import annotations


import torch
from torch import nn
from torch.nn import functional as F

from molebench.scoring.blip_config import TextConfig, VisionConfig


class Embeddings(nn.Module):
    def __init__(self, c: TextConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.register_buffer("position_ids", torch.arange(c.max_position_embeddings)[None], persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = self.position_ids[:, : input_ids.shape[1]]
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions))


class SelfAttention(nn.Module):
    """Multi-head attention of `x` over `context` (BERT's module name, also for cross-attention: checkpoint keys).

    When it is less arithmetic, the key and value projections are folded into the query side instead of being
    applied to every context token: q·(W_k c + b_k) = (W_kᵀ q)·c + q·b_k, whose last term is the same for every key
    of a query and so drops out of the softmax; and softmax(..)·(W_v c + b_v) = W_v (softmax(..)·c) + b_v, because
    the softmax weights sum to 1. That is the case for the cross-attention (a prompt of at most 35 tokens against 197
    image tokens) and for the last layer, where only the [CLS] row asks.
    """

    def __init__(self, c: TextConfig, kv_width: int) -> None:
        super().__init__()
        self.heads = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(kv_width, c.hidden_size)
        self.value = nn.Linear(kv_width, c.hidden_size)

    def _folding_is_cheaper(self, queries: int, keys: int) -> bool:
        """Multiply-adds of the folded form below those of projecting every key and value (both divided by
        hidden width x context width)."""
        hidden, context = self.query.out_features, self.key.in_features
        return queries + self.heads * queries * keys / hidden < keys + queries * keys / context

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """With `rows`, `x` holds one row per distinct prompt and context row i reads prompt `rows[i]`: the query
        side is computed once per prompt."""
        q = self._split(self.query(x))
        if self._folding_is_cheaper(x.shape[1], context.shape[1]):
            out = self._folded(q, context, mask, rows)
        else:
            k, v = self._split(self.key(context)), self._split(self.value(context))
            out = F.scaled_dot_product_attention(q if rows is None else q[rows], k, v, attn_mask=mask)
        return out.transpose(1, 2).flatten(2)

    def _folded(self, q: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None,
                rows: torch.Tensor | None) -> torch.Tensor:
        head_width = q.shape[-1]
        w_k = self.key.weight.view(self.heads, head_width, -1)  # (heads, head width, context width)
        w_v = self.value.weight.view(self.heads, head_width, -1)
        tokens = context[:, None].expand(-1, self.heads, -1, -1)
        folded = torch.einsum("bhqd,hde->bhqe", q, w_k)  # einsum runs one bmm per head, never expanding weights
        folded = folded if rows is None else folded[rows]
        mixed = F.scaled_dot_product_attention(folded, tokens, tokens, attn_mask=mask, scale=head_width ** -0.5)
        return torch.einsum("bhqe,hde->bhqd", mixed, w_v) + self.value.bias.view(self.heads, 1, head_width)


class Attention(nn.Module):
    def __init__(self, c: TextConfig, kv_width: int) -> None:
        super().__init__()
        self.self = SelfAttention(c, kv_width)
        self.output = DenseNorm(c.hidden_size, c.hidden_size, c.layer_norm_eps)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        return self.output(self.self(x, context, mask, rows), x if rows is None else x[rows])


class DenseNorm(nn.Module):
    """BERT's `*Output` block: dense, residual add, LayerNorm."""

    def __init__(self, width_in: int, width_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, width_out)
        self.LayerNorm = nn.LayerNorm(width_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Intermediate(nn.Module):
    def __init__(self, c: TextConfig) -> None:
        super().__init__()
        from transformers.activations import ACT2FN

        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.act = ACT2FN[c.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c: TextConfig) -> None:
        super().__init__()
        self.attention = Attention(c, c.hidden_size)
        self.crossattention = Attention(c, c.encoder_width)
        self.intermediate = Intermediate(c)
        self.output = DenseNorm(c.intermediate_size, c.hidden_size, c.layer_norm_eps)

    def attend_text(self, x: torch.Tensor, text_mask: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Self-attention over the prompt; with `cls_only` only the [CLS] row is computed (keys and values still
        come from every token), which is all the last layer needs."""
        return self.attention(x[:, :1] if cls_only else x, x, text_mask)

    def attend_image(self, x: torch.Tensor, image: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-attention to the image tokens, then the feed-forward block; `rows` as in `SelfAttention`."""
        x = self.crossattention(x, image, None, rows)  # every image token is attended (ImageReward's mask is all ones)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, c: TextConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))


class TextEncoder(nn.Module):
    """BERT with cross-attention to image tokens (BLIP's "multimodal" mode), as far as the [CLS] output."""

    def __init__(self, c: TextConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The last layer's [CLS] hidden state, (batch, 1, hidden).

        Two shortcuts leave every [CLS] value as the full computation has it: everything before the image first
        enters (embeddings, the first self-attention, the first cross-attention's queries) reads only the prompt,
        so it runs once per distinct prompt (the seeds of a prompt share a batch); and the last layer computes only
        the [CLS] row, the one ImageReward reads.
        """
        mask = attention_mask[:, None, None, :].bool()  # padding keys are never attended
        prompts, rows = torch.unique(input_ids, dim=0, return_inverse=True)
        first = torch.empty(len(prompts), dtype=torch.long, device=rows.device).scatter_(
            0, rows, torch.arange(len(rows), device=rows.device))  # a row holding each distinct prompt
        layers, last = self.encoder.layer, len(self.encoder.layer) - 1
        x = layers[0].attend_text(self.embeddings(prompts), mask[first], cls_only=last == 0)
        x = layers[0].attend_image(x, image, rows)
        for index, layer in enumerate(layers[1:], start=1):
            x = layer.attend_image(layer.attend_text(x, mask, cls_only=index == last), image)
        return x


class MLP(nn.Module):
    """ImageReward's head: linear layers (the dropouts keep the checkpoint's layer indices)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def vision_transformer(v: VisionConfig) -> nn.Module:
    """BLIP's ViT is timm's VisionTransformer with a class token, exact GELU, LayerNorm eps 1e-6, no head."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=v.image_size, patch_size=v.patch_size, embed_dim=v.width, depth=v.depth,
                             num_heads=v.heads, mlp_ratio=4.0, qkv_bias=True, num_classes=0, weight_init="skip")


class ImageRewardNet(nn.Module):
    """`reward = MLP(text_encoder(prompt | image tokens)[CLS])`, before ImageReward's mean/std normalisation."""

    def __init__(self, text: TextConfig, vision: VisionConfig) -> None:
        super().__init__()
        self.blip = nn.Module()
        self.blip.visual_encoder = vision_transformer(vision)
        self.blip.text_encoder = TextEncoder(text)
        self.mlp = MLP(text.hidden_size)

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        image = self.blip.visual_encoder.forward_features(pixels)
        cls = self.blip.text_encoder(input_ids, attention_mask, image)[:, 0]
        return self.mlp(cls.float()).squeeze(-1)
