"""Prompt attention weighting as MoLE's official generation scripts do it (`--option prompt_weighting=official`),
for StableDiffusionPipeline and StableDiffusionXLPipeline calls.

Both official scripts (kohya sd-scripts based) read emphasis marks in a prompt, the format popularised by the
AUTOMATIC1111 web UI, and diffusers reads none of them; DiffusionDB prompts are full of such brackets. The rules,
as written in the scripts' own docstring and re-implemented here:

- `(text)` multiplies the weight of `text` by 1.1, `[text]` divides it by 1.1, `(text:1.3)` multiplies it by 1.3;
  marks nest and multiply (the innermost first: `((a:1.3))` is 1.3 × 1.1);
- `\\(`, `\\)`, `\\[`, `\\]` and `\\\\` are the literal characters; any other backslash vanishes;
- a bracket never closed weighs everything after it (round ones first, then square ones); a closing bracket
  without an opening one, and `:1.3)` outside round brackets, are plain text;
- the word `BREAK` (upper case, anywhere, even inside a word) fills the rest of the 75-token window with padding;
- pieces of equal weight are joined, each piece is tokenised on its own, and the tokens are cut at 75 (the
  scripts' default `max_embeddings_multiples` = 1, the same cut as diffusers).

The text encoder's output for `[BOS] tokens [EOS] [PAD]...` is multiplied token-wise by the weights (1.0 for BOS,
EOS and padding), then rescaled so that its mean over tokens and channels is what it was before weighting. A prompt
without marks therefore gets exactly diffusers' embedding. Not implemented (script features outside weighting):
`" AND "` regional prompts, `{a|b}` wildcards and `" --"` per-prompt options.

A weight that is not a number (`(a:.)`) stops the official script with an error; here the mark is kept as text.
"""

from __future__ import annotations

from typing import Any

import torch

ROUND, SQUARE = 1.1, 1 / 1.1
BREAK = "BREAK"
MAX_TOKENS = 75  # tokens between BOS and EOS in one text-encoder window
ESCAPES = "()[]\\"


def _weight_close(text: str, start: int) -> tuple[float, int] | None:
    """`:<number>)` at `start`: its weight and the index after it, else None (then ':' is plain text)."""
    end = start + 1
    while end < len(text) and (text[end].isdigit() or text[end] in ".+-"):
        if text[end] in "+-" and end != start + 1:
            break
        end += 1
    if end == start + 1 or end >= len(text) or text[end] != ")":
        return None
    try:
        return float(text[start + 1:end]), end + 1
    except ValueError:
        return None


