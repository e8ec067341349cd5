"""The layers a reader can see: every module of every package parsed (``ast``), its imports
drawn as a graph, and the graph held to the arrows written down once in ``LAYERS``.

An import counts wherever it stands (module top, function body, ``TYPE_CHECKING``): a lazy
import is a dependency all the same. Issue 16, item 2.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "scim", "oneroster", "oidc")
SKIPPED = ("server/db/migrations",)  # Alembic scripts: loaded by path, never imported

# Each layer may import itself and the layers listed for it, nothing else. Top to bottom:
# the process entry point, the composition root, the protocol adapters (wire formats only),
# the plumbing adapters share, the domain (the rules), what the domain reports through, the
# database, and the leaf every layer raises from.
LAYERS: dict[str, set[str]] = {
    "entry": {"wiring", "adapter", "support", "domain", "infra", "db", "leaf"},
    "wiring": {"adapter", "support", "domain", "infra", "db", "leaf"},
    "adapter": {"adapter", "support", "domain", "infra", "db", "leaf"},
    "support": {"domain", "infra", "db", "leaf"},
    "domain": {"infra", "db", "leaf"},
    "infra": {"db", "leaf"},
    "db": {"leaf"},
    "leaf": set(),
}
# Where each module belongs: the longest matching prefix wins.
LAYER_OF = {
    "server.cli": "entry",
    "server.app": "wiring",
    "server.worker": "wiring",
    "scim": "adapter",
    "oneroster": "adapter",
    "oidc": "adapter",
    "server.web": "adapter",
    "server.imports": "adapter",
    "server.unavailable": "adapter",  # answers "busy" in every protocol's own format
    "server.auth": "support",
    "server.config": "support",
    "server.context": "support",
    "server.demo": "support",
    "server.districts": "support",
    "server.failures": "support",
    "server.mail": "support",
    "server.security_headers": "support",
    "server.domain": "domain",
    "server.logs": "infra",
    "server.metrics": "infra",
    "server.redaction": "infra",
    "server.db": "db",
    "server.data": "leaf",
    "server.errors": "leaf",
    "server": "leaf",  # the package's own __init__
}
# The nodes "no cycles between packages" is about: these sub-packages and top-level packages
# as one node each; any other module of ``server`` stands for itself.
PACKAGE_NODES = (
    "server.db",
    "server.domain",
    "server.web",
    "server.cli",
    "server.imports",
    "scim",
    "oneroster",
    "oidc",
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if any(relative.as_posix().startswith(skip) for skip in SKIPPED):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name ``module`` imports, relative imports resolved (``from pkg import x``
    gives ``pkg.x``: the caller trims it to ``pkg`` when ``x`` is no module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield from (f"{base}.{alias.name}" for alias in node.names)


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module → the project modules it imports."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name in _imported_names(module, path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = frozenset(targets)
    return graph


def _owner(module: str, table) -> str:
    matches = [p for p in table if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else module


def layer_of(module: str) -> str:
    return LAYER_OF[_owner(module, LAYER_OF)]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer():
    assert [m for m in import_graph() if _owner(m, LAYER_OF) not in LAYER_OF] == []


def test_every_import_follows_an_allowed_layer_arrow():
    wrong = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(target) != layer_of(module) and layer_of(target) not in LAYERS[layer_of(module)]
    ]
    assert wrong == []


def test_the_domain_imports_no_adapter():
    """Stated on its own because it is the rule the others protect (SPEC, house rule 1)."""
    above = {"entry", "wiring", "adapter", "support"}
    wrong = [
        f"{module} imports {target}"
        for module, targets in sorted(import_graph().items())
        if layer_of(module) == "domain"
        for target in sorted(targets)
        if layer_of(target) in above
    ]
    assert wrong == []


def test_no_modules_import_each_other_in_a_cycle():
    assert _cycles(import_graph()) == []


def test_no_packages_import_each_other_in_a_cycle():
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        source = _owner(module, PACKAGE_NODES)
        packages.setdefault(source, set()).update(
            _owner(t, PACKAGE_NODES) for t in targets if _owner(t, PACKAGE_NODES) != source
        )
    assert _cycles(packages) == []


def test_the_cycle_finder_sees_a_cycle_and_nothing_else():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
