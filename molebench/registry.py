"""Name -> class registries in the lm-evaluation-harness style: lazy, checked, open to plugins.

Each registry maps a name to a `"module:Class"` target and imports a module only when one of its names is asked for
(`molebench scorers` must not pay for diffusers, a run of `tiny-sd15` must not import PixArt). Three sources:
- molebench's own entries, in the tables below (a new family adds its lines here and puts `@register_model(NAME)`
  on the class: the decorator gives the class its `registry_name` and checks that this table points at it;
  tests/cli/test_registry.py checks that every decorated class in the package is listed);
- installed plugins, from the entry-point groups `molebench.models`, `molebench.scorers` and `molebench.benchmarks`
  (`name = "package.module:Class"` in the plugin's package metadata);
- `REGISTRY.add(name, cls)` or the decorator on a class outside molebench (a notebook, a script).

Every loaded class is checked against the registry's base class. A failing import leaves the registry as it was and
names the module that failed; an unknown name gets "did you mean" suggestions.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from typing import Callable, Generic, TypeVar

from molebench.errors import InputError, MolebenchError

T = TypeVar("T")


def near_names(name: str, names: list[str]) -> list[str]:
    """Names close to `name`: the same once dashes, dots, underscores and case are ignored, then near spellings
    (for "did you mean" hints on registry entries and model options alike)."""

    def fold(text: str) -> str:
        return text.replace("-", "").replace(".", "").replace("_", "").lower()

    exact = {fold(n): n for n in names}.get(fold(name))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return list(dict.fromkeys(([exact] if exact else []) + close))


ENTRY_POINT_GROUPS = {"model": "molebench.models", "scorer": "molebench.scorers", "benchmark": "molebench.benchmarks",
                      "detector": "molebench.detectors"}

BUILTIN_MODELS: dict[str, str] = {
    "tiny-sd15": "molebench.models.tiny_sd:TinySD15",
    "sd15": "molebench.models.stable_diffusion:StableDiffusion15",
    "sd21": "molebench.models.stable_diffusion:StableDiffusion21",
    "tiny-sd21": "molebench.models.stable_diffusion:TinySD21",
    "sdxl": "molebench.models.sdxl:StableDiffusionXL",
    "sdxl-refiner": "molebench.models.sdxl:StableDiffusionXLRefiner",
    "tiny-sdxl": "molebench.models.sdxl:TinySDXL",
    "tiny-sdxl-refiner": "molebench.models.sdxl:TinySDXLRefiner",
    "pixart-alpha": "molebench.models.pixart:PixArtAlpha",
    "pixart-alpha-1024": "molebench.models.pixart:PixArtAlpha1024",
    "tiny-pixart-alpha": "molebench.models.pixart:TinyPixArtAlpha",
    "vq-diffusion": "molebench.models.legacy:VQDiffusion",
    "versatile-diffusion": "molebench.models.legacy:VersatileDiffusion",
    "tiny-vq-diffusion": "molebench.models.legacy:TinyVQDiffusion",
    "tiny-versatile-diffusion": "molebench.models.legacy:TinyVersatileDiffusion",
    "mole-sd15": "molebench.models.mole.models:MoLESD15",
    "mole-sdxl": "molebench.models.mole.models:MoLESDXL",
    "tiny-mole-sd15": "molebench.models.mole.models:TinyMoLESD15",
}
BUILTIN_SCORERS: dict[str, str] = {
    "hps-v2": "molebench.scoring.hps:HPSv20",
    "hps-v2.1": "molebench.scoring.hps:HPSv21",
    "hps-tiny": "molebench.scoring.hps:TinyHPS",
    "hps-v1": "molebench.scoring.hps_v1:HPSv1",
    "hps-v1-fp16norm": "molebench.scoring.hps_v1:HPSv1Fp16Norm",
    "hps-v1-tiny": "molebench.scoring.hps_v1:TinyHPSv1",
    "imagereward": "molebench.scoring.imagereward:ImageRewardV1",
    "imagereward-tiny": "molebench.scoring.imagereward:TinyImageReward",
    "faces": "molebench.scoring.people:Faces",
    "hands": "molebench.scoring.people:Hands",
    "aesthetic": "molebench.scoring.aesthetic:Aesthetic",
    "aesthetic-tiny": "molebench.scoring.aesthetic:TinyAesthetic",
    "clip-t": "molebench.scoring.clip_score:CLIPTLarge",
    "clip-t-b32": "molebench.scoring.clip_score:CLIPTBase",
    "clip-t-tiny": "molebench.scoring.clip_score:CLIPTTiny",
    "fid": "molebench.scoring.fid:FID",
    "kid": "molebench.scoring.fid:KID",
    "fid-tiny": "molebench.scoring.fid:TinyFID",
    "kid-tiny": "molebench.scoring.fid:TinyKID",
}
BUILTIN_DETECTORS: dict[str, str] = {
    "mediapipe-legacy": "molebench.scoring.detect.mediapipe_legacy:MediaPipeLegacy",
    "mediapipe-torch": "molebench.scoring.detect.mediapipe_torch:MediaPipeTorch",
}
BUILTIN_BENCHMARKS: dict[str, str] = {
    "tiny-human": "molebench.benchmarks.tiny:TinyHuman",
    "coco-human": "molebench.benchmarks.human:CocoHuman",
    "diffusiondb-human": "molebench.benchmarks.human:DiffusionDBHuman",
    "coco-human-paper": "molebench.benchmarks.human:CocoHumanPaper",
    "diffusiondb-human-paper": "molebench.benchmarks.human:DiffusionDBHumanPaper",
}


class PluginError(MolebenchError):
    """A registry entry that cannot be used: its module fails to import, its class is missing or of the wrong kind."""


class Registry(Generic[T]):
    """Named classes of one kind (`base`), imported on first use."""

    def __init__(self, kind: str, base: str, builtins: dict[str, str]) -> None:
        self.kind = kind
        self.base = base  # "module:Class" every entry must subclass (resolved on first load)
        self.group = ENTRY_POINT_GROUPS[kind]
        self._builtins = dict(builtins)
        self._targets: dict[str, str] = dict(builtins)
        self._origins: dict[str, str] = {name: "molebench" for name in builtins}
        self._loaded: dict[str, T] = {}
        self._plugins_read = False

    # --- declaring ---------------------------------------------------------------------------------------------
    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: gives the class its `registry_name`; a class outside molebench's table is added."""

        def decorator(obj: T) -> T:
            target = _target_of(obj)
            listed = self._builtins.get(name)
            if listed is not None and listed != target:
                raise PluginError(f"{self.kind} '{name}' is declared by {target} but molebench.registry lists "
                                  f"{listed} for it")
            if listed is None and target.startswith("molebench."):
                raise PluginError(f"{self.kind} '{name}' ({target}) is not in molebench.registry's table of "
                                  f"{self.kind}s; add it there so it can be found without importing every module")
            if listed is None:
                self.add(name, obj)  # sets `registry_name` unless the class has its own (then it must agree)
            else:
                setattr(obj, "registry_name", name)
            return obj

        return decorator

    def add(self, name: str, obj: T | str) -> None:
        """Register a class (or a "module:Class" target, imported on first use) under `name`."""
        target = obj if isinstance(obj, str) else _target_of(obj)
        known = self._targets.get(name)
        if known is not None and known != target:
            raise PluginError(f"{self.kind} '{name}' is already registered ({known}, from {self._origins[name]}); "
                              f"cannot register {target} under the same name")
        if not isinstance(obj, str):
            self._check(name, obj)
            self._loaded[name] = obj
        self._targets[name] = target
        self._origins.setdefault(name, "register()")

    # --- finding -----------------------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The class registered as `name`, its module imported now if it was not yet."""
        self._read_plugins()
        if name in self._loaded:
            return self._loaded[name]
        self.check(name)
        obj = self._import(name, self._targets[name])
        self._check(name, obj)
        self._loaded[name] = obj
        return obj

    def check(self, name: str) -> None:
        """Raise the unknown-name error (with suggestions) unless `name` is registered; imports nothing."""
        if name not in self:
            raise InputError(self._unknown(name))

    def names(self) -> list[str]:
        """Every registered name, without importing anything."""
        self._read_plugins()
        return sorted(self._targets)

    def items(self) -> list[tuple[str, T]]:
        """(name, class) for every entry: imports them all (for listings)."""
        return [(name, self.get(name)) for name in self.names()]

    def origin(self, name: str) -> str:
        self._read_plugins()
        return self._origins.get(name, "")

    def __contains__(self, name: object) -> bool:
        self._read_plugins()
        return name in self._targets

    def suggest(self, name: str) -> list[str]:
        """Registered names close to `name` (typos, a missing dot or dash)."""
        return near_names(name, self.names())

    # --- internals ---------------------------------------------------------------------------------------------
    def _unknown(self, name: str) -> str:
        hint = self.suggest(name)
        message = f"unknown {self.kind} '{name}'"
        if hint:
            message += f"; did you mean {' or '.join(hint)}?"
        return message + f" (registered: {', '.join(self.names()) or 'none'}; list them with `molebench {self.kind}s`)"

    def _read_plugins(self) -> None:
        """Add the entry points of this registry's group (names and targets only: nothing is imported)."""
        if self._plugins_read:
            return
        found: dict[str, tuple[str, str]] = {}
        for point in importlib.metadata.entry_points(group=self.group):
            dist = getattr(point.dist, "name", None) or "an installed package"
            where = f"entry point '{point.name}' of {dist} (group {self.group})"
            known = self._targets.get(point.name) or found.get(point.name, (None,))[0]
            if known is not None and known != point.value:
                origin = self._origins.get(point.name) or found[point.name][1]
                raise PluginError(f"{where} registers {self.kind} '{point.name}' as {point.value}, but that name "
                                  f"is already {known} (from {origin}); uninstall one of them")
            found[point.name] = (point.value, where)
        for name, (target, where) in found.items():
            self._targets[name] = target
            self._origins.setdefault(name, where)
        self._plugins_read = True

    def _import(self, name: str, target: str) -> T:
        module_name, _, attribute = target.partition(":")
        where = self._origins.get(name, "")
        if not attribute:
            raise PluginError(f"{self.kind} '{name}' ({where}): target '{target}' must be 'module:Class'")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is reported the same way
            raise PluginError(f"{self.kind} '{name}' ({where}): importing module {module_name} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        obj: object = module
        for part in attribute.split("."):
            if not hasattr(obj, part):
                raise PluginError(f"{self.kind} '{name}' ({where}): module {module_name} has no '{attribute}'")
            obj = getattr(obj, part)
        return obj  # type: ignore[return-value]

    def _check(self, name: str, obj: object) -> None:
        base_module, _, base_name = self.base.partition(":")
        base = getattr(importlib.import_module(base_module), base_name)
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise PluginError(f"{self.kind} '{name}' ({_target_of(obj)}) is not a subclass of {self.base}")
        own = obj.__dict__.get("registry_name")
        if own and own != name:
            raise PluginError(f"{self.kind} '{name}' ({_target_of(obj)}) calls itself '{own}'")
        if not own:
            obj.registry_name = name


def _target_of(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__name__)}"


MODELS: Registry = Registry("model", "molebench.models.base:T2IModel", BUILTIN_MODELS)
SCORERS: Registry = Registry("scorer", "molebench.scoring.base:Scorer", BUILTIN_SCORERS)
BENCHMARKS: Registry = Registry("benchmark", "molebench.benchmarks.base:Benchmark", BUILTIN_BENCHMARKS)
DETECTORS: Registry = Registry("detector", "molebench.scoring.detect.base:Detector", BUILTIN_DETECTORS)

register_model = MODELS.register
register_scorer = SCORERS.register
register_benchmark = BENCHMARKS.register
register_detector = DETECTORS.register
