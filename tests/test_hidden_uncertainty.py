"""Hidden uncertainty: class-conditional densities of the hidden features, and the labeled rows.

The densities are checked against scikit-learn's ``GaussianMixture.score_samples`` on the same
features, fitted and combined here step by step as hidden_uncertainty_active_learning does
(L2-normalised rows, one full-covariance component per class with two rows or more, priors from
the class frequencies, log-sum-exp): a version without the normalisation, with uniform priors, with
the one-row classes or with the max over classes instead of the sum fails.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import normalize

from active_learning import choose_new_labeled_indices, get_strategy
from active_learning.strategies.hidden_uncertainty import (
    fit_class_conditional,
    hidden_uncertainty_scores,
)
from active_learning.strategies.labeled import ClassSample, LabeledFeatures, hidden_rows


def _labeled(seed=0, dim=4, counts=(30, 12, 1, 0), scale=1.0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    means = rng.normal(size=(len(counts), dim)) * 3
    features = means[labels] + rng.normal(size=(len(labels), dim)) * scale
    return LabeledFeatures(features.astype(np.float32), labels, labels.copy(),
                           np.asarray(counts, dtype=np.int64))


def _expected_uncertainty(labeled, rows):
    """The reference's computation, step by step, with scikit-learn."""
    x = normalize(labeled.features.astype(np.float64))
    q = normalize(np.asarray(rows, dtype=np.float64))
    priors = labeled.class_counts / labeled.class_counts.sum()
    columns, weights = [], []
    for c in range(labeled.num_classes):
        if (labeled.labels == c).sum() > 1:
            mixture = GaussianMixture(n_components=1, covariance_type="full", random_state=0)
            columns.append(mixture.fit(x[labeled.labels == c]).score_samples(q))
            weights.append(priors[c])
    return -logsumexp(np.stack(columns, axis=1), b=np.array(weights), axis=1)


def test_densities_match_scikit_learn_score_samples():
    labeled = _labeled()
    rows = np.random.default_rng(9).normal(size=(25, 4)) * 3
    density = fit_class_conditional(labeled, seed=0)
    assert density.fitted_classes.tolist() == [0, 1]          # one row and none: no density
    got = hidden_uncertainty_scores({"hidden": torch.as_tensor(rows)}, density=density).numpy()
    np.testing.assert_allclose(got, _expected_uncertainty(labeled, rows), rtol=1e-10)


def test_class_priors_come_from_the_counts_before_sampling():
    # the same rows, but class 0 was sampled down from 300: its prior weighs 300, not 30
    labeled = _labeled()
    sampled = LabeledFeatures(labeled.features, labeled.labels, labeled.predicted,
                              np.array([300, 12, 1, 0]))
    rows = np.random.default_rng(3).normal(size=(10, 4)) * 3
    got = hidden_uncertainty_scores({"hidden": torch.as_tensor(rows)},
                                    density=fit_class_conditional(sampled)).numpy()
    np.testing.assert_allclose(got, _expected_uncertainty(sampled, rows), rtol=1e-10)
    plain = hidden_uncertainty_scores({"hidden": torch.as_tensor(rows)},
                                      density=fit_class_conditional(labeled)).numpy()
    assert not np.allclose(got, plain)


def test_per_pixel_scores_are_each_positions_uncertainty_reduced_per_image():
    labeled = _labeled(dim=3, counts=(40, 40))
    density = fit_class_conditional(labeled)
    maps = torch.as_tensor(np.random.default_rng(4).normal(size=(2, 3, 4, 5)))   # [B, D, h, w]
    rows = maps.permute(0, 2, 3, 1).reshape(-1, 3).numpy()
    per_row = _expected_uncertainty(labeled, rows).reshape(2, 20)
    inputs = {"hidden": maps}
    np.testing.assert_allclose(hidden_uncertainty_scores(inputs, "mean", density=density), per_row.mean(1),
                               rtol=1e-10)
    np.testing.assert_allclose(hidden_uncertainty_scores(inputs, "max", density=density), per_row.max(1),
                               rtol=1e-10)
    np.testing.assert_allclose(hidden_uncertainty_scores(inputs, "none", density=density),
                               per_row.reshape(2, 4, 5), rtol=1e-10)


