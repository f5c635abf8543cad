"""Optional dependencies, asked for by name.

The core installs with what it imports at the top of its modules (``pyproject.toml``'s
``dependencies``; ``tests/test_dependencies.py`` checks that the two agree). Everything else
belongs to an extra and is imported through :func:`require` where it is used, so a missing
package stops the run with one line that names the extra to install, instead of an
``ImportError`` traceback from deep inside a cycle.
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from active_learning.errors import ConfigError

DISTRIBUTION = "active-learning-cv"

# Import name -> (the package pip installs, the extra of pyproject.toml that brings it).
EXTRAS: dict[str, tuple[str, str]] = {
    "pandas": ("pandas", "compare"),
    "scipy": ("scipy", "strategies"),
    "sklearn": ("scikit-learn", "strategies"),
    "skimage": ("scikit-image", "superpixels"),
    "pycocotools": ("pycocotools", "labels"),
    "threadpoolctl": ("threadpoolctl", "report"),
    "timm": ("timm", "pose"),
    "huggingface_hub": ("huggingface_hub", "pose"),
    "torchvision": ("torchvision", "vision"),   # (the report extra has it too)
    "cv2": ("opencv-python-headless", "pose"),
    "yaml": ("PyYAML", "pose"),
}


class MissingDependency(ConfigError):
    """An optional package that this use of the toolkit needs is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (``"sklearn.cluster"``) or raise :class:`MissingDependency` naming the
    package and the extra that installs it, and ``purpose`` (what needed it)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        root = module.split(".")[0]
        if error.name is None or error.name.split(".")[0] != root:
            raise   # the package is there but one of *its* imports is missing: not ours to say
        raise missing_dependency(root, purpose) from None


def check_installed(module: str, purpose: str) -> None:
    """:class:`MissingDependency` now, without importing, when ``module``'s package is not
    installed: for a run that would need it only after training (a strategy's choice)."""
    root = module.split(".")[0]
    if importlib.util.find_spec(root) is None:
        raise missing_dependency(root, purpose)


def missing_dependency(root: str, purpose: str) -> MissingDependency:
    """The one message for a missing package ``root`` (an import name)."""
    package, extra = EXTRAS.get(root, (root, "all"))
    return MissingDependency(f"{purpose} needs {package}, which is not installed: pip install "
                             f"'{DISTRIBUTION}[{extra}]' (or pip install {package})")
