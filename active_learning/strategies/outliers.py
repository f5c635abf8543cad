"""Model-based outliers, HDBSCAN clusters and GLOSH outlier scores.

The diversity strategies of fsdl-active-learning (``mb_outliers_mean``, ``mb_outliers_max``,
``mb_outliers_glosh``, ``mb_clustering``; their modAL framework calls the last two ``outlier``
and ``cluster_outlier_combined``), after Munro, *Human-in-the-Loop Machine Learning* (2021):

- **Model-based outliers** (Munro, ch. 4): each neuron's activations on the labeled items are
  sorted; an unlabeled item's activation is ranked among them (the fraction of labeled
  activations below it, linearly interpolated between neighbours), and an item whose
  activations rank low everywhere is one the model has little evidence for.
  ``mb_outliers_mean`` scores ``1 - mean`` of its ranks over the neurons, ``mb_outliers_max``
  ``1 - max`` (no neuron responds as strongly as on the labeled items). fsdl's version averages
  the raw activations of three layers and takes the lowest, with no labeled set; the ranks
  against the labeled set are the book's definition.
- **HDBSCAN + GLOSH** (Campello et al., "Hierarchical density estimates for data clustering,
  visualization, and outlier detection", TKDD 2015): scikit-learn's HDBSCAN clusters the
  candidates; the GLOSH score of a point is ``(lambda_max - lambda_p) / lambda_max``, where
  ``lambda_p = 1 / distance`` is the density level at which the point leaves its cluster of the
  condensed tree and ``lambda_max`` the highest density level any point of that cluster
  reaches. scikit-learn does not expose the condensed tree, so :func:`condensed_tree` builds it
  from the single-linkage tree its HDBSCAN fits (as the ``hdbscan`` package does) and
  :func:`glosh_scores` computes the scores (``tests/test_outliers.py`` checks both against the
  ``hdbscan`` package).
- **Cluster-outlier sampling** (``mb_clustering``): the budget is spread evenly over the
  clusters, and within each cluster 20% of its share goes to its outliers (GLOSH scores at or
  above the cluster's 90% quantile) and the rest to its regular points, drawn at random.
"""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import torch

from active_learning.extras import require

logger = logging.getLogger(__name__)

# fsdl-active-learning's HDBSCAN settings (al_sampler.py): clusters of at least 100 points,
# halved until a cluster is found; core distances from the point alone (min_samples=1), which
# makes the mutual reachability distance the plain distance.
MIN_CLUSTER_SIZE = 100
MIN_SAMPLES = 1
# mb_clustering: a cluster's outliers are its points at or above this quantile of its GLOSH
# scores, and they get this fraction of the cluster's share of the budget.
OUTLIER_QUANTILE = 0.9
OUTLIER_FRACTION = 0.2
# The uncertainty pre-sample of the outlier x uncertainty combinations: 4 x the budget.
PRESAMPLE_FACTOR = 4