def test_the_strategy_ranks_the_least_likely_features_first():
    labeled = _labeled(counts=(50, 50), scale=0.3)
    strategy = get_strategy("hidden_uncertainty")
    with pytest.raises(TypeError, match="fitted"):           # nothing to score with before fitting
        strategy.score({"hidden": torch.zeros(2, 4)})
    fitted = strategy.fitted(labeled, seed=0)
    typical = labeled.features[:3]                             # labeled rows: dense
    unseen = -typical * 5 + 7                                   # far from every class
    rows = torch.as_tensor(np.concatenate([typical, unseen]))
    indices, scores = choose_new_labeled_indices(fitted, np.arange(6) + 10, 3, inputs={"hidden": rows})
    assert sorted(indices.tolist()) == [13, 14, 15]
    assert get_strategy("hidden_uncertainty").fit_labeled is not None      # the registry's is unfitted


def test_a_labeled_set_with_no_class_of_two_rows_is_refused():
    with pytest.raises(ValueError, match="two labeled rows of one class"):
        fit_class_conditional(_labeled(counts=(1, 1, 0)))


# ----------------------------------------------------------------------------------------------
# the labeled rows: geometry and per-class sampling
# ----------------------------------------------------------------------------------------------
def test_hidden_rows_per_image():
    hidden = torch.arange(12.0).reshape(3, 4)
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    rows, labels, predicted = hidden_rows(hidden, torch.tensor([0, 0, 1]), probs)
    assert torch.equal(rows, hidden) and labels.tolist() == [0, 0, 1] and predicted.tolist() == [0, 1, 0]


def test_hidden_rows_of_a_coarse_map_read_each_cells_center_pixel_and_drop_ignored_labels():
    # a 2x2 hidden map over 8x8 images: cell (i, j) covers pixels 4i..4i+3; its center pixel is 4i+2
    hidden = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)   # [B, D, h, w]
    targets = torch.full((2, 8, 8), 255)
    probs = torch.zeros(2, 4, 8, 8)
    probs[:, 3] = 1.0                                      # predicted 3 everywhere ...
    for b, i, j, label in [(0, 0, 0, 1), (0, 1, 1, 2), (1, 0, 1, 0)]:
        targets[b, 4 * i + 2, 4 * j + 2] = label           # ... labels at the centers only
        targets[b, 4 * i, 4 * j] = 3                       # a corner pixel is not read
    probs[1, 3, 2, 6], probs[1, 1, 2, 6] = 0.0, 1.0        # predicted 1 at (1, 0, 1)'s center
    rows, labels, predicted = hidden_rows(hidden, targets, probs)
    assert labels.tolist() == [1, 2, 0] and predicted.tolist() == [3, 3, 1]
    expected = [hidden[0, :, 0, 0], hidden[0, :, 1, 1], hidden[1, :, 0, 1]]
    assert torch.equal(rows, torch.stack(expected))


def test_class_sample_keeps_a_uniform_sample_of_each_class_and_counts_them_all():
    rng = np.random.default_rng(0)
    sample = ClassSample(3, per_class=50, seed=1)
    ids = np.arange(1000)
    labels = np.where(ids < 900, 0, np.where(ids < 980, 1, 2))
    for start in range(0, 1000, 64):                        # batches of 64
        part = slice(start, start + 64)
        sample.add(ids[part, None].astype(np.float32), labels[part], labels[part])
    result = sample.result()
    assert result.class_counts.tolist() == [900, 80, 20]
    assert np.bincount(result.labels, minlength=3).tolist() == [50, 50, 20]
    kept = result.features[:, 0].astype(int)
    assert (labels[kept] == result.labels).all() and len(set(kept.tolist())) == 120
    # uniform within class 0: across seeds every row is kept 50/900 of the time
    hits = np.zeros(900)
    for seed in range(200):
        again = ClassSample(3, per_class=50, seed=seed)
        again.add(ids[:, None].astype(np.float32), labels, labels)
        got = again.result()
        hits[got.features[got.labels == 0, 0].astype(int)] += 1
    assert abs(hits[:450].mean() - hits[450:].mean()) < 0.15 * hits.mean()   # no favoured half
    del rng


def test_class_samples_of_shards_merge_into_one_sample():
    labels = np.repeat([0, 1], [70, 30])
    features = np.arange(100, dtype=np.float32)[:, None]
    parts = [ClassSample(2, per_class=20, seed=s) for s in range(3)]
    for part, rows in zip(parts, np.array_split(np.arange(100), 3)):
        part.add(features[rows], labels[rows], labels[rows])
    merged = parts[0].merge(parts[1:]).result()
    assert merged.class_counts.tolist() == [70, 30]
    assert np.bincount(merged.labels).tolist() == [20, 20]
    assert set(merged.features[merged.labels == 1, 0].astype(int)) <= set(range(70, 100))
