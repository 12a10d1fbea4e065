"""The one CLI: `molebench <command>`. Each command group lives in its own module under molebench.cli."""

from __future__ import annotations

import importlib
import os
import sys

import click
import typer

from molebench.errors import MolebenchError

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
]

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: errors the user can act on are printed without a traceback and set the exit code."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = app(args=argv, standalone_mode=False)
    except MolebenchError as exc:
        from rich.text import Text

        from molebench import ui

        ui.err.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:  # `typer.Exit(n)` comes back as a return value when not standalone
        sys.exit(code)
