"""Text a model adds to every prompt: a suffix and a negative prompt (`molebench run --option KEY=VALUE`).

MoLE's official generation scripts (sd-scripts-v1.5 `gen_img_diffusers_moe.py`, sd-scripts-xl `moe_sdxl_gen_img.py`)
append `" best quality, 8K"` to every prompt and use the negative prompt `" poor quality, unclear hand, bad face "`
(spaces as in the scripts); their plain-LoRA and base-model scripts add nothing. The MoLE models default to that
text, every other model to none, and every model takes either, so a comparison can give both sides the same text:

- `prompt_text`: `official` (the MoLE scripts' suffix and negative prompt) or `none` (plain prompts);
- `prompt_suffix` / `negative_prompt`: your own text (applied over the `prompt_text` preset).

The benchmark prompt stays what is stored and scored; the text only changes what the pipeline is given. It changes
pixels, so it is recorded in `settings.extra` (and so in every image's content key) whenever it is not empty or the
model's default is not empty; a model run without any keeps the content keys it had before these options existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from molebench.errors import InputError

OFFICIAL_PROMPT_SUFFIX = " best quality, 8K"
OFFICIAL_NEGATIVE_PROMPT = " poor quality, unclear hand, bad face "
PRESETS = {"official": (OFFICIAL_PROMPT_SUFFIX, OFFICIAL_NEGATIVE_PROMPT), "none": ("", "")}


@dataclass(frozen=True)
class PromptText:
    suffix: str = ""
    negative: str = ""

    @staticmethod
    def keys() -> tuple[str, ...]:
        return ("prompt_text", "prompt_suffix", "negative_prompt")

    @classmethod
    def parse(cls, options: Mapping[str, Any], default: str = "none") -> "PromptText":
        """The `prompt_text` preset (else the model's `default`), then `prompt_suffix` / `negative_prompt` over it."""
        preset = options.get("prompt_text", default)
        if preset not in PRESETS:
            raise InputError(f"--option prompt_text: expected one of {', '.join(PRESETS)}, got {preset!r}")
        suffix, negative = PRESETS[preset]
        for key in ("prompt_suffix", "negative_prompt"):
            if key in options and not isinstance(options[key], str):
                raise InputError(f"--option {key}: expected text, got {options[key]!r} (quote it as a JSON string)")
        return cls(options.get("prompt_suffix", suffix), options.get("negative_prompt", negative))

    def apply(self, prompts: list[str]) -> list[str]:
        return [prompt + self.suffix for prompt in prompts]

    def negative_kwargs(self, count: int) -> dict[str, Any]:
        """`negative_prompt` for a pipeline call of `count` prompts; nothing when empty (the pipeline's own default,
        which for SDXL is a zero embedding rather than the encoded empty string)."""
        return {"negative_prompt": [self.negative] * count} if self.negative else {}

    def settings(self, default: str = "none") -> dict[str, Any]:
        """The recorded settings: the text in effect unless both it and the model's default are empty."""
        if self == PromptText() and PRESETS[default] == ("", ""):
            return {}
        return {"prompt_suffix": self.suffix, "negative_prompt": self.negative}
