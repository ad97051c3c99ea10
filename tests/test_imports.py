"""The module graph of ``app/``: no import circle, and no import of ``app.*`` hidden in a function.

A function-local import is how a circle hides; both are read from the source with ``ast``
(nothing is imported), so a new circle or a new hidden import fails here with its path.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from app.settings import PROJECT_ROOT

APP = PROJECT_ROOT / "app"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in APP.rglob("*.py")
        if "migrations" not in path.relative_to(APP).parts
    }


MODULES = _modules()


def _targets(node: ast.Import | ast.ImportFrom, here: str, is_package: bool) -> list[str]:
    """The project modules an import statement names (``from app.x import y``: app.x.y if a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "app"]
    if node.level:  # relative: resolve against this module's package
        package = here if is_package else here.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    if base.split(".")[0] != "app":
        return []
    named = [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in named if name in MODULES] or [base]


def _closest_module(name: str) -> str:
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _imports(name: str, path: Path) -> tuple[set[str], list[str]]:
    """(modules imported at module level, 'path:line' of each app import inside a function)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: set[str] = set()
    hidden: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                targets = [_closest_module(t) for t in _targets(child, name, is_package)]
                if targets and in_function:
                    hidden.append(f"{path.relative_to(PROJECT_ROOT)}:{child.lineno}")
                edges.update(t for t in targets if t != name)
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inside)

    visit(tree, False)
    return edges, hidden


GRAPH: dict[str, set[str]] = {}
HIDDEN: list[str] = []
for _name, _path in MODULES.items():
    GRAPH[_name], _hidden = _imports(_name, _path)
    HIDDEN.extend(_hidden)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_walk_sees_the_modules_and_their_imports() -> None:
    """Guard the guard: the graph is built from real imports, so an empty graph cannot pass."""
    assert "app.money.fulfilment" in GRAPH
    assert "app.money.reversals" in GRAPH["app.money.fulfilment"]
    assert "app.money.models" in GRAPH["app.money.orders"]


def test_no_import_circle_in_app() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_function_local_import_of_app_modules() -> None:
    assert HIDDEN == []


def test_the_money_core_reads_top_to_bottom() -> None:
    """Each money module imports only those listed above it in ``app.money``'s docstring."""
    order = [
        "fields",
        "models",
        "orders",
        "ledger",
        "lots",
        "credits",
        "event_store",
        "reversals",
        "fulfilment",
        "events",
    ]
    for position, module in enumerate(order):
        imported = {
            m.removeprefix("app.money.") for m in GRAPH[f"app.money.{module}"] if m.startswith("app.money.")
        }
        assert imported <= set(order[:position]), (module, imported)


def test_package_inits_import_only_their_own_modules() -> None:
    """Importing ``app.x.y`` runs ``app/__init__`` and ``app/x/__init__`` first, an import the
    graph above does not show: a package that imported beyond itself would make every module
    below it load that too (and hide circles through the package). The root imports nothing."""
    assert GRAPH["app"] == set(), "app/__init__.py must import nothing of the project"
    strays = {
        name: sorted(t for t in targets if not t.startswith(name + "."))
        for name, targets in GRAPH.items()
        if MODULES[name].name == "__init__.py" and name != "app"
    }
    assert {name: found for name, found in strays.items() if found} == {}


def test_the_sandbox_loads_nothing_of_the_shop_at_run_time() -> None:
    """The graph is read from the source; this imports the sandbox for real, in a fresh interpreter."""
    probe = (
        "import sys, app.sandbox, app.sandbox.state, app.sandbox.app;"
        "print(sorted(m for m in sys.modules if m.startswith('app.') and not m.startswith('app.sandbox')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
