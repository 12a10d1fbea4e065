"""Text a model adds to every prompt: a suffix and a negative prompt (`molebench run --option KEY=VALUE`).

MoLE's official generation scripts (sd-scripts-v1.5 `gen_img_diffusers_moe.py`, sd-scripts-xl `moe_sdxl_gen_img.py`)
append `" best quality, 8K"` to every prompt and use the negative prompt `" poor quality, unclear hand, bad face "`
(spaces as in the scripts); their plain-LoRA and base-model scripts add nothing. The MoLE models default to that
text, every other model to none, and every model takes either, so a comparison can give both sides the same text:

- `prompt_text`: `official` (the MoLE scripts' suffix and negative prompt) or `none` (plain prompts);
- `prompt_suffix` / `negative_prompt`: your own text (applied over the `prompt_text` preset);
- `prompt_weighting`: `official` reads `(word)`, `[word]`, `(word:1.3)` emphasis marks as the official scripts do
  (molebench.models.prompt_weighting; the MoLE models' default), `none` hands the text to the pipeline as it is.

The benchmark prompt stays what is stored and scored; the text only changes what the pipeline is given. It changes
pixels, so it is recorded in `settings.extra` (and so in every image's content key) whenever it is not empty or the
model's default is not empty; a model run without any keeps the content keys it had before these options existed.
`prompt_weighting` is recorded only when it is on (absent means the pipeline's own reading of the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from molebench.models.options import choice, option, parse_options, text

OFFICIAL_PROMPT_SUFFIX = " best quality, 8K"
OFFICIAL_NEGATIVE_PROMPT = " poor quality, unclear hand, bad face "
PRESETS = {"official": (OFFICIAL_PROMPT_SUFFIX, OFFICIAL_NEGATIVE_PROMPT), "none": ("", "")}
WEIGHTINGS = ("none", "official")


@dataclass(frozen=True)
class PromptText:
    prompt_text: str = option("none", choice(*PRESETS))
    prompt_suffix: str | None = option(None, text())
    negative_prompt: str | None = option(None, text())
    prompt_weighting: str = option("none", choice(*WEIGHTINGS))

    @classmethod
    def parse(cls, options: Mapping[str, Any], default: str = "none", weighting: str = "none",
              **context: Any) -> "PromptText":
        """The `prompt_text` preset (else the model's `default`), then `prompt_suffix` / `negative_prompt` over it,
        and `prompt_weighting` (else the model's `weighting`) (`context`: see `parse_options`)."""
        return parse_options(cls, options, defaults={"prompt_text": default, "prompt_weighting": weighting},
                             **context)

    @property
    def suffix(self) -> str:
        return PRESETS[self.prompt_text][0] if self.prompt_suffix is None else self.prompt_suffix

    @property
    def negative(self) -> str:
        return PRESETS[self.prompt_text][1] if self.negative_prompt is None else self.negative_prompt

    def apply(self, prompts: list[str]) -> list[str]:
        return [prompt + self.suffix for prompt in prompts]

    def negative_kwargs(self, count: int) -> dict[str, Any]:
        """`negative_prompt` for a pipeline call of `count` prompts; nothing when empty (the pipeline's own default,
        which for SDXL is a zero embedding rather than the encoded empty string)."""
        return {"negative_prompt": [self.negative] * count} if self.negative else {}

    def settings(self, default: str = "none") -> dict[str, Any]:
        """The recorded settings: the text in effect unless both it and the model's default are empty, and the
        weighting when it is on."""
        weighting = {"prompt_weighting": self.prompt_weighting} if self.prompt_weighting != "none" else {}
        if not (self.suffix or self.negative) and PRESETS[default] == ("", ""):
            return weighting
        return {"prompt_suffix": self.suffix, "negative_prompt": self.negative, **weighting}
