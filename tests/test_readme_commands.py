"""Every `compress ...` line in the README's ```bash blocks runs as written (issue 19): recipes and their
`--set` overrides validate (data sizes included), other commands parse with their options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer

from compress import validate_recipe
from compress.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands(text: str) -> list[list[str]]:
    """The argument lists of the ``compress`` lines in ```bash blocks (continuations joined, comments cut)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["compress"]:
                commands.append(words[1:])
    return commands


def parse(args: list[str]) -> tuple[str, Any]:
    """Parse ``compress ARGS`` with the CLI's own options without running the command."""
    group = typer.main.get_command(app)
    name, command, rest = group.resolve_command(group.make_context("compress", list(args)), list(args))
    return name, command.make_context(name, rest)


def overrides(context: Any) -> list[str]:
    return list(context.params.get("set_") or [])


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_the_readme_has_the_commands_a_new_user_types():
    verbs = {args[0] for args in COMMANDS}
    assert {"run", "validate", "predict", "bench", "report"} <= verbs, verbs


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_every_readme_command_parses_and_its_recipe_validates(args, monkeypatch):
    monkeypatch.chdir(README.parent)  # the README's paths are relative to the repository root
    name, context = parse(args)
    if name in ("run", "validate"):
        validate_recipe(context.params["recipe"], overrides(context) or None)


def test_the_check_catches_a_quick_start_line_whose_splits_do_not_fit(monkeypatch):
    from compress.errors import RecipeError

    monkeypatch.chdir(README.parent)
    _, context = parse(["run", "default", "--set", "finetune.epochs=1", "--set", "data.limit=2000"])
    with pytest.raises(RecipeError, match="leave nothing to train on within limit"):
        validate_recipe(context.params["recipe"], overrides(context))
    with pytest.raises(Exception, match="No such option: --no-such-option"):
        parse(["predict", "--no-such-option", "runs/rt/bundle", "text"])
