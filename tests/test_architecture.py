"""The core's structure, read from its source: it names no task, compares no strategy name
outside the registry, has no import circle, and each task's ``train.py`` stays short.

Function-level imports count (a circle through a lazy import is still a circle); imports under
``if TYPE_CHECKING:`` do not (they never run). Importing ``a.b.c`` imports ``a.b`` and ``a``
first, so a package's ``__init__`` is an edge too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from active_learning.strategies import list_strategies

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "active_learning"
TASK_FOLDERS = ("classification", "segmentation", "object_detection", "human_pose_estimation")
# A file format's field that shares a task's name is not a task name: COCO's annotation key.
FORMAT_FIELDS = {"segmentation"}
TRAIN_SCRIPT_LINES = 160


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(CORE.rglob("*.py"))}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Every node under an ``if TYPE_CHECKING:`` block."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(inner) for inner in ast.walk(child))
    return skipped


def _format_field_uses(tree: ast.AST) -> set[int]:
    """String constants used as a mapping's key: ``note["segmentation"]``, ``.get("...")``,
    ``{"segmentation": ...}``."""
    keys: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            keys.add(id(node.slice))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("get", "pop", "setdefault") and node.args
              and isinstance(node.args[0], ast.Constant)):
            keys.add(id(node.args[0]))
        elif isinstance(node, ast.Dict):
            keys.update(id(key) for key in node.keys if isinstance(key, ast.Constant))
    return keys


def _imports(module: str, path: Path, tree: ast.AST) -> set[str]:
    """The core modules ``module`` imports, with the packages each import runs first."""
    skipped = _type_checking_nodes(tree)
    targets: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets.add(target)
            targets.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
    found = set()
    for target in targets:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name in MODULES and name != module and not module.startswith(name + "."):
                found.add(name)
    # A module inside a package runs its package's __init__ first, so that edge alone is no
    # circle; but ``from <its package> import Name`` reads a name that __init__ defines: a real
    # dependency on it, which closes a circle when __init__ imports the module back.
    for node in ast.walk(tree):
        if (id(node) not in skipped and isinstance(node, ast.ImportFrom) and node.module
                and not node.level and module.startswith(node.module + ".")
                and node.module in MODULES and node.module != "active_learning"
                and any(f"{node.module}.{alias.name}" not in MODULES for alias in node.names)):
            found.add(node.module)
    return found


def _parsed() -> dict[str, ast.AST]:
    return {module: ast.parse(path.read_text(encoding="utf-8")) for module, path in MODULES.items()}


def test_the_core_names_no_task():
    found = []
    for module, tree in _parsed().items():
        ignored = _docstrings(tree)
        keys = _format_field_uses(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and node.value in TASK_FOLDERS
                    and id(node) not in ignored
                    and not (node.value in FORMAT_FIELDS and id(node) in keys)):
                found.append(f"{MODULES[module].relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, "the core names tasks:\n" + "\n".join(found)


def test_no_strategy_name_compared_outside_the_registry():
    names = set(list_strategies())
    found = []
    for module, tree in _parsed().items():
        if module.startswith("active_learning.strategies"):
            continue
        # a module's own constant that holds a strategy's name (RANDOM = "random") compares
        # with that name wherever it is used
        aliases = {target.id for node in getattr(tree, "body", [])
                   if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                   and node.value.value in names
                   for target in node.targets if isinstance(target, ast.Name)}
        for node in ast.walk(tree):
            constants: list[ast.expr] = []
            if isinstance(node, ast.Compare):
                constants = [node.left, *node.comparators]
                found += [f"{MODULES[module].relative_to(ROOT)}:{node.lineno} {side.id}"
                          for side in constants
                          if isinstance(side, ast.Name) and side.id in aliases]
            elif (isinstance(node, ast.Call)
                  and getattr(node.func, "id", getattr(node.func, "attr", None)) == "get_strategy"):
                constants = list(node.args)
            for constant in constants:
                if isinstance(constant, ast.Constant) and constant.value in names:
                    found.append(f"{MODULES[module].relative_to(ROOT)}:{node.lineno} "
                                 f"{constant.value!r}")
    assert not found, "strategy names outside the registry:\n" + "\n".join(found)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_circle_finder_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_the_core():
    graph = {module: _imports(module, MODULES[module], tree) for module, tree in _parsed().items()}
    circles = _circles(graph)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


# The layers, lowest first: a module may import its own layer and those below, never above.
# (What the command line and the rounds assemble sits on top; the loop computes and writes files,
# the reports read them.)
LAYERS = (
    ("active_learning.errors", "active_learning.extras", "active_learning.flags",
     "active_learning.console", "active_learning.precision", "active_learning.distributed",
     "active_learning.files", "active_learning.labels", "active_learning.drawing"),
    ("active_learning.strategies",),
    ("active_learning.loop", "active_learning.adapter"),
    ("active_learning.reports",),
    ("active_learning.rounds", "active_learning.arguments", "active_learning.run_setup",
     "active_learning.cli", "active_learning"),
)


def _layer(module: str) -> int:
    matches = [(len(prefix), level) for level, prefixes in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer of tests/test_architecture.py"
    return max(matches)[1]


def test_no_module_imports_from_a_layer_above_its_own():
    found = []
    for module, tree in _parsed().items():
        for target in _imports(module, MODULES[module], tree):
            if target != "active_learning" and _layer(target) > _layer(module):
                found.append(f"{module} -> {target}")
    assert not found, "upward imports:\n" + "\n".join(sorted(found))


@pytest.mark.parametrize("task", TASK_FOLDERS)
def test_train_script_holds_only_the_tasks_own_flags(task):
    lines = (ROOT / task / "train.py").read_text(encoding="utf-8").count("\n")
    assert lines <= TRAIN_SCRIPT_LINES, f"{task}/train.py has {lines} lines"
