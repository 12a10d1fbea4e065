"""Usage errors: one line naming the problem and the help command, exit 2 (click's convention), no traceback."""

from __future__ import annotations

import pytest

from conftest import run_cli
from molebench.cli import main

USAGE_ERRORS = {
    "run without --model": (["run"], "Missing option '--model'", "molebench run --help"),
    "unknown option": (["run", "--model", "tiny-sd15", "--no-such-option"], "No such option: --no-such-option",
                       "molebench run --help"),
    "--limit 0": (["run", "--model", "tiny-sd15", "--limit", "0"], "'--limit'", "molebench run --help"),
    "--limit not a number": (["run", "--model", "tiny-sd15", "--limit", "many"], "'--limit'", "molebench run --help"),
    "compare without runs": (["compare"], "Missing argument", "molebench compare --help"),
    "report without runs": (["report"], "Missing argument", "molebench report --help"),
    "score without a run folder": (["score"], "Missing argument", "molebench score --help"),
    "study create without its options": (["study", "create"], "Missing option", "molebench study create --help"),
    "study create with one run": (["study", "create", "--out", "s.db", "--runs", "a"], "--runs",
                                  "molebench study create --help"),
    "prompts build without a name": (["prompts", "build"], "Missing argument 'NAME'", "molebench prompts build --help"),
    "unknown command": (["no-such-command"], "No such command", "molebench --help"),
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error_is_one_line_exit_2(case, capsys):
    argv, what, help_command = USAGE_ERRORS[case]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and what in lines[0] and f"`{help_command}`" in lines[0]
    assert captured.out == ""


def test_usage_error_in_a_real_process_has_no_traceback():
    result = run_cli("run", "--limit", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_group_without_a_command_prints_its_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["prompts"])
    assert exit_info.value.code == 2
    assert "build" in capsys.readouterr().err and "Traceback" not in capsys.readouterr().err
