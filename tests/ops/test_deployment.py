"""Issue 13 defect 10: the systemd units in ``docs/deploy`` are valid and start real commands."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli.main import build_parser
from tests.live import ROOT

UNITS = sorted((ROOT / "docs" / "deploy").glob("*.service"))
INSTALLED = "/opt/rollcall/.venv/bin/rollcall"


def _unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(path)
    return parser


def test_there_is_a_web_unit_and_a_worker_unit():
    assert {unit.name for unit in UNITS} == {"rollcall.service", "rollcall-worker.service"}


@pytest.mark.parametrize("path", UNITS, ids=[unit.name for unit in UNITS])
def test_each_unit_runs_real_rollcall_commands_with_the_shared_environment(path):
    unit = _unit(path)
    assert unit.get("Unit", "Description")
    assert unit.get("Install", "WantedBy") == "multi-user.target"
    assert unit.get("Service", "EnvironmentFile") == "/etc/rollcall/rollcall.env"
    assert unit.get("Service", "Restart") == "on-failure"
    commands = [unit.get("Service", key, fallback=None) for key in ("ExecStartPre", "ExecStart")]
    for command in filter(None, commands):
        program, *arguments = shlex.split(command)
        assert program == INSTALLED
        parsed = build_parser().parse_args(arguments)  # exits 2 on a command that does not exist
        assert parsed.handler is not None
    started = shlex.split(unit.get("Service", "ExecStart"))[1]
    assert started == ("worker" if "worker" in path.name else "serve")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing")
@pytest.mark.parametrize("path", UNITS, ids=[unit.name for unit in UNITS])
def test_systemd_analyze_verifies_each_unit(path, tmp_path):
    # verify checks that the program exists: point it at this checkout's rollcall
    rollcall = Path(sys.executable).with_name("rollcall")
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace(INSTALLED, str(rollcall)))
    checked = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
