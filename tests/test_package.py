"""The package's shape: no import cycles, modules of a readable size, one task registry."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "textrnn"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, package: str, module: str) -> set:
    """Package modules a module imports anywhere, inside functions too (not under ``if TYPE_CHECKING``)."""
    found, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y / from . import x
                names = [f"{base}"] if base else [alias.name for alias in node.names]
                found.update(n.split(".")[0] for n in names)
            elif base.startswith(package + "."):
                found.add(base.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith(package + "."))
        stack.extend(ast.iter_child_nodes(node))
    return found - {module, "__init__"}


def import_graph(folder: Path) -> dict:
    package = folder.name
    return {path.stem: _imports(ast.parse(path.read_text()), package, path.stem) for path in folder.glob("*.py")
            if path.stem != "__init__"}


def find_cycle(graph: dict) -> list:
    """One import cycle as a list of modules, or [] when there is none."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_textrnn_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert {"model", "checkpoint", "registry", "generation"} <= graph.keys()
    assert find_cycle(graph) == []


def test_the_cycle_check_finds_a_cycle_through_a_function_import(tmp_path):
    planted = tmp_path / "pkg"
    planted.mkdir()
    (planted / "a.py").write_text("from .b import thing\n")
    (planted / "b.py").write_text("def thing():\n    from .c import other\n")
    (planted / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import thing\n"
                                  "def other():\n    from pkg.a import x\n")
    assert find_cycle(import_graph(planted)) == ["a", "b", "c", "a"]
    (planted / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n")
    assert find_cycle(import_graph(planted)) == []  # annotations only: no cycle at run time


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_modules_stay_readable(path):
    assert len(path.read_text().splitlines()) <= 400


def test_the_task_string_is_dispatched_on_in_the_registry_only():
    # comparisons with a task name literal ("classification" == ..., in (...)) outside registry.py
    offenders = []
    for path in PACKAGE.glob("*.py"):
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                literals = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if any(value in ("classification", "language_model") for value in literals):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
