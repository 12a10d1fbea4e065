"""One way to declare and check model options (`molebench run --option KEY=VALUE`, `Model(**options)`).

A group of options is a frozen dataclass whose fields are the option names, each declared with `option(default,
rule)`; `parse_options` turns a dict of given values into an instance of it. Every model option goes through it
(the model's own options, `MemoryOptions`, `PromptText`, MoLE's files and ablations), so every option is checked the
same way before anything is written, and every error reads the same:
- an unknown key names the owner, near names and every known key;
- a value is checked by its field's rule (true/false, one of a few choices, a number in a range, text, a path, a
  comma list) and converted: `--option x=1` where a float is expected becomes 1.0, so `x=1` and `x=1.0` record the
  same setting (and the same content key).
CLI values arrive JSON-decoded (`true`, `0.8`) or as the string given; Python callers pass values directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping, TypeVar

from molebench.errors import UsageError
from molebench.registry import near_names

T = TypeVar("T")


@dataclass(frozen=True)
class Rule:
    """How an option's value is checked: `convert` returns the value to keep or raises ValueError/TypeError;
    `expect` completes "expected ..." in the error, `hint` follows the offending value."""

    expect: str
    convert: Callable[[Any], Any]
    hint: str = ""


def option(default: Any, rule: Rule, *, recorded: bool = True) -> Any:
    """A dataclass field that is an option. `recorded=False` for options that name files rather than change
    images (their hashes identify them): they stay out of `settings.extra` and so out of the content key."""
    return field(default=default, metadata={"rule": rule, "recorded": recorded})


# --- rules -------------------------------------------------------------------------------------------------------
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(value)


def flag() -> Rule:
    """true or false (also 1/0, yes/no, on/off, as JSON or text)."""
    return Rule("true or false", _flag)


def choice(*values: str) -> Rule:
    def convert(value: Any) -> str:
        if value not in values:
            raise ValueError(value)
        return value

    return Rule(f"one of {', '.join(values)}", convert)


def number(low: float, high: float, *, include_high: bool = False) -> Rule:
    """A float in (low, high) or (low, high]; an int is taken as the float it equals."""
    expect = f"a number in ({low:g}, {high:g}]" if include_high else f"a number between {low:g} and {high:g}"

    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(value)
        if not (low < value < high or (include_high and value == high)):
            raise ValueError(value)
        return float(value)

    return Rule(expect, convert)


def whole(low: int = 1) -> Rule:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(value)
        return value

    return Rule(f"a whole number of at least {low}", convert)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def text() -> Rule:
    return Rule("text", _text, hint=" (quote it as a JSON string)")


def path() -> Rule:
    """A file or folder, kept as the text given (a number-like name arrives JSON-decoded: it is turned back)."""
    return Rule("a path", str)


def _items(value: Any) -> list[str]:
    return [str(v).strip() for v in (value if isinstance(value, (list, tuple)) else str(value).split(","))]


def names() -> Rule:
    """A comma-separated list (or a JSON/Python list) of names."""
    return Rule("names separated by commas", lambda value: tuple(v for v in _items(value) if v))


def numbers() -> Rule:
    """A comma-separated list (or a JSON/Python list) of numbers, as floats."""
    return Rule("numbers such as 1,0.5", lambda value: tuple(float(v) for v in _items(value)))


# --- parsing -----------------------------------------------------------------------------------------------------
def option_keys(*groups: type) -> tuple[str, ...]:
    """The option names of the groups, in declaration order."""
    return tuple(f.name for group in groups for f in fields(group))


def check_known(values: Iterable[str], known: Iterable[str], *, owner: str | None = None,
                label: str = "--option") -> None:
    """Refuse keys outside `known`: "--option KEY: not an option of OWNER (did you mean ...?); known: ..."."""
    known = list(dict.fromkeys(known))
    unknown = sorted(set(values) - set(known))
    if not unknown:
        return
    near = list(dict.fromkeys(n for key in unknown for n in near_names(key, known)))
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    listed = ", ".join(unknown)
    head = f"{label} {listed}: not an option of {owner}" if owner else f"unknown {label}(s) {listed}"
    raise UsageError(f"{head}{hint}; known: {', '.join(known)}")


def convert_value(group: type, key: str, value: Any, label: str = "--option") -> Any:
    """`value` checked and converted by the rule of `group`'s field `key`."""
    rule: Rule = next(f for f in fields(group) if f.name == key).metadata["rule"]
    try:
        return rule.convert(value)
    except (TypeError, ValueError):
        raise UsageError(f"{label} {key}: expected {rule.expect}, got {value!r}{rule.hint}") from None


def parse_options(group: type[T], values: Mapping[str, Any], *, owner: str | None = None, label: str = "--option",
                  defaults: Mapping[str, Any] | None = None, known: Iterable[str] = ()) -> T:
    """An instance of the options dataclass `group` from the given `values` over `defaults` (the owner's own
    defaults, e.g. SDXL's fp32 VAE), both checked by the fields' rules. Keys of other groups the owner also takes
    are passed as `known` (they are left to those groups); any other key is refused."""
    own = option_keys(group)
    check_known(values, (*own, *known), owner=owner, label=label)
    given = {**(defaults or {}), **{k: v for k, v in values.items() if k in own}}
    return group(**{key: convert_value(group, key, value, label) for key, value in given.items()})


def recorded(options: Any) -> dict[str, Any]:
    """The options that change images (part of `settings.extra`): every field not declared `recorded=False`."""
    return {f.name: getattr(options, f.name) for f in fields(options) if f.metadata.get("recorded", True)}


@dataclass(frozen=True)
class NoOptions:
    """The options of a model that has none of its own."""
