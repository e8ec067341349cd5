"""House rules that a machine can check: ruff-clean, and protocol packages never touch the
database directly (they call server.domain)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_PACKAGES = ("scim", "oneroster", "oidc")


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_protocol_packages_do_not_write_to_the_database_themselves():
    writes = re.compile(
        r"\bsession\.(add|add_all|delete|execute|merge)\(|\b(insert|update|delete)\("
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PROTOCOL_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if writes.search(line)
    ]
    assert offenders == []
