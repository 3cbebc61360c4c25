"""ganzoo's internal imports point one way (DESIGN.md, "Layers"): no module imports, directly or through others, a
module that imports it back, whether the import runs when the module loads or later, inside a function.

The graph is read from the source's syntax tree, not from `sys.modules`, so a lazy import counts the same as one at
the top of a file; imports under `if TYPE_CHECKING:` never run and are left out. Public names that `ganzoo` loads
on first use (`ganzoo._LAZY`, e.g. `ganzoo.load` -> `ganzoo.api`) count as imports of the module behind them, and so
does `importlib.import_module` with a literal module name.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import ganzoo

PACKAGE_ROOT = Path(ganzoo.__file__).resolve().parent


@dataclass(frozen=True)
class Edge:
    """`source` imports `target` at `line`; `lazy` when the import runs inside a function, not at load time."""

    source: str
    target: str
    line: int
    lazy: bool

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line}{', in a function' if self.lazy else ''})"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package in `root`, by dotted name (a package by its `__init__.py`)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


class _Imports(ast.NodeVisitor):
    """Collects one module's imports of modules in `modules`, noting whether each runs inside a function."""

    def __init__(self, name: str, is_package: bool, modules: set[str], lazy_names: dict[str, str]) -> None:
        self.name = name
        self.package = name if is_package else name.rpartition(".")[0]
        self.root = name.split(".")[0]
        self.modules = modules
        self.lazy_names = lazy_names  # attribute of the root package -> the module that defines it
        self.depth = 0  # functions we are inside
        self.edges: list[Edge] = []

    def _add(self, target: str, node: ast.AST) -> None:
        if target not in self.modules or target == self.name or target in _ancestors(self.name):
            return  # a package this module is inside is imported before the module itself
        self.edges.append(Edge(self.name, target, node.lineno, self.depth > 0))
        # importing a.b.c runs a/__init__ and a/b/__init__ first, except packages this module is already inside
        for parent in _ancestors(target):
            if parent in self.modules and parent != self.name and parent not in _ancestors(self.name):
                self.edges.append(Edge(self.name, parent, node.lineno, self.depth > 0))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        # decorators and default values run when the function is defined; the body runs when it is called
        for outer in [*getattr(node, "decorator_list", []), *node.args.defaults, *filter(None, node.args.kw_defaults)]:
            self.visit(outer)
        self.depth += 1
        for inner in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(inner)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):  # never runs; its `else:` does
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[:len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            if submodule in self.modules:
                self._add(submodule, node)
            elif source == self.root and alias.name in self.lazy_names:
                self._add(self.lazy_names[alias.name], node)
            elif source in _ancestors(self.name):  # a name from a package this module is inside: runs its init
                self.edges.append(Edge(self.name, source, node.lineno, self.depth > 0))
        if source not in _ancestors(self.name):
            self._add(source, node)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("pkg.mod") and __import__("pkg.mod") with a literal name
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self._add(node.args[0].value, node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        # `import ganzoo; ganzoo.load(...)` imports ganzoo.api when it runs
        if isinstance(node.value, ast.Name) and node.value.id == self.root and node.attr in self.lazy_names:
            self._add(self.lazy_names[node.attr], node)
        self.generic_visit(node)


def import_graph(root: Path, package: str, lazy_names: dict[str, str] | None = None) -> list[Edge]:
    """Every import between the modules of the package in `root`, read from their syntax trees."""
    files = module_files(root, package)
    edges = []
    for name, path in files.items():
        visitor = _Imports(name, path.name == "__init__.py", set(files), lazy_names or {})
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        edges.extend(visitor.edges)
    return edges


def cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One shortest cycle through each group of modules that import each other (a strongly connected component).

    Tarjan's algorithm finds the groups; a breadth-first search from the group's first module finds its cycle.
    """
    graph: dict[str, list[Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, []).append(edge)
        graph.setdefault(edge.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph[node]:
            if edge.target not in index:
                connect(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    found = []
    for group in sorted(groups):
        members, start = set(group), group[0]
        came_by: dict[str, Edge] = {}
        frontier, closing = [start], None
        while frontier and closing is None:
            following = []
            for node in frontier:
                for edge in graph[node]:
                    if edge.target == start:
                        closing = edge
                        break
                    if edge.target in members and edge.target not in came_by:
                        came_by[edge.target] = edge
                        following.append(edge.target)
                if closing is not None:
                    break
            frontier = following
        path = [closing]
        while path[0].source != start:
            path.insert(0, came_by[path[0].source])
        found.append(path)
    return found


def describe(found: list[list[Edge]]) -> str:
    return "\n\n".join("\n".join(f"  {edge}" for edge in cycle) for cycle in found)


# ---------------------------------------------------------------------------------------------------------------------
# ganzoo itself


@pytest.fixture(scope="module")
def graph() -> list[Edge]:
    return import_graph(PACKAGE_ROOT, "ganzoo", dict(ganzoo._LAZY))


def test_no_import_cycles(graph):
    found = cycles(graph)
    assert not found, f"ganzoo's imports have {len(found)} cycle(s):\n{describe(found)}"


def test_the_graph_sees_ganzoo_imports(graph):
    """The graph is not empty by accident: imports known to exist are in it, each with its kind."""
    pairs = {(e.source, e.target, e.lazy) for e in graph}
    assert ("ganzoo.trainer.loop", "ganzoo.model", False) in pairs  # from ganzoo.model import GANModel
    assert ("ganzoo.metrics.ladder", "ganzoo.metrics.evaluation", False) in pairs
    assert ("ganzoo.cli", "ganzoo.hub", True) in pairs  # inside the push command
    assert ("ganzoo.testing", "ganzoo.api", True) in pairs  # ganzoo.create(...): a lazy public name
    # `if TYPE_CHECKING:` imports are left out: the card only names GANModel in annotations
    assert not any(e.source == "ganzoo.card" and e.target == "ganzoo.model" for e in graph)
    assert len({e.source for e in graph}) >= 25


# ---------------------------------------------------------------------------------------------------------------------
# the graph and cycle finder on a package made for the purpose


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_a_lazy_import_back_up_is_a_cycle(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "low.py": """
            def late():
                from pkg.high import thing
                return thing
            """,
        "high.py": "from pkg import low\nthing = 1\n",
        "side.py": """
            import importlib
            def default(module=importlib.import_module("pkg.low")):
                return module
            """,
    })
    edges = import_graph(root, "pkg")
    assert ("pkg.side", "pkg.low", False) in {(e.source, e.target, e.lazy) for e in edges}  # a default runs at once
    found = cycles(edges)
    assert [[(e.source, e.target, e.lazy) for e in cycle] for cycle in found] == [
        [("pkg.high", "pkg.low", False), ("pkg.low", "pkg.high", True)]]
    assert "pkg.low -> pkg.high (line 3, in a function)" in describe(found)


def test_type_checking_imports_and_one_way_imports_are_no_cycle(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "low.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg.high import thing
            """,
        "high.py": "import pkg.low\nfrom . import low as again\n",
    })
    edges = import_graph(root, "pkg")
    assert {(e.source, e.target) for e in edges} == {("pkg.high", "pkg.low")}
    assert cycles(edges) == []


