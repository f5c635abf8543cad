"""The dependencies pyproject.toml declares are the ones the code uses: a package the core
imports directly is a mandatory dependency; any other goes through ``extras.require`` and
belongs to the extra ``extras.EXTRAS`` names."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from active_learning import extras
from active_learning.extras import EXTRAS, MissingDependency, require

tomllib = pytest.importorskip("tomllib")   # Python 3.11+: the project's machines
ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Distribution -> import name, where the two differ.
IMPORT_NAMES = {"pillow": "PIL", "scikit-learn": "sklearn", "scikit-image": "skimage",
                "pyyaml": "yaml", "opencv-python-headless": "cv2"}


def _package(requirement: str) -> str:
    return re.split(r"[<>=!\[ ;]", requirement, maxsplit=1)[0].strip().lower()


def _extra_packages(extra: str) -> set[str]:
    """The distributions an extra installs, its own extras resolved."""
    found = set()
    for requirement in PYPROJECT["optional-dependencies"][extra]:
        nested = re.fullmatch(r"active-learning-cv\[(.+)\]", requirement)
        if nested:
            for name in nested.group(1).split(","):
                found |= _extra_packages(name.strip())
        else:
            found.add(_package(requirement))
    return found


def _mandatory_imports() -> set[str]:
    return {IMPORT_NAMES.get(name, name) for name in map(_package, PYPROJECT["dependencies"])}


def _direct_imports() -> dict[str, list[str]]:
    """Third-party packages the core imports with an import statement -> where."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "active_learning").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        never_run = {id(inner) for node in ast.walk(tree)
                     if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                     for child in node.body for inner in ast.walk(child)}
        for node in ast.walk(tree):
            if id(node) in never_run:   # under `if TYPE_CHECKING:`: type hints, never imported
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if root not in sys.stdlib_module_names and root not in ("active_learning",
                                                                         "__future__"):
                    found.setdefault(root, []).append(
                        f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_core_imports_directly_only_its_mandatory_dependencies():
    direct = _direct_imports()
    optional = {name: places for name, places in direct.items()
                if name not in _mandatory_imports()}
    assert not optional, ("import these through active_learning.extras.require (or make them "
                          f"mandatory in pyproject.toml): {optional}")
    assert _mandatory_imports() <= set(direct), "a mandatory dependency the core never imports"


def test_every_extra_named_to_the_user_installs_its_package():
    for module, (package, extra) in EXTRAS.items():
        assert package.lower() in _extra_packages(extra), (module, extra)
        assert package.lower() in _extra_packages("all"), module


def test_require_names_the_extra_of_a_missing_package(monkeypatch):
    # What an uninstalled package looks like (its submodule too: another test may have imported
    # it already, and the import system finds a cached submodule first).
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    with pytest.raises(MissingDependency) as caught:
        require("sklearn.cluster", "TypiClust's k-means")
    assert str(caught.value) == ("TypiClust's k-means needs scikit-learn, which is not "
                                 "installed: pip install 'active-learning-cv[strategies]' (or "
                                 "pip install scikit-learn)")


def test_require_returns_the_module():
    import numpy.linalg

    assert require("numpy.linalg", "a test") is numpy.linalg


def test_a_package_missing_its_own_dependency_keeps_its_traceback(tmp_path, monkeypatch):
    (tmp_path / "broken_package").mkdir()
    (tmp_path / "broken_package" / "__init__.py").write_text("import not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="not_installed_anywhere"):
        require("broken_package", "a test")
    assert extras.DISTRIBUTION == PYPROJECT["name"]