def parse_weights(prompt: str) -> list[tuple[str, float]]:
    """The prompt as (text, weight) pieces, the official scripts' reading of emphasis marks (see the module
    docstring); an empty prompt is one empty piece of weight 1."""
    text = prompt.replace(BREAK, f"\\{BREAK}\\")
    pieces: list[list[Any]] = []  # [text, weight, is_break]
    opened: dict[str, list[int]] = {"(": [], "[": []}

    def scale(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= factor

    def add(chunk: str) -> None:
        pieces.append([chunk, 1.0])

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            literal = text[i + 1] if i + 1 < len(text) and text[i + 1] in ESCAPES else ""
            add(literal)
            i += 1 + len(literal)
        elif char in "([":
            opened[char].append(len(pieces))
            i += 1
        elif char == ":" and opened["("] and (closed := _weight_close(text, i)) is not None:
            scale(opened["("].pop(), closed[0])
            i = closed[1]
        elif char == ")" and opened["("]:
            scale(opened["("].pop(), ROUND)
            i += 1
        elif char == "]" and opened["["]:
            scale(opened["["].pop(), SQUARE)
            i += 1
        elif char in ":)]":
            add(char)
            i += 1
        else:
            end = i
            while end < len(text) and text[end] not in "\\()[]:":
                end += 1
            add(text[i:end])
            i = end
    for start in opened["("]:
        scale(start, ROUND)
    for start in opened["["]:
        scale(start, SQUARE)
    return _joined(pieces) or [("", 1.0)]


def _joined(pieces: list[list[Any]]) -> list[tuple[str, float]]:
    """Neighbouring pieces of equal weight as one (never across a BREAK)."""
    out: list[list[Any]] = []
    for chunk, weight in pieces:
        if out and out[-1][1] == weight and BREAK not in (out[-1][0].strip(), chunk.strip()):
            out[-1][0] += chunk
        else:
            out.append([chunk, weight])
    return [(chunk, weight) for chunk, weight in out]


def token_weights(tokenizer: Any, prompt: str, max_tokens: int = MAX_TOKENS) -> tuple[list[int], list[float]]:
    """Token ids and weights of a prompt (no BOS/EOS/padding), cut at `max_tokens`."""
    ids: list[int] = []
    weights: list[float] = []
    window = tokenizer.model_max_length
    for chunk, weight in parse_weights(prompt):
        if chunk.strip() == BREAK:
            fill = window - len(ids) % window
            ids += [tokenizer.pad_token_id] * fill
            weights += [1.0] * fill
            continue
        tokens = tokenizer(chunk).input_ids[1:-1]
        ids += tokens
        weights += [weight] * len(tokens)
        if len(ids) > max_tokens:
            break
    return ids[:max_tokens], weights[:max_tokens]


def padded(tokenizer: Any, prompt: str) -> tuple[list[int], list[float]]:
    """`[BOS] tokens [EOS] [PAD]...` to the encoder's window, and a weight per position (1.0 outside the prompt)."""
    ids, weights = token_weights(tokenizer, prompt, tokenizer.model_max_length - 2)
    fill = tokenizer.model_max_length - 2 - len(ids)
    return ([tokenizer.bos_token_id, *ids, tokenizer.eos_token_id, *[tokenizer.pad_token_id] * fill],
            [1.0, *weights, *[1.0] * (fill + 1)])


def apply_weights(embeddings: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, T, C) times per-token weights (B, T), rescaled to the mean they had (per prompt, over tokens
    and channels, computed in float32 as the scripts do). A prompt without marks (every weight 1) is returned as it
    is: its rescale is 1 by the formula, but as 0/0 where the mean is 0 (a final layer norm with unit weight and zero
    bias, as in randomly initialised encoders, gives a mean of 0 up to rounding)."""
    before = embeddings.float().mean(dim=(-2, -1)).to(embeddings.dtype)
    weighted = embeddings * weights.to(embeddings.dtype).unsqueeze(-1)
    after = weighted.float().mean(dim=(-2, -1)).to(embeddings.dtype)
    unmarked = (weights == 1).all(dim=-1).to(embeddings.device)
    scale = torch.where(unmarked, torch.ones_like(before), before / after)
    return weighted * scale.unsqueeze(-1).unsqueeze(-1)


def weighted_embeddings(tokenizer: Any, text_encoder: Any, prompts: list[str], device: Any,
                        hidden_layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted text embeddings of `prompts` and the encoder's first output unweighted (its pooled embedding,
    for CLIPTextModelWithProjection). `hidden_layer` None: the last hidden state (SD1.x/2.x); -2: the penultimate
    layer (SDXL, both encoders, as the official SDXL script and diffusers take it)."""
    rows = [padded(tokenizer, prompt) for prompt in prompts]
    ids = torch.tensor([r[0] for r in rows], dtype=torch.long, device=device)
    out = text_encoder(ids, output_hidden_states=hidden_layer is not None)
    embeddings = out[0] if hidden_layer is None else out.hidden_states[hidden_layer]
    weights = torch.tensor([r[1] for r in rows], dtype=embeddings.dtype, device=embeddings.device)
    return apply_weights(embeddings, weights), out[0]


def pipeline_embeddings(pipe: Any, prompts: list[str], negative: str) -> dict[str, torch.Tensor]:
    """Weighted prompt embeddings for a StableDiffusionPipeline or StableDiffusionXLPipeline call (see
    `sdxl_embeddings`); SD1.x/2.x encode an empty negative prompt as "" (what the pipeline does itself)."""
    device = getattr(pipe, "_execution_device", None) or pipe.device
    if getattr(pipe, "text_encoder_2", None) is not None:
        return sdxl_embeddings(pipe, prompts, negative, device)
    encode = lambda texts: weighted_embeddings(pipe.tokenizer, pipe.text_encoder, texts, device)[0]  # noqa: E731
    return {"prompt_embeds": encode(prompts), "negative_prompt_embeds": encode([negative] * len(prompts))}


def sdxl_embeddings(pipe: Any, prompts: list[str], negative: str, device: Any) -> dict[str, torch.Tensor]:
    """SDXL: each encoder's penultimate hidden states weighted and rescaled on their own, then joined along the
    channels; the pooled embedding is text_encoder_2's, unweighted (as in the official SDXL script). An empty
    negative prompt is left to the pipeline (zeros, its `force_zeros_for_empty_prompt`), so a prompt without marks
    gets exactly the pipeline's conditioning."""
    def encode(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        parts, pooled = [], None
        for tokenizer, encoder in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
            if tokenizer is not None and encoder is not None:
                embeddings, pooled = weighted_embeddings(tokenizer, encoder, texts, device, hidden_layer=-2)
                parts.append(embeddings)
        return torch.cat(parts, dim=-1), pooled

    embeds, pooled = encode(prompts)
    kwargs = {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
    if negative:
        negative_embeds, negative_pooled = encode([negative] * len(prompts))
        kwargs.update(negative_prompt_embeds=negative_embeds, negative_pooled_prompt_embeds=negative_pooled)
    return kwargs
