"""The one CLI: `molebench <command>`. Each command group lives in its own module under molebench.cli."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys

import typer

from molebench.errors import MolebenchError, UsageError

app = typer.Typer(
    name="molebench",
    help="Benchmark and evaluation harness for human-centric text-to-image diffusion (MoLE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Modules that add commands to `app` with a `register(app)` function. New commands add their module here.
COMMAND_MODULES = [
    "molebench.cli.run",
    "molebench.cli.listing",
    "molebench.cli.study",
    "molebench.cli.report",
    "molebench.cli.prompts",
    "molebench.cli.weights",
    "molebench.cli.score",
    "molebench.cli.verify",
    "molebench.cli.detectors",
]

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def _click_types(name: str) -> tuple[type[BaseException], ...]:
    """`name` from typer's vendored click (typer >= 0.2x) and from click itself (older typer): either may raise it."""
    found = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(dict.fromkeys(found))


USAGE_ERRORS = _click_types("ClickException")
EXITS = _click_types("Exit")
ABORTS = _click_types("Abort")


def _error(message: str) -> None:
    from rich.text import Text

    from molebench import ui

    ui.err.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)


def usage_message(exc: BaseException, argv: list[str]) -> str:
    """A usage error as one line: what is wrong, and the help command of the (sub)command it came from."""
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else command_path(argv)  # parser errors come without a context
    return f"{message} (see `{path} --help`)"


def command_path(argv: list[str]) -> str:
    """'molebench study create' for argv ['study', 'create', ...]: the deepest command the words name."""
    command, words = typer.main.get_command(app), ["molebench"]
    for token in argv:
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            break
        command, words = sub, words + [token]
    return " ".join(words)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is so that it stops like Ctrl-C (exit 143 instead of 130)."""


_SIGTERM_SEEN: list[bool] = []


def _terminated(signum: int, frame: object) -> None:
    _SIGTERM_SEEN.append(True)
    raise Terminated()


def _stopped_code() -> int:
    """The exit code of a stopped command: 143 after SIGTERM (the shell's 128 + 15), else 130 (Ctrl-C)."""
    return 143 if _SIGTERM_SEEN else 130


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors the user can act on are printed without a traceback and set the exit code.

    Usage errors (missing or unknown option, value out of range) are one line and exit 2, click's convention;
    a command group called without a subcommand prints its help.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with contextlib.suppress(ValueError):  # (only the main thread may set handlers; an embedding thread keeps its own)
        signal.signal(signal.SIGTERM, _terminated)  # SIGTERM stops a command as Ctrl-C does, closing its folder
    try:
        code = app(args=argv, prog_name="molebench", standalone_mode=False)
    except UsageError as exc:  # a bad option value: like click's usage errors, with the help command to read
        _error(f"{exc} (see `{command_path(sys.argv[1:] if argv is None else argv)} --help`)")
        sys.exit(exc.exit_code)
    except MolebenchError as exc:
        _error(str(exc))
        sys.exit(exc.exit_code)
    except EXITS as exc:
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    except ABORTS:
        sys.exit(_stopped_code())
    except USAGE_ERRORS as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
        else:
            _error(usage_message(exc, sys.argv[1:] if argv is None else argv))
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    if isinstance(code, int) and code:  # `typer.Exit(n)` comes back as a return value when not standalone
        sys.exit(_stopped_code() if code == 130 else code)  # (typer returns Ctrl-C as 130)
