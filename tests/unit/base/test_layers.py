"""The core's layers (CONTRIBUTING.md, "Where things live"): each imports only the layers below it, and modules
import one another without a circle, so each can be read, and tested, after what it imports.

For the layers every import counts, one made inside a function too (it is a dependency all the same). For
circles, imports at a module's top level count, those for annotations only (``if TYPE_CHECKING``) too; an
import inside a function, made where it is needed, does not."""

from __future__ import annotations

import ast
from pathlib import Path

import asdbench

PACKAGE = Path(asdbench.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, modules: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return ({node.module} | {f"{node.module}.{a.name}" for a in node.names}) & modules
    return set()


def _top_level_imports(tree: ast.Module, modules: set[str]) -> set[str]:
    found: set[str] = set()
    nodes = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If):  # if TYPE_CHECKING: and version switches
            nodes += node.body + node.orelse
        elif isinstance(node, ast.Try):
            nodes += node.body + [n for h in node.handlers for n in h.body] + node.orelse + node.finalbody
        else:
            found |= _imported(node, modules)
    return found


def import_graph(everywhere: bool = False) -> dict[str, set[str]]:
    """Each core module's imports of other core modules: at its top level, or ``everywhere`` in it."""
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph = {}
    for path in paths:
        tree = ast.parse(path.read_text())
        found = set().union(*map(lambda n: _imported(n, modules), ast.walk(tree))) if everywhere else \
            _top_level_imports(tree, modules)
        graph[_module_name(path)] = found - {_module_name(path)}
    return graph


# What each layer may import besides itself. The base is the modules at the top of the package and ``api``.
BELOW = {
    "base": set(),
    "tracking": {"base"},
    "data": {"base"},
    "evaluation": {"base", "data"},
    "serving": {"base", "data", "evaluation", "tracking"},
    "report": {"base", "data", "evaluation", "tracking"},
    "training": {"base", "data", "evaluation", "tracking", "serving", "report"},
    "scale": {"base", "data", "evaluation", "tracking", "serving", "report", "training"},
    "cli": {"base", "data", "evaluation", "tracking", "serving", "report", "training", "scale"},
}
# The front door's documented name (asdbench.load_model) loads the served model on first use.
EXCEPTIONS = {("asdbench", "asdbench.serving.model")}


def layer(module: str) -> str:
    if module == "asdbench.__main__":  # python -m asdbench: the command line
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in BELOW else "base"


def forbidden(graph: dict[str, set[str]]) -> list[str]:
    """``module (layer) -> imported (layer)`` for every import the layers forbid."""
    return sorted(f"{name} ({layer(name)}) -> {other} ({layer(other)})" for name, imports in graph.items()
                  for other in imports
                  if layer(other) != layer(name) and layer(other) not in BELOW[layer(name)]
                  and (name, other) not in EXCEPTIONS)


def test_each_layer_imports_only_the_layers_below_it():
    graph = import_graph(everywhere=True)
    assert {layer(m) for m in graph} == set(BELOW)  # every layer is a package, every package a layer
    assert "asdbench.serving.model" in graph["asdbench.serving.tracked_eval"]  # the graph sees real imports
    assert forbidden(graph) == []
    assert not any(other.startswith("asdbench.training") for other in set().union(
        *(imports for name, imports in graph.items() if layer(name) in ("serving", "report"))))


def test_a_forbidden_import_is_found():
    graph = {"asdbench.serving.model": {"asdbench.training.loop", "asdbench.data.examples"},
             "asdbench.data.plan": {"asdbench.config"}, "asdbench.audio": {"asdbench.data.plan"}}
    assert forbidden(graph) == ["asdbench.audio (base) -> asdbench.data.plan (data)",
                                "asdbench.serving.model (serving) -> asdbench.training.loop (training)"]


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name], path[len(path):] = 1, [name]
        for other in sorted(graph.get(name, ())):
            if state.get(other) == 1:
                return path[path.index(other):] + [other]
            if other not in state and (found := visit(other)):
                return found
        state[name] = 2
        path.pop()
        return None

    for name in sorted(graph):
        if name not in state and (found := visit(name)):
            return found
    return None


def test_the_core_imports_without_a_circle():
    graph = import_graph()
    assert "asdbench.registry" in graph["asdbench.config"]  # the graph sees real imports
    assert _circle(graph) is None, " -> ".join(_circle(graph))


def test_a_circle_is_found():
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_contributings_layout_table_names_every_module_of_each_layer():
    """The table of CONTRIBUTING.md ("Where things live") matches the tree: each layer's row names each of its
    modules, so a module added without a word there fails here."""
    text = (PACKAGE.parent / "CONTRIBUTING.md").read_text()
    table = text[text.index("## Where things live"):].split("\n\n")[2]
    rows = {cells[1].strip(): cells[3] for cells in (line.split("|") for line in table.splitlines()[2:])}
    assert set(rows) == set(BELOW)
    packages = {"asdbench", "asdbench.__main__", *(f"asdbench.{name}" for name in BELOW)}
    for module in sorted(set(import_graph()) - packages):
        if not module.startswith("asdbench.api"):
            assert f"`{module.split('.')[-1]}`" in rows[layer(module)], f"{module} is not in its layer's row"
