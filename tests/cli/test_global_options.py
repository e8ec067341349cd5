"""``--tenant`` and ``--json`` mean the same before and after the command (issue 10, defect 13).

Every command is found by walking the argparse tree, so a command added later is covered
without touching this file.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import pytest

from server.cli.main import build_parser
from tests.imports.packages import district, package

MISSING = "no-such-name"
# Commands that do not act inside a tenant (SPEC §11: "every command that acts inside a tenant
# takes --tenant"); they are checked at parse level only. ``serve`` and ``worker`` would not
# return; ``backup``, ``restore`` and ``secrets rotate`` act on the whole installation.
OUTSIDE_A_TENANT = {
    ("serve",),
    ("worker",),
    ("migrate",),
    ("backup",),
    ("restore",),
    ("secrets", "rotate"),
    ("tenant", "add"),
    ("tenant", "list"),
}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every leaf command of the parser, with its words (``("connection", "add")``)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
        return
    for name, child in subparsers[0].choices.items():
        yield from commands(child, (*path, name))


def required_arguments(parser: argparse.ArgumentParser) -> list[str]:
    """The smallest invocation the command accepts: its positionals and required options."""
    argv: list[str] = []
    for action in parser._actions:
        value = str(action.choices[0]) if action.choices else "x"
        if not action.option_strings and action.nargs not in ("?", "*"):
            argv.append(value)
        elif action.required:
            argv += [action.option_strings[0], value]
    return argv


ALL_COMMANDS = [path for path, _ in commands(build_parser())]
NAMES = [" ".join(path) for path in ALL_COMMANDS]


@pytest.mark.parametrize("words", ALL_COMMANDS, ids=NAMES)
def test_global_options_parse_the_same_before_and_after_the_command(words):
    leaf = dict(commands(build_parser()))[words]
    rest = required_arguments(leaf)
    before = build_parser().parse_args(["--tenant", "Other", "--json", *words, *rest])
    after = build_parser().parse_args([*words, *rest, "--tenant", "Other", "--json"])
    assert vars(before) == vars(after)
    assert before.tenant == "Other" and before.json is True


@pytest.mark.parametrize(
    "words", [w for w in ALL_COMMANDS if w not in OUTSIDE_A_TENANT], ids=lambda w: " ".join(w)
)
def test_every_command_runs_the_same_with_the_options_before_or_after(
    words, rollcall, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)  # ``export --out x`` and the like write here, if anywhere
    leaf = dict(commands(build_parser()))[words]
    rest = required_arguments(leaf)
    before = rollcall("--tenant", MISSING, "--json", *words, *rest)
    after = rollcall(*words, *rest, "--tenant", MISSING, "--json")
    assert before == after
    code, out, _ = after
    assert code != 0 and "error" in json.loads(out)


def test_import_with_the_tenant_before_the_command_lands_in_that_tenant(rollcall, tmp_path):
    rollcall("connection", "list")  # creates the default tenant, which stays the first one
    assert rollcall("tenant", "add", "Other")[0] == 0
    assert rollcall("--tenant", "Other", "connection", "add", "SIS", "--kind", "oneroster")[0] == 0
    path = package(tmp_path / "sis.zip", "1.1", district())
    code, out, _ = rollcall(
        "--tenant", "Other", "--json", "import", str(path), "--connection", "SIS"
    )
    assert code == 0 and json.loads(out)["outcomes"] == {"created": 13}
    code, out, _ = rollcall("--json", "--tenant", "Other", "import-report")
    assert [run["status"] for run in json.loads(out)] == ["applied"]
    code, out, _ = rollcall("--json", "import-report")
    assert json.loads(out) == []


def test_an_unknown_tenant_before_the_command_is_refused(rollcall, tmp_path):
    path = package(tmp_path / "sis.zip", "1.1", district())
    code, out, _ = rollcall(
        "--tenant", MISSING, "--json", "import", str(path), "--connection", "SIS"
    )
    assert code == 1 and json.loads(out)["error"] == f"No tenant named {MISSING!r}."
