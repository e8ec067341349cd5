"""House rules that a machine can check: ruff-clean, and one way to say "not deleted" in SQL
(the layers are held by ``tests/test_import_graph.py``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _deleted_status_compared_by_hand(path: Path) -> list[int]:
    """Lines where a mapped class's ``status`` is compared with ``RecordStatus.DELETED`` by
    ``!=`` in place of :func:`server.db.not_deleted`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.NotEq)):
            continue
        left, right = node.left, node.comparators[0]
        if (
            isinstance(left, ast.Attribute)
            and left.attr == "status"
            and isinstance(left.value, ast.Name)
            and left.value.id[:1].isupper()
            and ast.unparse(right) == "RecordStatus.DELETED"
        ):
            lines.append(node.lineno)
    return lines


def test_every_not_deleted_condition_goes_through_one_helper():
    """SQLite prepares a statement again on every run when a bound value meets a partial index's
    condition (issue 15), so SQL says "not deleted" through one helper that writes the literal."""
    found = {
        str(path.relative_to(ROOT)): lines
        for folder in ("server", "scim", "oneroster", "oidc")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (lines := _deleted_status_compared_by_hand(path))
    }
    assert found == {}
