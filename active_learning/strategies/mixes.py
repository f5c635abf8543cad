"""Mixes: any score strategy followed by a diversity step, with a passive fraction at random.

active-learning-for-computer-vision (AL-CV, ``../shared/reference/peer-al-for-cv-README.md``)
builds a sampler from three parts: a score ("entropy": confidence, or gradients), a diversity
step (k-nearest, core-set, optionally "weighted by the score") and a "passive learning" share of
the batch drawn at random. Here the three parts compose with every score strategy of the
registry, on every task, from the command line:

    --strategy entropy --diversity coreset --random-fraction 0.2

A cycle's budget B then splits into ``round(f B)`` units drawn uniformly from the candidates
(the passive share) and ``B - round(f B)`` chosen by the score, through the diversity step:

* the score ranks the other candidates and keeps a shortlist of the ``factor x`` budget best
  (``--diversity-factor``, 10 by default);
* ``knearest``: the shortlist is walked in score order and a candidate is skipped when it is one
  of the ``KNEAREST_K`` nearest neighbours (in the model's embedding, within the shortlist) of a
  candidate already chosen: near-duplicates of a chosen image give way to the next best score.
  When the walk runs out, the skipped candidates fill the budget in score order;
* ``coreset``: k-center greedy over the shortlist with the labeled units as the first centers,
  each distance multiplied by the candidate's score normalised to ``[0, 1]`` over every scored
  candidate (AL-CV's ``weighted_by_score``): far from everything labeled or chosen, and
  uncertain.

The picks are written in pick order (the priority CSV's values are then rank scores, 1 down to
1/K, as for the set strategies): the passive share last. A mix chooses a batch, so it is refused
where every image is ranked (``--budget all``, the rank mode's default). AL-CV's
``diversity_mix`` and ``distance_metric`` options have no counterpart here (the distance is
Euclidean in the model's embedding).

AL-CV's README names these parts and not every detail (its k-nearest neighbourhood size, its
score normalisation): the choices above are this project's, stated here and in the README.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from active_learning.extras import require
from active_learning.strategies.diversity import k_center_greedy

DIVERSITIES = ("knearest", "coreset")
# Default shortlist: the 10 x budget best scores (the candidates AL-CV's diversity step sees are
# its query pool; ten times the batch leaves room for the skips of k-nearest).
DIVERSITY_FACTOR = 10
# k-nearest: how many nearest neighbours of a chosen candidate give way to the next scores.
KNEAREST_K = 5


def passive_count(budget: int, random_fraction: float) -> int:
    """How many of ``budget`` units are drawn at random: ``random_fraction x budget`` rounded
    half up (0.5 x 5 -> 3)."""
    return int(math.floor(float(random_fraction) * int(budget) + 0.5))


def mix_label(strategy: str, diversity: str | None = None, random_fraction: float = 0.0,
              diversity_factor: int | None = None) -> str:
    """The name a mix goes by in run folders and comparisons: ``entropy``,
    ``entropy+coreset``, ``entropy+coreset+random0.2``, ``coreset+random0.5``, and with a
    shortlist other than the default 10 x budget ``entropy+coreset-f5``."""
    parts = [strategy]
    if diversity:
        factor = diversity_factor if diversity_factor is not None else DIVERSITY_FACTOR
        parts.append(diversity if factor == DIVERSITY_FACTOR else f"{diversity}-f{factor}")
    if random_fraction:
        parts.append(f"random{float(random_fraction):g}")
    return "+".join(parts)


def score_weights(scores: np.ndarray, low: float | None = None,
                  high: float | None = None) -> np.ndarray:
    """float64 ``[N]``: the scores min-max normalised to ``[0, 1]`` (all ones when they tie),
    so that a score's scale or sign (a negative log-density) does not matter. ``low`` and
    ``high`` (default: the scores' own) are the range, e.g. that of every scored candidate, so
    that the last of a shortlist is not weighted 0."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if scores.size == 0:
        return scores
    low = float(scores.min()) if low is None else float(low)
    high = float(scores.max()) if high is None else float(high)
    if not high > low:
        return np.ones_like(scores)
    return np.clip((scores - low) / (high - low), 0.0, 1.0)


def knearest_diverse(scores: np.ndarray, embeddings: np.ndarray | torch.Tensor, budget: int,
                     k: int = KNEAREST_K) -> np.ndarray:
    """Walk the candidates in score order, skipping the ``k`` nearest neighbours of each chosen one.

    Args:
        scores: float ``[N]`` the shortlist's scores (higher first).
        embeddings: ``[N, D]`` their embeddings.
        budget: how many to choose (at most N).
        k: neighbours (other than itself) each chosen candidate suppresses.

    Returns:
        int64 ``[budget]`` positions into the shortlist, in pick order: first the walk's picks,
        then, if it ran out, the skipped candidates by score.
    """
    NearestNeighbors = require("sklearn.neighbors", "the k-nearest diversity step").NearestNeighbors

    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(scores)
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} must be between 0 and the {n} candidates")
    if n == 0 or budget == 0:
        return np.zeros(0, dtype=np.int64)
    points = torch.as_tensor(embeddings).detach().cpu().double().reshape(n, -1).numpy()
    order = np.argsort(-scores, kind="stable")   # best first, ties by position
    neighbours = min(k + 1, n)   # the candidate itself comes first among its neighbours
    index = NearestNeighbors(n_neighbors=neighbours).fit(points)
    suppressed = np.zeros(n, dtype=bool)
    picks: list[int] = []
    for position in order:
        if len(picks) == budget:
            break
        if suppressed[position]:
            continue
        picks.append(int(position))
        # one query per pick: the shortlist's k-NN matrix is never built whole
        near = index.kneighbors(points[position:position + 1], return_distance=False)[0]
        suppressed[near] = True
    if len(picks) < budget:   # every remaining candidate was a neighbour: fill by score
        chosen = set(picks)
        picks += [int(p) for p in order if p not in chosen][:budget - len(picks)]
    return np.asarray(picks, dtype=np.int64)


