"""Cluster-Margin: Citovsky, DeSalvo, Gentile, Karydas, Rajagopalan, Rostamizadeh & Kumar,
"Batch Active Learning at Scale", NeurIPS 2021.

Margin sampling diversified by a clustering of the pool: the ``k_m`` candidates of smallest
margin (top-1 minus top-2 probability) are grouped by their cluster of a hierarchical
agglomerative clustering (HAC, average linkage) of the embeddings; the clusters are sorted by
how many of those candidates they hold, smallest first, and visited round-robin, each visit
taking a random one of its candidates not taken yet, until the budget is spent. Small clusters
(rare regions among the uncertain points) are served first, and no cluster gives a second
point before every cluster has given one.

The paper runs HAC once over the whole pool, cut at a distance threshold chosen so that the
average cluster holds at least 10 points, with ``k_m = 10 k_t`` (``k_t`` the budget). Exact
average-linkage HAC holds all pairwise distances, so here it runs on a seeded sample of at
most ``hac_sample`` candidates (every candidate when there are fewer), cut into
``sample size // cluster_size`` clusters (average size ``cluster_size``), and every other
candidate joins the cluster of its nearest sampled point. Memory: the sample's condensed
distance matrix (``hac_sample^2 / 2`` float64: 100 MB at 5000) and O(U) beyond the inputs.

Note that the loop scores a random candidate subset (10 x the budget by default): there
``k_m = 10 k_t`` keeps every candidate, and the margin stage only matters with a larger subset
(``--subset 0`` scores the whole pool, as the paper does).
"""
from __future__ import annotations

import numpy as np
import torch

from active_learning.extras import require

# Largest [candidates, sample] block of distances when assigning candidates to clusters.
_BLOCK_ELEMENTS = 1 << 24


def margins(probs) -> np.ndarray:
    """``probs: [U, C]`` -> ``[U]`` top-1 minus top-2 probability (1 for a single class)."""
    p = torch.as_tensor(probs).double()
    if p.ndim != 2:
        raise ValueError(f"cluster_margin needs one class distribution per candidate, [U, C]; "
                         f"got {tuple(p.shape)}")
    if p.shape[1] < 2:
        return np.ones(p.shape[0])
    top = torch.topk(p, 2, dim=1).values
    return (top[:, 0] - top[:, 1]).numpy()


def hac_clusters(embeddings: np.ndarray, n_clusters: int) -> np.ndarray:
    """Average-linkage HAC labels ``[n]`` of ``embeddings: [n, D]`` (scikit-learn), cut into
    ``n_clusters`` clusters."""
    cluster = require("sklearn.cluster", "Cluster-Margin's clustering")

    if len(embeddings) < 2 or n_clusters <= 1:
        return np.zeros(len(embeddings), dtype=np.int64)
    model = cluster.AgglomerativeClustering(n_clusters=min(n_clusters, len(embeddings)),
                                            linkage="average")
    return np.asarray(model.fit_predict(embeddings), dtype=np.int64)


def nearest_rows(x: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """``[n, D]``, ``[r, D]`` -> ``[n]`` the row of ``reference`` nearest to each row of x."""
    ref_sq = torch.einsum("rd,rd->r", reference, reference)
    out = np.empty(len(x), dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // max(1, len(reference)))
    for start in range(0, len(x), step):
        # |x - r|^2 up to the row's own |x|^2, which does not change the nearest row
        block = ref_sq[None, :] - 2.0 * (x[start:start + step] @ reference.T)
        out[start:start + step] = block.argmin(dim=1).numpy()
    return out


@torch.inference_mode()
def cluster_margin(probs, embeddings, budget: int, *, margin_factor: float = 10.0,
                   cluster_size: int = 10, hac_sample: int = 5000,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster-Margin selection.

    Args:
        probs: ``[U, C]`` class probabilities of the candidates.
        embeddings: ``[U, D]`` their embeddings.
        budget: ``k_t``, how many to pick (at most U).
        margin_factor: ``k_m = margin_factor * k_t`` smallest-margin candidates are kept (the
            paper's 10), at most U.
        cluster_size: the HAC cut's average cluster size (the paper: at least 10).
        hac_sample: HAC runs on at most this many candidates (see the module docstring).
        seed: seeds the HAC sample and the random pick inside each cluster.

    Returns:
        (positions int64 ``[k_t]`` into the candidates in pick order, float64 ``[k_t]`` their
        margins).
    """
    margin = margins(probs)                                                   # [U]
    x = torch.as_tensor(embeddings).detach().to("cpu")
    x = x if x.dtype == torch.float64 else x.float()
    n = len(margin)
    if x.ndim != 2 or len(x) != n:
        raise ValueError(f"cluster_margin needs embeddings [U, D] for the {n} candidates, got "
                         f"{tuple(x.shape)}")
    budget = int(budget)
    if budget > n:
        raise ValueError(f"budget ({budget}) exceeds the number of candidates ({n})")
    if budget <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if cluster_size < 1 or hac_sample < 2 or margin_factor < 1:
        raise ValueError("cluster_margin needs cluster_size >= 1, hac_sample >= 2 and "
                         f"margin_factor >= 1; got {cluster_size}, {hac_sample}, {margin_factor}")
    rng = np.random.default_rng(seed)
    # HAC on a sample of the candidates; the others join their nearest sampled point's cluster.
    sample = (np.arange(n) if n <= hac_sample
              else np.sort(rng.choice(n, size=hac_sample, replace=False)))
    sample_labels = hac_clusters(x[sample].numpy(), max(1, len(sample) // cluster_size))
    k_m = min(n, max(budget, int(round(margin_factor * budget))))
    kept = np.argsort(margin, kind="stable")[:k_m]                            # [k_m]
    labels = np.empty(n, dtype=np.int64)
    labels[sample] = sample_labels
    outside = np.setdiff1d(kept, sample)
    if len(outside):
        labels[outside] = sample_labels[nearest_rows(x[outside], x[sample])]
    kept_labels = labels[kept]
    clusters, counts = np.unique(kept_labels, return_counts=True)
    # smallest first; equal sizes: the cluster holding the smallest margin first
    first_seen = np.full(len(clusters), len(kept))
    np.minimum.at(first_seen, np.searchsorted(clusters, kept_labels), np.arange(len(kept)))
    visit = clusters[np.lexsort((first_seen, counts))]
    # each cluster's kept candidates in a random order: a visit takes the next one
    queues = {int(c): rng.permutation(kept[kept_labels == c]) for c in visit}
    picks: list[int] = []
    for round_ in range(int(counts.max())):
        for cluster in visit:
            queue = queues[int(cluster)]
            if round_ < len(queue):
                picks.append(int(queue[round_]))
                if len(picks) == budget:
                    chosen = np.asarray(picks, dtype=np.int64)
                    return chosen, margin[chosen]
    raise AssertionError("the kept candidates ran out before the budget")   # k_m >= budget
