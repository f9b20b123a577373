"""No import circles in Mamori: a module never needs, even inside a function, a module that
needs it back. Services enqueue tasks; tasks call the domain modules (``reports``,
``notifications``) that build what they send; read models such as ``assessments.snapshot`` sit
below both. A circle hidden in a function-level import is still a circle, so those count."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import mamori

SOURCE = Path(mamori.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in SOURCE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(SOURCE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(sources: dict[str, str], packages: frozenset[str] = frozenset()) -> nx.DiGraph:
    """Module → the modules of ``sources`` it imports anywhere in its text (``packages`` are
    the modules that are packages, for relative imports). ``from package import name`` counts
    as importing ``package.name`` when that is a module."""
    graph = nx.DiGraph()
    graph.add_nodes_from(sources)
    for module, text in sources.items():
        package = module if module in packages else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parent = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            graph.add_edges_from(
                (module, target) for target in targets if target in sources and target != module
            )
    return graph


def circles(graph: nx.DiGraph) -> list[list[str]]:
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


def test_no_module_of_mamori_imports_itself_round_a_circle():
    modules = _modules()
    assert "mamori.assessments.services" in modules
    graph = import_graph(
        {name: path.read_text(encoding="utf-8") for name, path in modules.items()},
        frozenset(name for name, path in modules.items() if path.name == "__init__.py"),
    )
    assert circles(graph) == []


def test_the_check_sees_a_circle_through_a_function_level_import():
    sample = {
        "app.services": "from app import tasks\n",
        "app.tasks": "def run():\n    from app.services import work\n",
        "app.reports": "from .services import Snapshot\n",
        "app": "",
    }
    assert circles(import_graph(sample, frozenset({"app"}))) == [["app.services", "app.tasks"]]
    # Through a third module too; mended as Mamori is: the read model below both.
    sample["app.tasks"] = "from .reports import build\n"
    assert circles(import_graph(sample, frozenset({"app"}))) == [
        ["app.reports", "app.services", "app.tasks"]
    ]
    sample["app.reports"] = "from .snapshot import Snapshot\n"
    sample["app.snapshot"] = ""
    assert circles(import_graph(sample, frozenset({"app"}))) == []
