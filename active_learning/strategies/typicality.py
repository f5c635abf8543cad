"""Low-budget strategies that pick typical, covering points of an embedding: TypiClust, ProbCover.

- ``typiclust``: Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies
  Suit High and Low Budgets", ICML 2022. k-means into ``|L| + B`` clusters; the clusters with
  the fewest labeled points (then the largest) are visited in turn, and each gives its most
  typical unlabeled point, typicality being the inverse mean distance to the point's K nearest
  neighbours in its cluster.
- ``probcover``: Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering Lens",
  NeurIPS 2022. Balls of radius delta around every point; greedy maximum coverage: each pick
  is the point whose ball holds the most points not yet covered by a labeled or picked ball.
  delta is an option, or chosen as the paper does: the largest delta on a grid whose balls are
  pure (no point of another k-means cluster inside) for at least ``alpha`` of the points.

Both work on the rows ``[labeled; candidates]`` and, as the reference code (TypiClust's
``load_features(normalized=True)``), on L2-normalised embeddings, where distances lie in
[0, 2] and one delta grid fits every model.

Memory is O(N) beyond the embeddings (N = L + U rows): neighbourhoods are computed in blocks of
at most ``_BLOCK_ELEMENTS`` distances, never an N x N matrix. ProbCover computes the distances
on and above the diagonal once (they are symmetric: half of N x N), counting every ball's
uncovered points, and keeps the delta-graph as sparse int32 lists while it has at most
``max_edges`` edges (O(N + E)). A denser graph is not kept: the greedy then runs lazily on
those counts as upper bounds (coverage only lowers them), refreshing the largest ones against
the uncovered points until the largest count is exact, which picks what the greedy on exact
counts picks. Time: the one pass over half the distances, ``N^2 D / 2`` multiply-adds,
dominates.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from active_learning.extras import require
from active_learning.strategies.options import StrategyOption

logger = logging.getLogger(__name__)

# Largest block of distances held at once ([rows, N] float32: 128 MiB). Smaller blocks make
# the [rows, D] x [D, N] products too thin to run at full speed (measured at N = 100k).
_BLOCK_ELEMENTS = 1 << 25
# Columns (embedding rows) gathered at once when distances go to a subset of the points only.
_COLUMN_ROWS = 16384
# ProbCover's default delta grid for L2-normalised embeddings (distances in [0, 2]).
DEFAULT_DELTAS = tuple(round(0.05 * i, 2) for i in range(1, 41))


def _stack(labeled, candidates, budget: int, normalize: bool) -> tuple[torch.Tensor, int]:
    """``[L, D]`` and ``[U, D]`` -> (``[L + U, D]`` float (float64 kept), L), rows
    L2-normalised when ``normalize`` (an all-zero row stays zero); a budget above U is refused."""
    cand = torch.as_tensor(candidates)
    if cand.ndim != 2:
        raise ValueError(f"candidate embeddings must be [U, D], got {tuple(cand.shape)}")
    lab = torch.as_tensor(labeled if labeled is not None else np.zeros((0, cand.shape[1])))
    lab = lab.reshape(-1, cand.shape[1])
    dtype = torch.float64 if torch.float64 in (cand.dtype, lab.dtype) else torch.float32
    if int(budget) > len(cand):
        raise ValueError(f"budget ({budget}) exceeds the number of candidates ({len(cand)})")
    x = torch.cat([lab.to("cpu", dtype), cand.to("cpu", dtype)])             # [N, D] a copy
    if not bool(torch.isfinite(x.sum(dim=1)).all()):   # a NaN or inf anywhere makes its row's
        raise ValueError("embeddings contain NaN or infinite values")   # sum one: no [N, D] mask
    if normalize:
        for start in range(0, len(x), 65536):   # in place, a chunk of norms at a time
            rows = x[start:start + 65536]
            rows /= rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return x, len(lab)


def _block_rows(n_columns: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, n_columns))


def _within(rows: torch.Tensor, rows_sq: torch.Tensor, cols: torch.Tensor, cols_sq: torch.Tensor,
            threshold: float) -> torch.Tensor:
    """bool ``[r, c]``: squared distance at most ``threshold``.

    On unit rows (every squared norm within 1e-6 of 1, as after normalisation)
    ``|x - y|^2 = 2 - 2 x.y``, so one comparison of the products does: the full formula's four
    passes over the block cost as much as the product itself at 100k x 512 on two cores.
    """
    unit = bool(((rows_sq - 1).abs() < 1e-6).all() and ((cols_sq - 1).abs() < 1e-6).all())
    if unit:
        return (rows @ cols.T) >= 1.0 - threshold / 2.0
    return _sq_distances(rows, rows_sq, cols, cols_sq) <= threshold


def _sq_distances(rows: torch.Tensor, rows_sq: torch.Tensor, cols: torch.Tensor,
                  cols_sq: torch.Tensor) -> torch.Tensor:
    """``[r, D]``, ``[r]``, ``[c, D]``, ``[c]`` -> ``[r, c]`` squared distances (>= 0)."""
    block = rows @ cols.T
    block.mul_(-2.0).add_(rows_sq[:, None]).add_(cols_sq[None, :])
    return block.clamp_(min=0.0)


# --------------------------------------------------------------------------------------------
# TypiClust
# --------------------------------------------------------------------------------------------
# k-means++ seeding runs on at most this many rows (MiniBatchKMeans' default init_size for
# batches of 5000).
_INIT_ROWS = 15000


def kmeans_labels(x: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """scikit-learn k-means labels ``[N]`` of ``x: [N, D]``: ``KMeans`` up to 50 clusters,
    ``MiniBatchKMeans`` (batches of 5000) above, as the TypiClust reference code.

    Up to ``_INIT_ROWS`` rows, scikit-learn seeds k-means++ itself. Above, k-means++
    (``sklearn.cluster.kmeans_plusplus``) runs on a seeded sample of ``_INIT_ROWS`` rows in
    float64, and k-means starts from those centres: scikit-learn's float32 k-means++ computes
    its distances in small float64 blocks and took 100 s for 500 centres of 10k x 512 rows.
    """
    cluster = require("sklearn.cluster", "TypiClust's and ProbCover's k-means")
    KMeans, MiniBatchKMeans = cluster.KMeans, cluster.MiniBatchKMeans
    kmeans_plusplus = cluster.kmeans_plusplus

    init: Any = "k-means++"
    n_init: Any = "auto"
    if len(x) > _INIT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), _INIT_ROWS, replace=False))
        centres, _ = kmeans_plusplus(x[rows].astype(np.float64), n_clusters, random_state=seed)
        init, n_init = centres.astype(x.dtype), 1
    if n_clusters <= 50:
        model = KMeans(n_clusters=n_clusters, init=init, n_init=n_init, random_state=seed)
    else:
        model = MiniBatchKMeans(n_clusters=n_clusters, batch_size=5000, init=init, n_init=n_init,
                                random_state=seed)
    return np.asarray(model.fit_predict(x), dtype=np.int64)


def mean_knn_distances(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x: [n, D]`` -> ``[n]`` mean Euclidean distance of each row to its k nearest other rows
    (``1 <= k < n``), in blocks of rows."""
    sq = torch.einsum("nd,nd->n", x, x)
    out = torch.empty(len(x), dtype=x.dtype)
    step = _block_rows(len(x))
    for start in range(0, len(x), step):
        d2 = _sq_distances(x[start:start + step], sq[start:start + step], x, sq)   # [r, n]
        rows = torch.arange(d2.shape[0])
        d2[rows, rows + start] = torch.inf          # a row is not its own neighbour
        nearest = torch.topk(d2, k, dim=1, largest=False).values                   # [r, k]
        out[start:start + step] = nearest.sqrt_().mean(dim=1)
    return out