def weighted_coreset(scores: np.ndarray, embeddings: np.ndarray | torch.Tensor,
                     labeled_embeddings: np.ndarray | torch.Tensor | None, budget: int,
                     seed: int = 0, score_range: tuple[float, float] | None = None
                     ) -> np.ndarray:
    """k-center greedy on the shortlist, each distance weighted by the normalised score.

    Args:
        scores: float ``[N]`` the shortlist's scores.
        embeddings: ``[N, D]`` their embeddings.
        labeled_embeddings: ``[L, D]`` the labeled units' embeddings, the first centers (None
            or empty: the first pick is seeded, as core-set's).
        budget: how many to choose (at most N).
        seed: the first pick's seed when nothing is labeled.
        score_range: ``(low, high)`` of the normalisation (default: the shortlist's own).

    Returns:
        int64 ``[budget]`` positions into the shortlist, in pick order.
    """
    candidates = torch.as_tensor(embeddings).detach().float().reshape(len(scores), -1)   # [N, D]
    labeled = (torch.zeros(0, candidates.shape[1]) if labeled_embeddings is None else
               torch.as_tensor(labeled_embeddings).detach().float().reshape(-1,
                                                                           candidates.shape[1]))
    features = torch.cat([labeled.to(candidates.device), candidates])              # [L + N, D]
    low, high = score_range if score_range is not None else (None, None)
    weights = np.concatenate([np.zeros(len(labeled)), score_weights(scores, low, high)])  # [L+N]
    picks = k_center_greedy(features, np.arange(len(labeled)), budget, seed=seed,
                            weights=weights)
    return picks - len(labeled)


def diversify(diversity: str, scores: np.ndarray, embeddings: np.ndarray | torch.Tensor,
              labeled_embeddings: np.ndarray | torch.Tensor | None, budget: int,
              seed: int = 0, score_range: tuple[float, float] | None = None) -> np.ndarray:
    """The diversity step ``diversity`` (one of ``DIVERSITIES``) on a scored shortlist: int64
    ``[budget]`` positions into it, in pick order. ``score_range``: coreset's normalisation."""
    if diversity == "knearest":
        return knearest_diverse(scores, embeddings, budget)
    if diversity == "coreset":
        return weighted_coreset(scores, embeddings, labeled_embeddings, budget, seed=seed,
                                score_range=score_range)
    raise ValueError(f"unknown diversity {diversity!r}; known: {', '.join(DIVERSITIES)}")


# The diversity steps whose first centers are the labeled units: they need their embeddings.
LABELED_CENTERS = frozenset({"coreset"})
