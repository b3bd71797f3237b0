"""The package's shape, read from its source: one-way layers, no import cycle, readable modules.

Every import counts: at module level, inside functions, and under ``if TYPE_CHECKING``. An
annotation-only import still couples two modules (a reader must open both to follow one),
which is what the layers are there to prevent.
"""

import ast
from pathlib import Path
from typing import Any

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "textrnn"

# core <- data <- models <- training, serving <- cli: a module imports its own layer or one below.
# training and serving are peers: neither imports the other.
LAYERS = {"core": 0, "data": 1, "models": 2, "training": 3, "serving": 3, "cli": 4, "__main__": 5}


def module_names(folder: Path) -> dict:
    """Dotted module name (relative to the package, ``models.encoder``; a package is its folder name) -> path."""
    names = {}
    for path in folder.rglob("*.py"):
        parts = list(path.relative_to(folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _resolve(node: ast.ImportFrom, module: str, is_package: bool, package: str, known: set) -> list:
    if node.level:
        base = module.split(".") if module else []
        base = base if is_package else base[:-1]
        base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
        prefix = ".".join(base + ([node.module] if node.module else []))
    elif node.module and (node.module == package or node.module.startswith(package + ".")):
        prefix = node.module[len(package) + 1:]
    else:
        return []
    found = []
    for alias in node.names:  # `from . import x` names a module when x is one
        child = f"{prefix}.{alias.name}" if prefix else alias.name
        found.append(child if child in known else prefix)
    return found


def imports_of(path: Path, module: str, package: str, known: set) -> set:
    """Modules of the package that ``module`` imports anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.update(_resolve(node, module, path.name == "__init__.py", package, known))
        elif isinstance(node, ast.Import):
            found.update(a.name[len(package) + 1:] for a in node.names if a.name.startswith(package + "."))
    return {name for name in found if name in known} - {module, ""}


def import_graph(folder: Path) -> dict:
    names = module_names(folder)
    return {name: imports_of(path, name, folder.name, set(names)) for name, path in names.items() if name}


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


def layer_violations(graph: dict) -> list:
    """Each import that goes up a layer, sideways between peer layers, or leaves a module with no layer."""
    bad = []
    for module, targets in sorted(graph.items()):
        top = module.split(".")[0]
        if top not in LAYERS:
            bad.append(f"{module}: in no layer (put it in one of {', '.join(LAYERS)})")
            continue
        for target in sorted(targets):
            other = target.split(".")[0]
            if other not in LAYERS:
                bad.append(f"{module} -> {target}: the target is in no layer")
            elif LAYERS[other] > LAYERS[top] or (LAYERS[other] == LAYERS[top] and other != top):
                bad.append(f"{module} -> {target}: imports upward or sideways")
    return bad


def test_textrnn_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert {"models.language_model", "models.generation", "models.encoder"} <= graph.keys()
    assert find_cycle(graph) == []


def test_imports_run_one_way_between_the_layers():
    assert layer_violations(import_graph(PACKAGE)) == []


def test_every_folder_says_what_lives_there():
    for folder in [p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()]:
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc and 1 <= len(doc.splitlines()) <= 3, folder.name


def test_the_cycle_check_counts_function_and_type_checking_imports(tmp_path):
    planted = tmp_path / "pkg"
    (planted / "sub").mkdir(parents=True)
    (planted / "__init__.py").write_text("")
    (planted / "sub" / "__init__.py").write_text("")
    (planted / "a.py").write_text("from .sub.b import thing\n")
    (planted / "sub" / "b.py").write_text("def thing():\n    from ..c import other\n")
    (planted / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    assert find_cycle(import_graph(planted)) == ["a", "sub.b", "c", "a"]
    (planted / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(planted)) == []


def test_the_layer_check_finds_an_upward_and_a_sideways_import(tmp_path):
    planted = tmp_path / "pkg"
    for name in ("core", "models", "training", "serving"):
        (planted / name).mkdir(parents=True)
        (planted / name / "__init__.py").write_text('"""A layer."""\n')
    (planted / "core" / "x.py").write_text("from ..models import m\n")
    (planted / "models" / "m.py").write_text("from ..core import x\n")
    (planted / "serving" / "s.py").write_text("from ..training.t import run\n")
    (planted / "training" / "t.py").write_text("from ..models.m import thing\n")
    (planted / "loose.py").write_text("")
    assert layer_violations(import_graph(planted)) == [
        "core.x -> models.m: imports upward or sideways", "loose: in no layer (put it in one of "
        + ", ".join(LAYERS) + ")", "serving.s -> training.t: imports upward or sideways"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_readable(path):
    assert len(path.read_text().splitlines()) <= 400


def test_the_tests_mirror_the_package():
    """Each module with code has tests/<layer>/test_<module>.py (modules of a few constants excepted)."""
    tests = Path(__file__).resolve().parent
    missing = []
    for name, path in module_names(PACKAGE).items():
        if "." not in name or path.name == "__init__.py":
            continue
        layer, stem = name.split(".")[0], name.split(".")[-1]
        if not (tests / layer / f"test_{stem}.py").exists():
            missing.append(name)
    assert missing == []


def test_the_task_string_is_dispatched_on_in_the_registries_only():
    # comparisons with a task name literal ("classification" == ..., in (...)) outside the registries
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                literals = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if any(value in ("classification", "language_model") for value in literals):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def module_nodes(folder: Path):
    """(module name, node) for every syntax node of every module under ``folder``."""
    for name, path in sorted(module_names(folder).items()):
        for node in ast.walk(ast.parse(path.read_text())):
            yield name, node


def private_imports(folder: Path) -> list:
    """Each ``from X import _name`` of the package's own modules: one module reaching into another's insides."""
    return [f"{name}: {alias.name}" for name, node in module_nodes(folder)
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(folder.name))
            for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]


def test_no_module_imports_another_modules_private_names(tmp_path):
    assert private_imports(PACKAGE) == []
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("from .b import _inside\n")
    (tmp_path / "pkg" / "b.py").write_text("_inside = 1\n")
    assert private_imports(tmp_path / "pkg") == ["a: _inside"]


def stderr_prints(folder: Path, allowed: tuple = ("cli",)) -> list:
    """Each ``print(..., file=sys.stderr)`` outside the CLI: messages go through ``logging`` (textrnn.core.logs)."""
    return [f"{name}:{node.lineno}" for name, node in module_nodes(folder)
            if name.split(".")[0] not in allowed and isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "print"
            and any(k.arg == "file" and ast.unparse(k.value) == "sys.stderr" for k in node.keywords)]


def test_nothing_outside_the_cli_prints_to_stderr(tmp_path):
    assert stderr_prints(PACKAGE) == []
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("import sys\n\nprint('note', file=sys.stderr)\n")
    assert stderr_prints(tmp_path / "pkg") == ["a:3"]


def log_parameters(folder: Path) -> list:
    """Each function taking a ``log`` parameter: notes go to the module's logger, not a callable passed down."""
    return [f"{name}.{node.name}" for name, node in module_nodes(folder)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(a.arg == "log" for a in [*node.args.args, *node.args.kwonlyargs])]


def test_no_function_takes_a_log_callable(tmp_path):
    assert log_parameters(PACKAGE) == []
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("def prepare(config, log=print):\n    log('note')\n")
    assert log_parameters(tmp_path / "pkg") == ["a.prepare"]


def untyped_models(objects: dict) -> list:
    """Each ``model`` parameter annotated ``Any`` in the public names' signatures (functions, and the methods of
    classes that do not start with ``_``): the model contract is ``TextModel`` (or ``nn.Module`` where DDP may wrap
    it), which mypy checks."""
    import inspect

    found = []
    for name, obj in objects.items():
        members = {name: obj} if inspect.isfunction(obj) else {
            f"{name}.{key}": value for key, value in vars(obj).items()
            if inspect.isfunction(value) and not key.startswith("_")} if inspect.isclass(obj) else {}
        for where, function in members.items():
            found += [f"{where}({parameter})" for parameter, kind in function.__annotations__.items()
                      if "model" in parameter and kind in ("Any", Any)]
    return found


def test_no_public_signature_types_a_model_as_any():
    import textrnn

    assert untyped_models({name: getattr(textrnn, name) for name in textrnn.__all__}) == []

    def planted(model: Any) -> None: ...

    assert untyped_models({"planted": planted}) == ["planted(model)"]


def models_typed_any(package: Path) -> list:
    """Every ``model`` parameter or ``self.model`` annotated ``Any`` or not at all in the package's source, private
    functions included: ``TextModel``, ``TextClassifier``, ``RNNLanguageModel`` or a Protocol of
    :mod:`textrnn.models.contract` (where the model classes call a module with themselves) say what a function
    needs of it, and mypy checks the calls."""
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            annotated = ([(a.arg, a.annotation) for a in node.args.args + node.args.kwonlyargs]
                         if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else
                         [(ast.unparse(node.target), node.annotation)] if isinstance(node, ast.AnnAssign) else [])
            found += [f"{where}:{name}" for name, annotation in annotated if name in ("model", "self.model")
                      and (annotation is None or ast.unparse(annotation) == "Any")]
    return found


def test_no_function_types_a_model_as_any_or_leaves_it_untyped(tmp_path):
    assert models_typed_any(PACKAGE) == []
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("class A:\n    def run(self, model: Any) -> None:\n"
                                           "        self.model: Any = model\n\n\ndef f(model):\n    pass\n")
    assert sorted(models_typed_any(tmp_path / "pkg")) == ["a.py:model", "a.py:model", "a.py:self.model"]
