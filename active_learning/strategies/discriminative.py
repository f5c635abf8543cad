"""Discriminative Active Learning (Gissin & Shalev-Shwartz, 2019, arXiv:1907.06347).

A small MLP learns to tell labeled embeddings (class 0) from unlabeled ones (class 1); the
unlabeled candidates it is most sure are "unlabeled" are the ones least like the labeled set,
so they are labeled next. The budget is spent in several sub-queries, each with a freshly
trained discriminator, so that one query does not pile up in a single unexplored region.

The original project built the optimiser over the backbone's parameters, so its discriminator
never learned; here the optimiser holds the discriminator's own parameters.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from active_learning.strategies.options import StrategyOption

# The run settings of the "discriminative" strategy (its flags, LoopConfig.options, args.json).
OPTIONS = (
    StrategyOption("max_epochs", int, 500, "train each sub-query's discriminator "
                   "for at most N epochs (it stops earlier at 98% accuracy; the paper trains 500)",
                   check=lambda value: value >= 1, requirement="must be >= 1",
                   flags=("--dal-max-epochs",), metavar="N", legacy_field="dal_max_epochs"),
    StrategyOption("n_sub_queries", int, 10, "spend each cycle's budget in K "
                   "rounds, each with a fresh discriminator",
                   check=lambda value: value >= 1, requirement="must be >= 1",
                   flags=("--dal-sub-queries",), metavar="K", legacy_field="dal_sub_queries"),
)


def build_discriminator(input_dim: int) -> nn.Module:
    """MLP ``[B, input_dim] -> [B, 2]`` logits (0 = labeled, 1 = unlabeled).

    Three hidden ReLU layers of width 20 if ``input_dim < 30``, 256 if ``input_dim <= 512``,
    512 otherwise. The paper's reference implementation uses 20 below 30 dims and 256 for every
    larger input; 512 for embeddings wider than 512 (e.g. a ResNet-50's 2048) is this project's.
    """
    input_dim = int(input_dim)
    if input_dim < 1:
        raise ValueError(f"input_dim must be >= 1, got {input_dim}")
    width = 20 if input_dim < 30 else (256 if input_dim <= 512 else 512)
    return nn.Sequential(
        nn.Linear(input_dim, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, 2),
    )


def split_budget(budget: int, n_parts: int) -> list[int]:
    """Split ``budget`` into ``min(n_parts, budget)`` positive sizes differing by at most one.

    The larger sizes come first, e.g. ``split_budget(25, 10) == [3]*5 + [2]*5``.
    """
    n = max(1, min(int(n_parts), int(budget)))
    base, extra = divmod(int(budget), n)
    return [base + 1] * extra + [base] * (n - extra)


class DiscriminativeActiveLearning:
    """Labeled-vs-unlabeled discriminator selection (DAL).

    Args:
        n_sub_queries: the budget is spent in this many rounds, each with a fresh discriminator.
        max_epochs: training stops after this many epochs at the latest ...
        target_accuracy: ... or as soon as one epoch's training accuracy reaches this.
        lr: Adam learning rate.
        unlabeled_ratio: at most ``unlabeled_ratio * |labeled|`` random unlabeled rows are used
            for training (all unlabeled rows are scored).
        batch_size: minibatch size for training and scoring.
        seed: seeds the subsampling, the discriminator initialisation and the shuffling.
        device: where to train; default: the device of ``unlabeled_embeddings`` (CPU for arrays).
    """

    def __init__(self, *, n_sub_queries: int = 10, max_epochs: int = 500,
                 target_accuracy: float = 0.98, lr: float = 3e-4, unlabeled_ratio: int = 10,
                 batch_size: int = 1024, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        for name, value in (("n_sub_queries", n_sub_queries), ("max_epochs", max_epochs),
                            ("unlabeled_ratio", unlabeled_ratio), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0.0 < float(target_accuracy) <= 1.0:
            raise ValueError(f"target_accuracy must be in (0, 1], got {target_accuracy}")
        if not float(lr) > 0.0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.n_sub_queries = int(n_sub_queries)
        self.max_epochs = int(max_epochs)
        self.target_accuracy = float(target_accuracy)
        self.lr = float(lr)
        self.unlabeled_ratio = int(unlabeled_ratio)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.device = None if device is None else torch.device(device)
        self.epochs_trained_: list[int] = []  # per sub-query, for diagnostics

    # ------------------------------------------------------------------------------------------
    def select(self, labeled_embeddings, unlabeled_embeddings,
               budget: int) -> tuple[np.ndarray, np.ndarray]:
        """Pick ``budget`` unlabeled rows.

        Args:
            labeled_embeddings: ``[L, D]`` tensor or ndarray, L >= 1.
            unlabeled_embeddings: ``[U, D]`` tensor or ndarray.
            budget: number of rows to pick (``<= 0`` -> empty arrays).

        Returns:
            ``(positions, scores)``: int64 ``[budget]`` distinct positions into
            ``unlabeled_embeddings`` in pick order, and float64 ``[budget]`` P(unlabeled) of each
            pick from the discriminator of the sub-query that chose it.
        """
        device = self.device or (unlabeled_embeddings.device
                                 if isinstance(unlabeled_embeddings, torch.Tensor)
                                 else torch.device("cpu"))
        lab = _as_matrix(labeled_embeddings, "labeled_embeddings", device)  # [L, D]
        unl = _as_matrix(unlabeled_embeddings, "unlabeled_embeddings", device)  # [U, D]
        if lab.shape[1] != unl.shape[1]:
            raise ValueError(f"labeled_embeddings has dim {lab.shape[1]} but unlabeled_embeddings "
                             f"has dim {unl.shape[1]}")
        if lab.shape[0] == 0:
            raise ValueError("labeled_embeddings is empty: the discriminator needs labeled rows "
                             "(select the first batch at random)")
        budget = int(budget)
        if budget > unl.shape[0]:
            raise ValueError(f"budget ({budget}) exceeds the number of unlabeled "
                             f"rows ({unl.shape[0]})")
        if budget <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)

        rng = np.random.default_rng(self.seed)
        remaining = np.arange(unl.shape[0])  # positions not picked yet
        picked: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        self.epochs_trained_ = []
        for k, size in enumerate(split_budget(budget, self.n_sub_queries)):
            done = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
            # [L + picked, D]
            train_lab = torch.cat([lab, unl[torch.as_tensor(done, device=device)]])
            n_unl = min(len(remaining), self.unlabeled_ratio * train_lab.shape[0])
            train_unl = unl[torch.as_tensor(rng.choice(remaining, size=n_unl, replace=False),
                                            device=device)]
            model = self._new_discriminator(lab.shape[1], k).to(device)
            with _single_cpu_thread(device):
                self.epochs_trained_.append(self._fit(model, train_lab, train_unl, k))
            p_unl = self._predict_unlabeled(model,
                                            unl[torch.as_tensor(remaining, device=device)])  # [R]
            # stable sort: ties go to the lowest position, so results do not depend on the backend
            top = np.argsort(-p_unl, kind="stable")[:size]
            picked.append(remaining[top])
            scores.append(p_unl[top])
            remaining = np.delete(remaining, top)
        return np.concatenate(picked).astype(np.int64), np.concatenate(scores).astype(np.float64)

    # ------------------------------------------------------------------------------------------
    def _sub_seed(self, sub_query: int) -> int:
        return self.seed * 1_000_003 + sub_query

    def _new_discriminator(self, input_dim: int, sub_query: int) -> nn.Module:
        """A fresh, seeded discriminator; the global torch RNG is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._sub_seed(sub_query))
            return build_discriminator(input_dim)

    def _fit(self, model: nn.Module, labeled: torch.Tensor, unlabeled: torch.Tensor,
             sub_query: int) -> int:
        """Train ``model`` on labeled (class 0, ``[L, D]``) vs unlabeled (class 1, ``[M, D]``).

        Returns the number of epochs run. Training accuracy is the epoch's running accuracy
        (predictions on each minibatch before its step), checked once per epoch.
        """
        device = labeled.device
        x = torch.cat([labeled, unlabeled])  # [L + M, D]
        y = torch.cat([torch.zeros(len(labeled), dtype=torch.long),
                       torch.ones(len(unlabeled), dtype=torch.long)]).to(device)  # [L + M]
        counts = torch.tensor([len(labeled), len(unlabeled)], dtype=torch.float32)
        # inversely proportional to class counts, normalised so that balanced classes get weight 1
        weight = (counts.sum() / (2.0 * counts.clamp(min=1.0))).to(device)  # [2]
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        # the DISCRIMINATOR's parameters
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self._sub_seed(sub_query))
        n = len(x)
        model.train()
        for epoch in range(1, self.max_epochs + 1):
            order = torch.randperm(n, generator=gen).to(device) if n > self.batch_size else None
            correct = 0
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size] if order is not None else slice(None)
                xb, yb = x[idx], y[idx]  # [B, D], [B]
                logits = model(xb)  # [B, 2]
                loss = loss_fn(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                correct += int((logits.argmax(dim=1) == yb).sum())
            if correct / n >= self.target_accuracy:
                return epoch
        return self.max_epochs

    @torch.inference_mode()
    def _predict_unlabeled(self, model: nn.Module, x: torch.Tensor) -> np.ndarray:
        """``x: [R, D]`` -> float64 ndarray ``[R]`` of P(unlabeled)."""
        model.eval()
        out = [model(x[s:s + self.batch_size]).softmax(dim=1)[:, 1]
               for s in range(0, len(x), self.batch_size)]
        return torch.cat(out).double().cpu().numpy()


@contextmanager
def _single_cpu_thread(device: torch.device) -> Iterator[None]:
    """Train the tiny MLP on one CPU thread: its matmuls are too small to gain from more, and
    thread hand-offs per step cost more than the step itself (10-25x slower on a busy
    2-core box)."""
    if torch.device(device).type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _as_matrix(x, name: str, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [N, D] array, got shape {tuple(t.shape)}")
    t = t.to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t
