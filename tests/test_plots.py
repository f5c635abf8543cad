"""Learning-curve figures: one panel per run, a second panel against the baseline in comparisons."""
from __future__ import annotations

import numpy as np
from PIL import Image

from active_learning.drawing.curves import _line_styles, mean_std_curve, plot_learning_curve


def _rows(values):
    return [{"n_labeled": 10 * (i + 1), "accuracy": value} for i, value in enumerate(values)]


def test_mean_std_curve_uses_label_counts_shared_by_every_run():
    counts, mean, std = mean_std_curve([_rows([0.5, 0.7, 0.9]), _rows([0.7, 0.9])], "accuracy")
    np.testing.assert_array_equal(counts, [10, 20])
    np.testing.assert_allclose(mean, [0.6, 0.8])
    np.testing.assert_allclose(std, [0.1, 0.1])  # population std of two values 0.1 apart from the mean


def test_a_baseline_adds_a_panel_of_differences(tmp_path):
    curves = {"random": [_rows([0.5, 0.6]), _rows([0.5, 0.7])], "entropy": _rows([0.5, 0.8])}
    plot_learning_curve(curves, tmp_path / "plain.png")
    plot_learning_curve(curves, tmp_path / "with_baseline.png", baseline="random")
    plain = Image.open(tmp_path / "plain.png").size
    with_baseline = Image.open(tmp_path / "with_baseline.png").size
    assert plain == (768, 504)                 # 6.4 x 4.2 inches at 120 dpi
    assert with_baseline == (768, 792)         # a second panel below: 6.6 inches high
    plot_learning_curve(curves, tmp_path / "unknown.png", baseline="nope")  # no such label: one panel
    assert Image.open(tmp_path / "unknown.png").size == plain


def test_a_dozen_strategies_get_distinct_line_styles():
    styles = _line_styles(13)
    assert len({(style["color"], style["linestyle"]) for style in styles}) == 13


def test_on_a_cost_axis_the_difference_panel_reads_the_baseline_between_its_points(tmp_path,
                                                                                 monkeypatch):
    from matplotlib.axes import Axes

    drawn = []
    original = Axes.plot

    def record(self, *args, **kwargs):
        drawn.append((self, [np.asarray(a, dtype=float) for a in args[:2]]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", record)
    # random's clicks: 100, 300; the other arm's: 100, 200, 400 (past random's last point)
    def rows(points):
        return [{"cycle": cycle, "n_clicks": clicks, "mIoU": value}
                for cycle, (clicks, value) in enumerate(points)]

    curves = {"random": rows([(100, 0.2), (300, 0.4)]),
              "regions": rows([(100, 0.25), (200, 0.25), (400, 0.5)])}
    plot_learning_curve(curves, tmp_path / "gain.png", metric="mIoU", x="n_clicks", baseline="random")
    gain_axes = drawn[-1][0]
    x, gain = drawn[-1][1]
    assert gain_axes is not drawn[0][0]                    # the lower panel
    np.testing.assert_allclose(x, [100, 200])              # 400 lies past random's curve
    np.testing.assert_allclose(gain, [0.25 - 0.2, 0.25 - 0.3])   # random at 200: 0.3, interpolated