def test_a_cycle_through_a_package_init_and_a_lazy_public_name(tmp_path):
    """`from pkg.sub.b import x` runs `pkg/sub/__init__.py`, which imports `a`; `a` reaches `b` through the
    root package's lazily loaded name `pkg.helper`."""
    root = _package(tmp_path, {
        "__init__.py": "",
        "sub/__init__.py": "from pkg.sub.a import y\n",
        "sub/a.py": "import pkg\ny = 1\ndef f():\n    return pkg.helper\n",
        "sub/b.py": "x = 2\n",
        "user.py": "from pkg.sub.b import x\n",
        "api.py": "from pkg.user import x\nhelper = x\n",
    })
    found = cycles(import_graph(root, "pkg", {"helper": "pkg.api"}))
    assert len(found) == 1
    assert {e.source for e in found[0]} == {"pkg.api", "pkg.user", "pkg.sub", "pkg.sub.a"}


def test_import_module_with_a_literal_name_is_an_import(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "",
        "low.py": "import importlib\ndef late():\n    return importlib.import_module('pkg.high').x\n",
        "high.py": "from pkg.low import late\nx = 1\n",
    })
    found = cycles(import_graph(root, "pkg"))
    assert [[(e.source, e.target, e.lazy) for e in cycle] for cycle in found] == [
        [("pkg.high", "pkg.low", False), ("pkg.low", "pkg.high", True)]]