@torch.inference_mode()
def typiclust(labeled, candidates, budget: int, *, k_neighbors: int = 20, max_clusters: int = 500,
              min_cluster_size: int = 5, normalize: bool = True,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """TypiClust selection.

    Args:
        labeled: ``[L, D]`` embeddings of the labeled items (may be empty).
        candidates: ``[U, D]`` embeddings of the candidates.
        budget: B, how many candidates to pick (at most U).
        k_neighbors: K of the typicality (the paper's 20); a cluster of m unlabeled points uses
            ``min(K, m // 2)``, as the reference code.
        max_clusters: the number of clusters is ``min(L + B, max_clusters)`` (the reference
            code's 500: k-means into more clusters than that is slow and finds tiny ones).
        min_cluster_size: clusters of at most this many points (labeled ones included) are
            visited only once every larger cluster is spent (the reference code drops them).
        normalize: L2-normalise the embeddings first.
        seed: seeds k-means.

    Returns:
        (positions int64 ``[B]`` into the candidates in pick order, float64 ``[B]`` each pick's
        typicality ``1 / (mean distance to its K nearest neighbours + 1e-5)``).

    The order of visits is the reference code's: clusters sorted by their number of labeled
    points, then by size (largest first), ties by cluster id; a round visits each once, and the
    rounds repeat until B points are picked. Typicality uses the Euclidean distance of the
    paper's definition (the reference code's faiss index returns squared distances).
    """
    x, n_labeled = _stack(labeled, candidates, budget, normalize)             # [N, D]
    budget = int(budget)
    if budget <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    n_clusters = max(1, min(n_labeled + budget, max_clusters, len(x)))
    labels = kmeans_labels(x.numpy(), n_clusters, seed)                        # [N]
    sizes = np.bincount(labels, minlength=n_clusters)
    existing = np.bincount(labels[:n_labeled], minlength=n_clusters)
    # fewest labeled points first, then the largest; np.lexsort sorts by its last key first
    order = np.lexsort((np.arange(n_clusters), -sizes, existing))
    order = order[sizes[order] > 0]
    large = order[sizes[order] > min_cluster_size]
    small = order[sizes[order] <= min_cluster_size]
    # The candidates of each cluster, still to pick from (ascending positions).
    cand_labels = labels[n_labeled:]
    members = {int(c): list(np.flatnonzero(cand_labels == c)) for c in order}
    picks: list[int] = []
    typicality: list[float] = []
    for visiting in (large, small):
        while len(picks) < budget:
            live = [int(c) for c in visiting if members[int(c)]]
            if not live:
                break
            for cluster in live:
                if len(picks) == budget:
                    break
                rows = np.asarray(members[cluster], dtype=np.int64)           # positions [m]
                if len(rows) == 1:
                    best, value = 0, 1.0
                else:
                    k = max(1, min(k_neighbors, len(rows) // 2))
                    mean_distance = mean_knn_distances(x[n_labeled + rows], k)  # [m]
                    values = 1.0 / (mean_distance.double() + 1e-5)
                    best = int(torch.argmax(values))   # the first maximum on ties
                    value = float(values[best])
                picks.append(int(rows[best]))
                typicality.append(value)
                members[cluster].pop(best)
    return np.asarray(picks, dtype=np.int64), np.asarray(typicality, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# ProbCover
# --------------------------------------------------------------------------------------------
def purity_delta(x: torch.Tensor, n_clusters: int, *, alpha: float = 0.95,
                 deltas=DEFAULT_DELTAS, seed: int = 0, max_rows: int = 10000) -> float:
    """The paper's choice of delta: the largest delta of ``deltas`` whose balls are pure for at
    least ``alpha`` of the points.

    Args:
        x: ``[N, D]`` the embeddings (normalised as ProbCover uses them).
        n_clusters: k-means clusters standing for the classes (the paper: the number of classes).
        alpha: the purity the balls must reach (the paper's 0.95).
        deltas: the grid, searched upwards until purity drops below ``alpha``.
        seed: seeds k-means and the sample of rows.
        max_rows: the purity (a mean over the points) is measured on at most this many rows,
            a seeded sample when N is larger (its standard error is at most 0.005 at 10000);
            each row's ball is checked against all N points.

    Returns:
        delta; the smallest of the grid (with a warning) when none reaches ``alpha``.

    A ball ``{y : |x - y| <= delta}`` is pure when it holds no point of another cluster, i.e.
    when delta is below the distance from x to the nearest point of another cluster.
    """
    grid = np.sort(np.asarray(deltas, dtype=np.float64).reshape(-1))
    if len(grid) == 0 or (grid < 0).any():
        raise ValueError(f"deltas must be non-negative, got {deltas!r}")
    n = len(x)
    n_clusters = max(1, min(int(n_clusters), n))
    labels = torch.as_tensor(kmeans_labels(x.numpy(), n_clusters, seed))
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    else:
        rows = np.arange(n)
    rows_t = torch.as_tensor(rows)
    sq = torch.einsum("nd,nd->n", x, x)
    impure = torch.full((len(rows),), torch.inf, dtype=x.dtype)   # [R] nearest other cluster
    step = _block_rows(n)
    for start in range(0, len(rows), step):
        idx = rows_t[start:start + step]
        d2 = _sq_distances(x[idx], sq[idx], x, sq)                                  # [r, N]
        d2[labels[idx][:, None] == labels[None, :]] = torch.inf
        impure[start:start + step] = d2.min(dim=1).values
    nearest_other = impure.sqrt().numpy()                                          # [R]
    best, best_purity = float(grid[0]), -1.0
    for delta in grid:
        purity = float(np.mean(nearest_other > delta))
        best_purity = max(best_purity, purity)
        if purity < alpha:
            break
        best = float(delta)
    if best_purity < alpha:
        logger.warning("ProbCover: no delta of the grid reaches purity %.2f (best %.3f); using "
                       "the smallest, %g", alpha, best_purity, best)
    return best


def _segments(ptr: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The concatenated CSR segments ``idx[ptr[r]:ptr[r + 1]]`` of ``rows`` (int64)."""
    starts = ptr[rows]
    lengths = ptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return idx[offsets + np.arange(total)].astype(np.int64)


def _segment_sums(ptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``[N]`` the sum of ``values`` over each CSR segment (empty segments give 0)."""
    cumulative = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    return cumulative[ptr[1:]] - cumulative[ptr[:-1]]


class _Balls:
    """The delta-balls ``{j : |x_i - x_j| <= delta}`` (each holding its centre) of every row.

    One pass over the blocks on and above the diagonal (distances are symmetric: half the
    work of all N x N) counts, for every row, the uncovered points of its ball, and keeps the
    pairs it finds while they number at most ``max_edges`` (both directions counted): as the
    upper triangle's CSR by row and by column (int32 each). A denser graph is dropped: the
    counts then go stale as points get covered, and :meth:`uncovered_counts` refreshes those the
    lazy greedy asks for, computing distances to the uncovered points only.
    """

    def __init__(self, x: torch.Tensor, delta: float, uncovered: np.ndarray, max_edges: int):
        self.x = x
        self.sq = torch.einsum("nd,nd->n", x, x)
        self.threshold = delta * delta
        n = len(x)
        self.degrees = uncovered.astype(np.int64)          # [N] each ball holds its centre
        mask = torch.as_tensor(uncovered)
        rows_found: list[np.ndarray] = []
        cols_found: list[np.ndarray] = []
        pairs = 0
        keep = max_edges >= n
        step = _block_rows(n)
        for start in range(0, n, step):
            stop = min(n, start + step)
            near = _within(x[start:stop], self.sq[start:stop], x[start:], self.sq[start:],
                           self.threshold)                                          # [r, N - start]
            near[:, :stop - start].triu_(diagonal=1)   # pairs (r, c) with c > r only
            self.degrees[start:stop] += (near & mask[None, start:]).sum(dim=1).numpy()
            self.degrees[start:] += (near & mask[start:stop, None]).sum(dim=0).numpy()
            if keep:
                r, c = torch.nonzero(near, as_tuple=True)
                pairs += 2 * len(r)
                if n + pairs > max_edges:
                    keep = False
                    rows_found, cols_found = [], []
                else:
                    rows_found.append((r + start).numpy().astype(np.int32))
                    cols_found.append((c + start).numpy().astype(np.int32))
            del near
        self.csr: tuple[np.ndarray, ...] | None = None
        if keep:
            rows = np.concatenate(rows_found) if rows_found else np.zeros(0, dtype=np.int32)
            cols = np.concatenate(cols_found) if cols_found else np.zeros(0, dtype=np.int32)
            del rows_found, cols_found
            # found block after block in row-major order: already sorted by row
            by_row = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n), out=by_row[1:])
            order = np.argsort(cols, kind="stable")
            by_col = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(cols, minlength=n), out=by_col[1:])
            self.csr = (by_row, cols, by_col, rows[order])
        else:
            logger.info("ProbCover: the delta-graph has more than %d edges; its balls are "
                        "recomputed when needed instead of kept", max_edges)

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The concatenated balls of ``rows`` (int64; a point in several balls repeats), from
        the kept graph."""
        assert self.csr is not None
        rows = np.asarray(rows, dtype=np.int64)
        by_row, cols, by_col, rows_of_col = self.csr
        return np.concatenate([rows, _segments(by_row, cols, rows),
                               _segments(by_col, rows_of_col, rows)])


    def uncovered_in(self, row: int, uncovered: np.ndarray) -> np.ndarray:
        """The uncovered points of ``row``'s ball (int64, ascending)."""
        if self.csr is not None:
            ball = self.of(np.array([row]))
            return np.unique(ball[uncovered[ball]])
        columns = np.flatnonzero(uncovered)
        found = [columns[near] for near in self._near_uncovered(np.array([row]), columns)]
        return np.concatenate(found) if found else columns[:0]

    def uncovered_counts(self, rows: np.ndarray, uncovered: np.ndarray) -> np.ndarray:
        """``[len(rows)]`` how many uncovered points each of ``rows``' balls holds."""
        columns = np.flatnonzero(uncovered)
        counts = np.zeros(len(rows), dtype=np.int64)
        for chunk_start, near in self._near_uncovered_blocks(rows, columns):
            counts[chunk_start:chunk_start + near.shape[0]] += near.sum(dim=1).numpy()
        return counts

    def _near_uncovered_blocks(self, rows: np.ndarray, columns: np.ndarray):
        """Yield ``(first row's place, bool [r, c] within delta)`` over blocks of ``rows`` x
        ``columns``; only the distances to the uncovered ``columns`` are computed, and the
        gathered column rows are at most ``_COLUMN_ROWS`` x D."""
        rows_t = torch.as_tensor(rows)
        step = max(1, min(len(rows), _BLOCK_ELEMENTS // min(len(columns) or 1, _COLUMN_ROWS)))
        for c_start in range(0, len(columns), _COLUMN_ROWS):
            cols = torch.as_tensor(columns[c_start:c_start + _COLUMN_ROWS])
            cx, csq = self.x[cols], self.sq[cols]
            for start in range(0, len(rows), step):
                idx = rows_t[start:start + step]
                yield start, _within(self.x[idx], self.sq[idx], cx, csq, self.threshold)

    def _near_uncovered(self, rows: np.ndarray, columns: np.ndarray):
        """Yield, block of ``columns`` by block, the positions into ``columns`` of the points
        within delta of one of the (few) ``rows``."""
        rows_t = torch.as_tensor(rows)
        for c_start in range(0, len(columns), _COLUMN_ROWS):
            cols = torch.as_tensor(columns[c_start:c_start + _COLUMN_ROWS])
            near = _within(self.x[rows_t], self.sq[rows_t], self.x[cols], self.sq[cols],
                           self.threshold)
            yield np.flatnonzero(near.any(dim=0).numpy()) + c_start


def _covered_by(x: torch.Tensor, rows: int, delta: float) -> np.ndarray:
    """bool ``[N]``: the points within delta of one of the first ``rows`` rows."""
    covered = torch.zeros(len(x), dtype=torch.bool)
    sq = torch.einsum("nd,nd->n", x, x)
    step = _block_rows(len(x))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        covered |= _within(x[start:stop], sq[start:stop], x, sq, delta * delta).any(dim=0)
    return covered.numpy()


# The run settings of the "probcover" strategy (its flags, LoopConfig.options, args.json).
PROBCOVER_OPTIONS = (
    StrategyOption("delta", float, None, "ball radius on L2-normalised embeddings, in "
                   "(0, 2) (default: the largest radius whose balls are 95% pure w.r.t. k-means "
                   "clusters, as the paper)",
                   check=lambda value: 0 < value < float("inf"), requirement="must be > 0",
                   flags=("--probcover-delta",), metavar="DELTA", legacy_field="probcover_delta"),
    StrategyOption("purity_clusters", int, 10, "k-means clusters of that purity, the "
                   "number of classes", check=lambda value: value >= 2,
                   requirement="must be >= 2", flags=("--probcover-clusters",), metavar="K",
                   legacy_field="probcover_clusters"),
)


@torch.inference_mode()
def probcover(labeled, candidates, budget: int, *, delta: float | None = None,
              purity_clusters: int = 10, alpha: float = 0.95, deltas=DEFAULT_DELTAS,
              normalize: bool = True, max_edges: int = 1 << 25,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """ProbCover selection: greedy maximum coverage of delta-balls.

    Args:
        labeled: ``[L, D]`` embeddings of the labeled items (may be empty): what their balls
            hold is covered already.
        candidates: ``[U, D]`` embeddings of the candidates.
        budget: B, how many candidates to pick (at most U).
        delta: the ball radius (on normalised embeddings: in (0, 2)); None chooses it with
            :func:`purity_delta` (``purity_clusters`` k-means clusters, ``alpha``, ``deltas``).
        normalize: L2-normalise the embeddings first.
        max_edges: the most edges the delta-graph may keep in memory (int32 each, 128 MiB at
            the default); a larger graph is not stored, its balls are recomputed when needed.
        seed: seeds k-means (purity) and the picks made once everything is covered.

    Returns:
        (positions int64 ``[B]`` into the candidates in pick order, float64 ``[B]`` how many
        uncovered points each pick covered, the delta used).

    Each pick is the candidate whose ball holds the most uncovered points (the lowest position
    on ties, as the reference code's argmax). Once every point is covered, the remaining picks
    are uniformly random candidates (the reference code would pick a labeled point there).
    """
    x, n_labeled = _stack(labeled, candidates, budget, normalize)             # [N, D]
    budget = int(budget)
    if budget <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), float(delta or 0.0)
    if delta is None:
        delta = purity_delta(x, purity_clusters, alpha=alpha, deltas=deltas, seed=seed)
        logger.info("ProbCover: delta %g (purity >= %.2f with %d clusters)", delta, alpha,
                    purity_clusters)
    if not delta > 0 or not math.isfinite(delta):
        raise ValueError(f"delta must be a positive number, got {delta}")
    uncovered = ~_covered_by(x, n_labeled, float(delta))                        # [N]
    balls = _Balls(x, float(delta), uncovered, max_edges)
    # [N] uncovered points in each ball: exact with the kept graph, else upper bounds that the
    # lazy greedy below refreshes (coverage only shrinks a ball's count: submodularity)
    degrees = balls.degrees
    degrees[:n_labeled] = -1                 # a labeled point is never picked
    fresh = np.ones(len(x), dtype=bool)      # degrees[i] is exact for the current coverage
    picks: list[int] = []
    gains: list[float] = []
    while len(picks) < budget:
        row, batch = int(np.argmax(degrees)), 8
        while not fresh[row]:
            # refresh the largest stale counts, a growing batch at a time, until the largest
            # count (the lowest position on ties) is an exact one: no stale bound can beat it
            stale = np.flatnonzero(~fresh & (degrees >= 0))
            top = stale[np.argsort(-degrees[stale], kind="stable")[:batch]]
            degrees[top] = balls.uncovered_counts(top, uncovered)
            fresh[top] = True
            row, batch = int(np.argmax(degrees)), batch * 2
        if degrees[row] <= 0:                # everything is covered
            left = np.flatnonzero(degrees[n_labeled:] >= 0)
            rest = np.random.default_rng(seed).choice(left, size=budget - len(picks),
                                                      replace=False)
            picks.extend(int(r) for r in rest)
            gains.extend([0.0] * len(rest))
            break
        new = balls.uncovered_in(row, uncovered)
        uncovered[new] = False
        if balls.csr is not None:
            # every ball that held a newly covered point holds one fewer uncovered point
            np.subtract.at(degrees, balls.of(new), 1)
        else:
            fresh[:] = False
        picks.append(row - n_labeled)
        gains.append(float(len(new)))
        degrees[row] = -1                    # picked; decrements only lower it further
    return np.asarray(picks, dtype=np.int64), np.asarray(gains, dtype=np.float64), float(delta)
