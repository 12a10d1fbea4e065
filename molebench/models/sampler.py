"""The official scripts' DDIM sampler (`--option scheduler_config=official`), the MoLE models' default.

Both official generation scripts build `DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
beta_schedule="scaled_linear")` themselves; their pipeline then sets `steps_offset=1` and `clip_sample=False` (the
SD1.5 script's attempt to turn clip_sample on is undone there, as the SDXL script's comment says), and
`set_alpha_to_one` keeps DDIM's default, True. A diffusers pipeline swapped to DDIM keeps its own scheduler config
instead, which for SD1.5 and SDXL says `set_alpha_to_one=False`: the last step (the "previous" alpha at t < 0)
differs. `official` builds the scripts' scheduler, keeping only the pipeline's prediction type (v-prediction for
SD 2.1, as the scripts' `--v_parameterization`); `pipeline` (every other model's default) keeps the pipeline's
config. Recorded as `scheduler_config` in the settings (and so in the content key) only when it is `official`.
A MoLE run given another `--scheduler` uses that class with the pipeline's config (the official one is DDIM's);
asking for `scheduler_config=official` with another class is an error.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from molebench.errors import InputError
from molebench.models.options import choice, option, parse_options

OFFICIAL_DDIM: dict[str, Any] = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                                 "beta_schedule": "scaled_linear", "steps_offset": 1, "clip_sample": False,
                                 "set_alpha_to_one": True}


def official_scheduler(config: Mapping[str, Any]) -> Any:
    """The official scripts' DDIM scheduler, with the prediction type of the pipeline's scheduler `config`."""
    ddim = importlib.import_module("diffusers").DDIMScheduler
    return ddim(**OFFICIAL_DDIM, prediction_type=config.get("prediction_type", "epsilon"))


@dataclass(frozen=True)
class SamplerOptions:
    scheduler_config: str = option("pipeline", choice("pipeline", "official"))

    @classmethod
    def parse(cls, options: Mapping[str, Any], default: str = "pipeline", **context: Any) -> "SamplerOptions":
        return parse_options(cls, options, defaults={"scheduler_config": default}, **context)

    @property
    def official(self) -> bool:
        return self.scheduler_config == "official"

    def check(self, scheduler: str) -> None:
        """The official config is a DDIM config: refuse it with another scheduler class."""
        if self.official and scheduler != "DDIMScheduler":
            raise InputError(f"--option scheduler_config=official is the official scripts' DDIM sampler; it needs "
                             f"--scheduler DDIMScheduler, got {scheduler} (or pass --option scheduler_config=pipeline)")

    def apply(self, pipe: Any) -> None:
        if self.official:
            pipe.scheduler = official_scheduler(pipe.scheduler.config)

    def settings(self) -> dict[str, Any]:
        return {"scheduler_config": self.scheduler_config} if self.official else {}
