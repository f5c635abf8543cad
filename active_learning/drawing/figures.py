"""Matplotlib figures of image panels, and writing a figure as a PNG."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from active_learning.files.atomic import atomic_open


def image_grid(count: int, cell: tuple[float, float], columns: int = 3) -> tuple[Any, Any]:
    """A figure of ``count`` image panels, at most ``columns`` per row, axes off:
    (figure, axes [count+])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(columns, max(1, count))
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(cell[0] * columns, cell[1] * rows),
                                squeeze=False, dpi=100)
    for axis in axes.ravel():
        axis.axis("off")
    return figure, axes.ravel()


def save_figure(figure: Any, path: str | os.PathLike, *,
                metadata: Mapping[str, str] | None = None) -> None:
    """Write ``figure`` as a PNG atomically, then close it; ``metadata``: PNG text entries."""
    import matplotlib.pyplot as plt

    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", bbox_inches="tight",
                       metadata=dict(metadata) if metadata else None)
    plt.close(figure)
