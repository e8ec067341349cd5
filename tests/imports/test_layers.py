"""The import package reads files, diffs and asks the domain (issue 15 item 5, issue 16):
file readers do not reach back into ``server.imports``, ``server.imports`` reaches no web
code, its modules import each other without cycles, and it keeps no copy of a domain rule."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORTS = ROOT / "server" / "imports"


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports (at the top or inside a function)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _modules() -> dict[str, Path]:
    """Every module of ``server.imports``, with its subpackages' (``imports.oneroster_csv``)."""
    found = {}
    for path in IMPORTS.rglob("*.py"):
        parts = path.relative_to(IMPORTS).with_suffix("").parts
        name = ".".join(("server", "imports", *parts)).removesuffix(".__init__")
        found[name] = path
    return found


def test_oneroster_file_readers_do_not_import_the_import_package():
    for name in (
        "csv_cells.py",
        "csv_files.py",
        "csv_records.py",
        "csv_tables.py",
        "csv_writer.py",
    ):
        reached = _imported(ROOT / "oneroster" / name)
        assert not {m for m in reached if m.startswith("server.imports")}, name


def test_the_import_package_imports_no_web_code():
    offenders = {
        name: sorted(m for m in _imported(path) if m.startswith(("server.web", "starlette")))
        for name, path in _modules().items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_import_modules_import_each_other_without_cycles():
    modules = _modules()
    graph = {
        name: {m for m in _imported(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif len(path) < len(graph):
                visit(target, [*path, target])

    for name in sorted(graph):
        visit(name, [name])
    assert cycles == []


def test_the_import_package_keeps_no_copy_of_a_domain_rule():
    """Adoption, ownership and password setting are decided in ``server.domain`` only."""
    copies = ("_adoptable", "_user_for", "_set_password")
    defined = {
        f"{path.name}:{node.name}"
        for path in IMPORTS.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name in copies
    }
    assert defined == set()