# --------------------------------------------------------------------------------------------
# model-based outliers
# --------------------------------------------------------------------------------------------
def activation_ranks(sorted_reference: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Each value's rank among its neuron's reference activations, in [0, 1].

    ``sorted_reference [D, L]`` holds each neuron's L labeled activations in ascending order,
    ``values [D, N]`` the activations to rank. With ``k`` the number of reference values at or
    below ``v``: 0 when ``k == 0``, 1 when ``k == L``, else ``(k - 1 + (v - r[k-1]) / (r[k] -
    r[k-1])) / L``, the linear interpolation between the neighbours (Munro's ``get_rank``).
    Returns ``[D, N]``.
    """
    count = sorted_reference.shape[1]
    above = torch.searchsorted(sorted_reference, values, right=True)                # k [D, N]
    low = sorted_reference.gather(1, (above - 1).clamp_(min=0))
    high = sorted_reference.gather(1, above.clamp(max=count - 1))
    inside = (above > 0) & (above < count)
    # inside, r[k-1] <= v < r[k], so high > low; elsewhere the fraction is not used
    fraction = (values - low) / torch.where(inside, high - low, torch.ones_like(high))
    ranks = torch.where(inside, above - 1 + fraction, above.to(values.dtype))
    return ranks / count


def model_outlier_scores(candidates: np.ndarray | torch.Tensor,
                         labeled: np.ndarray | torch.Tensor, reduction: str = "mean",
                         chunk_size: int = 4096) -> np.ndarray:
    """Munro's model-based outlier score of each candidate against the labeled activations.

    ``candidates [U, D]`` and ``labeled [L, D]`` are activations (embeddings). The score is
    ``1 - mean`` (``reduction="mean"``) or ``1 - max`` (``"max"``) over the D neurons of the
    candidate's :func:`activation_ranks`; higher is more outlying. Candidates are ranked
    ``chunk_size`` at a time: memory is O(L x D + chunk x D). Returns float64 [U].
    """
    if reduction not in ("mean", "max"):
        raise ValueError(f"reduction must be 'mean' or 'max', got {reduction!r}")
    candidates = torch.as_tensor(candidates)          # float64 a chunk at a time (no copy)
    labeled = torch.as_tensor(labeled).double().reshape(-1, candidates.shape[1])
    if len(labeled) == 0:
        raise ValueError("model-based outliers need the labeled items' activations")
    reference = labeled.T.contiguous().sort(dim=1).values                           # [D, L]
    scores = np.empty(len(candidates))
    for start in range(0, len(candidates), chunk_size):
        chunk = candidates[start:start + chunk_size].double().T.contiguous()         # [D, c]
        ranks = activation_ranks(reference, chunk)
        pooled = ranks.mean(dim=0) if reduction == "mean" else ranks.max(dim=0).values   # [c]
        scores[start:start + chunk_size] = (1.0 - pooled).numpy()
    return scores


# --------------------------------------------------------------------------------------------
# HDBSCAN's condensed tree and GLOSH
# --------------------------------------------------------------------------------------------
CONDENSED_TREE = np.dtype([("parent", np.intp), ("child", np.intp), ("lambda_val", np.float64),
                           ("child_size", np.intp)])


def condensed_tree(linkage: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN's condensed tree of a single-linkage tree.

    ``linkage [N - 1, 4]`` is a merge tree in SciPy's format (row i merges nodes ``left`` and
    ``right`` at ``distance`` into node ``N + i`` of ``size`` points). Walking down from the
    root, a split where both sides hold at least ``min_cluster_size`` points makes two new
    clusters; otherwise the small side's points leave the cluster at ``lambda = 1 / distance``
    and the large side stays that cluster. Returns rows ``(parent, child, lambda_val,
    child_size)`` (``CONDENSED_TREE``): clusters are labelled from N (the root) up, points keep
    their index; every point appears once as a child.
    """
    linkage = np.asarray(linkage, dtype=np.float64)
    n = len(linkage) + 1
    left = linkage[:, 0].astype(np.intp)
    right = linkage[:, 1].astype(np.intp)
    size = np.ones(2 * n - 1, dtype=np.intp)
    size[n:] = linkage[:, 3].astype(np.intp)
    # Leaves in depth-first order: every node's points are one contiguous run of ``leaves``.
    start = np.zeros(2 * n - 1, dtype=np.intp)
    for node in range(2 * n - 2, n - 1, -1):   # a node's index is above its children's
        start[left[node - n]] = start[node]
        start[right[node - n]] = start[node] + size[left[node - n]]
    leaves = np.empty(n, dtype=np.intp)
    leaves[start[:n]] = np.arange(n)

    label = np.full(2 * n - 1, -1, dtype=np.intp)   # the cluster a live node belongs to
    label[2 * n - 2] = n
    next_label = n + 1
    parents, children, lambdas, sizes = [], [], [], []

    def leave(node: int, cluster: int, lam: float) -> None:   # every point of ``node`` leaves
        points = leaves[start[node]:start[node] + size[node]]
        parents.append(np.full(len(points), cluster))
        children.append(points)
        lambdas.append(np.full(len(points), lam))
        sizes.append(np.ones(len(points), dtype=np.intp))

    for node in range(2 * n - 2, n - 1, -1):
        cluster = label[node]
        if cluster < 0:             # its points left with an ancestor's small side
            continue
        a, b = left[node - n], right[node - n]
        distance = linkage[node - n, 2]
        lam = 1.0 / distance if distance > 0 else np.inf
        big_a, big_b = size[a] >= min_cluster_size, size[b] >= min_cluster_size
        if big_a and big_b:
            for child in (a, b):
                label[child] = next_label
                parents.append(np.array([cluster]))
                children.append(np.array([next_label]))
                lambdas.append(np.array([lam]))
                sizes.append(np.array([size[child]]))
                next_label += 1
            continue
        for child, big in ((a, big_a), (b, big_b)):
            if big:
                label[child] = cluster
            else:
                leave(child, cluster, lam)
    tree = np.empty(sum(len(part) for part in parents), dtype=CONDENSED_TREE)
    if len(tree):
        tree["parent"] = np.concatenate(parents)
        tree["child"] = np.concatenate(children)
        tree["lambda_val"] = np.concatenate(lambdas)
        tree["child_size"] = np.concatenate(sizes)
    return tree


def glosh_scores(tree: np.ndarray, n_points: int) -> np.ndarray:
    """GLOSH outlier scores ``[n_points]`` of a condensed tree, in [0, 1].

    A point leaving cluster C at ``lambda_p`` scores ``(lambda_max(C) - lambda_p) /
    lambda_max(C)``, with ``lambda_max(C)`` the largest lambda in C's subtree (where its densest
    part dissolves). Exact duplicates (``lambda_p`` infinite) and a cluster whose
    ``lambda_max`` is 0 score 0. A finite ``lambda_p`` under an infinite ``lambda_max`` (a
    cluster holding duplicates) is NaN in the ``hdbscan`` package and 0 here: no outlier score
    can be read from it.
    """
    parent, child, lam = tree["parent"], tree["child"], tree["lambda_val"]
    top = int(max(parent.max(initial=n_points), child.max(initial=n_points)))
    deaths = np.zeros(top + 1)
    np.maximum.at(deaths, parent, lam)
    clusters = np.flatnonzero(child >= n_points)
    # children carry larger labels than their parents: the largest first propagates upwards
    for row in clusters[np.argsort(-child[clusters], kind="stable")]:
        deaths[parent[row]] = max(deaths[parent[row]], deaths[child[row]])
    scores = np.zeros(n_points)
    points = np.flatnonzero(child < n_points)
    lam_max = deaths[parent[points]]
    lam_point = lam[points]
    defined = (lam_max > 0) & np.isfinite(lam_max) & np.isfinite(lam_point)
    scores[child[points[defined]]] = (lam_max[defined] - lam_point[defined]) / lam_max[defined]
    return scores


def hdbscan_glosh(features: np.ndarray | torch.Tensor, min_cluster_size: int = MIN_CLUSTER_SIZE,
                  min_samples: int = MIN_SAMPLES) -> tuple[np.ndarray, np.ndarray, int]:
    """scikit-learn's HDBSCAN on ``features [N, D]``, and the GLOSH scores of its tree.

    As fsdl-active-learning, ``min_cluster_size`` is halved until HDBSCAN finds a cluster (fsdl
    halves a copy it never passes on, and loops forever on a pool without clusters); below 2
    every point is noise. Returns (cluster labels int64 [N], -1 for noise; GLOSH scores float64
    [N]; the min_cluster_size used).
    """
    HDBSCAN = require("sklearn.cluster", "HDBSCAN's outlier scores").HDBSCAN

    x = np.asarray(torch.as_tensor(features).double().cpu().numpy())
    n = len(x)
    if n < 2:
        return np.full(n, -1, dtype=np.int64), np.zeros(n), min_cluster_size
    size = max(2, min(min_cluster_size, n))
    while True:
        with warnings.catch_warnings():   # scikit-learn 1.8 announces a new default of copy
            warnings.simplefilter("ignore", FutureWarning)
            clusterer = HDBSCAN(min_cluster_size=size, min_samples=min(min_samples, n),
                                copy=True).fit(x)
        labels = np.asarray(clusterer.labels_, dtype=np.int64)
        if labels.max() >= 0 or size == 2:
            break
        logger.info("HDBSCAN found no cluster of %d points; halving the size to %d", size,
                    max(2, size // 2))
        size = max(2, size // 2)
    linkage = getattr(clusterer, "_single_linkage_tree_", None)
    if linkage is None:   # scikit-learn keeps the tree under this name since HDBSCAN's 1.3
        raise RuntimeError("this scikit-learn's HDBSCAN keeps no _single_linkage_tree_; GLOSH "
                           "needs it (scikit-learn 1.3 to 1.9 do)")
    table = np.column_stack([linkage["left_node"], linkage["right_node"], linkage["value"],
                             linkage["cluster_size"]]).astype(np.float64)
    return labels, glosh_scores(condensed_tree(table, size), n), size


def cluster_outlier_sample(labels: np.ndarray, scores: np.ndarray, budget: int,
                           rng: np.random.Generator, quantile: float = OUTLIER_QUANTILE,
                           outlier_fraction: float = OUTLIER_FRACTION) -> np.ndarray:
    """fsdl's ``mb_clustering``: ``budget`` positions spread evenly over the clusters.

    ``labels [N]`` are cluster labels (-1: noise), ``scores [N]`` GLOSH scores. Each of the K
    clusters gets ``budget // K`` picks, the remainder going one by one to the first clusters
    (``ceil(left / clusters left)`` each). Of a cluster's share, ``int(share x
    outlier_fraction)`` are drawn from its outliers (scores at or above its ``quantile``; when
    that quantile is 0 or undefined, a random ``outlier_fraction`` of its points) and the rest
    from its other points; what a cluster cannot fill passes to the clusters after it, and what
    is still missing at the end is drawn from every point not chosen (noise included). Returns
    int64 [budget] distinct positions, cluster by cluster.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    count = int(labels.max()) + 1 if len(labels) else 0
    chosen: list[np.ndarray] = []
    if count > 0:
        share, left = divmod(budget, count)
        for cluster in range(count):
            take = share
            if left > 0:
                extra = math.ceil(left / (count - cluster))
                take += extra
                left -= extra
            n_outliers = int(take * outlier_fraction)
            n_regular = take - n_outliers
            members = np.flatnonzero(labels == cluster)
            threshold = np.quantile(scores[members], quantile)
            if threshold > 0 and not math.isnan(threshold):
                outliers = members[scores[members] >= threshold]
                regular = members[scores[members] < threshold]
            else:   # no outlier structure in the cluster: a random split
                outliers = rng.choice(members, int(len(members) * outlier_fraction),
                                      replace=False)
                regular = np.setdiff1d(members, outliers)
            if len(regular) < n_regular:
                left += n_regular - len(regular)
                n_regular = len(regular)
            if len(outliers) < n_outliers:
                left += n_outliers - len(outliers)
                n_outliers = len(outliers)
            chosen.append(rng.choice(outliers, n_outliers, replace=False))
            chosen.append(rng.choice(regular, n_regular, replace=False))
    picked = np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)
    missing = budget - len(picked)
    if missing > 0:
        if count > 0:
            logger.info("the clusters held too few points for an even share; %d more drawn at "
                        "random", missing)
        rest = np.setdiff1d(np.arange(len(labels)), picked)
        picked = np.concatenate([picked, rng.choice(rest, missing, replace=False)])
    return picked.astype(np.int64)
