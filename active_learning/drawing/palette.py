"""The colours of class indices, shared by every picture that colours classes."""
from __future__ import annotations

import numpy as np

Colour = tuple[int, int, int] | str       # RGB 0..255, or a name PIL knows ("lime", "#ff0000")


def palette(count: int) -> list[tuple[int, int, int]]:
    """``count`` RGB colours: tab20's ten strong ones, then its ten light ones, repeated past 20
    (tab20 in its own order pairs each colour with its light twin, hard to tell apart)."""
    import matplotlib

    table = matplotlib.colormaps["tab20"](np.arange(20))          # RGBA [20, 4]
    colours = list(table[0::2]) + list(table[1::2])
    result = []
    for i in range(max(count, 0)):
        red, green, blue = (int(round(255 * channel)) for channel in colours[i % len(colours)][:3])
        result.append((red, green, blue))
    return result
