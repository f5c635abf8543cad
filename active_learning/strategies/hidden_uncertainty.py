"""Hidden uncertainty: a class-conditional density of the network's hidden features.

Postels et al., "The Hidden Uncertainty in a Neural Network's Activations" (2020), as used for
active learning by Fanconi's hidden_uncertainty_active_learning (``src/models/density_models.py``,
``ClassConditionalGMM``): after training, each class's hidden features on the labeled set get a
Gaussian mixture (one component, full covariance, scikit-learn's ``GaussianMixture``), the
features L2-normalised first (``normalize_features: True`` in every experiment of theirs). An
item's marginal density is ``p(x) = sum_c pi_c p(x | c)`` over the classes with more than one
labeled row, ``pi_c`` each class's share of the labeled rows (not renormalised over the fitted
classes, as theirs); its uncertainty is ``-log p(x)``: low density marks what the model has not
seen.

Classification: one row per labeled image, its penultimate features and its true class (theirs
also uses the true labels). Segmentation: one row per position of the hidden map (the
classifier's stride-8 logits, their DRN's ``features``), its true class the label of the pixel at
the cell's center; their segmentation code fits on the predicted classes instead. A candidate
image's score is the mean (``--reduction``) of its positions' uncertainties (theirs sums them:
the same order for images of one size).

Not reproduced: their training adds a reconstruction decoder (MIR) to the classification
network, so that the hidden features keep information about the input; here the densities are
fitted to the features of the task's own network as it is trained. Their remedies (a greedy
search over PCA dimensions, a k-nearest-neighbour density) are not part of this strategy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from active_learning.extras import require
from active_learning.strategies.labeled import LabeledFeatures
from active_learning.strategies.uncertainty import reduce_dense

HIDDEN = "hidden"   # the need (strategies.HIDDEN); repeated to avoid a circular import


@dataclass
class ClassConditionalDensity:
    """One Gaussian mixture per class with more than one labeled row, and the class priors.

    Attributes:
        mixtures: per class, a fitted ``GaussianMixture`` or None (one row or none).
        log_priors: float64 [C] log of each class's share of the labeled rows.
        normalize: rows are L2-normalised before the densities see them.
    """

    mixtures: list[Any]
    log_priors: np.ndarray
    normalize: bool = True

    @property
    def fitted_classes(self) -> np.ndarray:
        return np.array([c for c, mixture in enumerate(self.mixtures) if mixture is not None],
                        dtype=np.int64)

    def class_log_densities(self, rows: np.ndarray) -> np.ndarray:
        """``log p(x | c)`` of ``rows [N, D]`` for each fitted class: float64 [N, K]."""
        normalize = require("sklearn.preprocessing", "hidden uncertainty's densities").normalize

        rows = np.asarray(rows, dtype=np.float64)
        if self.normalize:
            rows = normalize(rows)   # each row divided by its L2 norm
        return np.stack([self.mixtures[c].score_samples(rows) for c in self.fitted_classes],
                        axis=1)

    def log_density(self, rows: np.ndarray) -> np.ndarray:
        """``log sum_c pi_c p(x | c)`` of ``rows [N, D]`` over the fitted classes: float64 [N]."""
        logsumexp = require("scipy.special", "hidden uncertainty's densities").logsumexp

        joint = self.class_log_densities(rows) + self.log_priors[self.fitted_classes]
        return logsumexp(joint, axis=1)


def fit_class_conditional(labeled: LabeledFeatures, seed: int = 0,
                          normalize: bool = True) -> ClassConditionalDensity:
    """Fit one full-covariance Gaussian per class to ``labeled.features`` grouped by their true
    ``labels`` (classes with at most one row get none); priors from ``labeled.class_counts``."""
    GaussianMixture = require("sklearn.mixture", "hidden uncertainty's densities").GaussianMixture
    l2_normalize = require("sklearn.preprocessing", "hidden uncertainty's densities").normalize

    rows = np.asarray(labeled.features, dtype=np.float64)
    if normalize:
        rows = l2_normalize(rows)
    mixtures: list[Any] = []
    for c in range(labeled.num_classes):
        members = rows[labeled.labels == c]
        mixture = None
        if len(members) > 1:   # theirs: np.sum(y == i) > 1
            mixture = GaussianMixture(n_components=1, covariance_type="full",
                                      random_state=seed).fit(members)
        mixtures.append(mixture)
    if not any(mixture is not None for mixture in mixtures):
        raise ValueError("hidden uncertainty needs two labeled rows of one class at least; "
                         f"the labeled set has {len(labeled)} rows")
    counts = np.asarray(labeled.class_counts, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_priors = np.log(counts / counts.sum())
    return ClassConditionalDensity(mixtures, log_priors, normalize)


def hidden_uncertainty_scores(inputs: Mapping[str, torch.Tensor], reduction: str = "mean", *,
                              density: ClassConditionalDensity) -> torch.Tensor:
    """``-log p(x)`` of each candidate's hidden features.

    ``inputs["hidden"]`` is ``[B, D]`` (one score per image) or ``[B, D, h, w]`` (one per
    position, reduced per image with ``reduction``: "mean", "max", or "none" for the
    ``[B, h, w]`` maps). Returns float64 ``[B]`` (or the maps).
    """
    hidden = inputs[HIDDEN].detach().cpu().double()   # scikit-learn computes in float64
    if hidden.ndim == 2:
        return torch.from_numpy(-density.log_density(hidden.numpy()))
    batch, dim, height, width = hidden.shape
    rows = hidden.permute(0, 2, 3, 1).reshape(-1, dim).numpy()
    maps = torch.from_numpy(-density.log_density(rows)).reshape(batch, height, width)
    return reduce_dense(maps, reduction)
