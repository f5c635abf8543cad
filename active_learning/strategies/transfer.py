"""Active transfer learning for uncertainty sampling: a head that predicts where the model errs.

Munro, *Human-in-the-Loop Machine Learning* (2021), ch. 5, and fsdl-active-learning's
``active_transfer_learning`` (training/run_experiment.py, ``_finetune_and_sample``): the trained
model predicts labeled items it was *not* trained on; each is labeled "correct" or "incorrect";
a new head on the model's frozen hidden features learns to tell the two apart; the unlabeled
items it finds most likely "incorrect" are sampled.

As fsdl: the head is BatchNorm -> ReLU -> Dropout(0.1) -> Linear(D, 2) (its replacement
``head_part_2``), trained with Adam (lr 1e-3) on 80% of the held-out items for at most 10 rounds,
stopping when the loss on the other 20% has not improved for 2 rounds (the weights of the last
round are kept, as Lightning's early stopping keeps them). fsdl's rounds are epochs over its
validation set (10,778 DroughtWatch images in its README's command: 8,600 rows to train, 135
steps of 64 per epoch); a fifth of a labeled set of a few hundred gives one or two steps per
epoch, which would leave the head near its initialisation, so a round here is an epoch or 100
steps, whichever is longer (1,000 steps at most, fsdl's 1,350). fsdl's backbone is frozen but
its first head layer is fine-tuned too; here the whole network is frozen and the head reads the
hidden features. The held-out items come from the labeled units the run does not train on
(``loop/holdout.py``). Per-pixel outputs: every sampled position of the hidden map is an item,
"incorrect" where the model's class at that pixel is not its label; an image's score is the
mean (``--reduction``) of its positions' probabilities of "incorrect".
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from active_learning.strategies.labeled import LabeledFeatures
from active_learning.strategies.uncertainty import reduce_dense

logger = logging.getLogger(__name__)

HIDDEN = "hidden"   # the need (strategies.HIDDEN); repeated to avoid a circular import

# fsdl's fine-tuning: the model's dropout probability, Adam at its default lr, 10 epochs at most,
# early stopping with patience 2 on the validation loss, an 80/20 split of the held-out items.
DROPOUT = 0.1
LEARNING_RATE = 1e-3
MAX_ROUNDS = 10
PATIENCE = 2
VALIDATION_SHARE = 0.2
BATCH_SIZE = 64
MIN_ROUND_STEPS = 100   # a round: one epoch, or this many steps when an epoch is shorter


def error_head(dim: int, dropout: float = DROPOUT) -> nn.Module:
    """BatchNorm -> ReLU -> Dropout -> Linear(dim, 2): logits of (correct, incorrect)."""
    return nn.Sequential(nn.BatchNorm1d(dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, 2))


def fit_error_head(features: np.ndarray, incorrect: np.ndarray, seed: int = 0, *,
                   max_rounds: int = MAX_ROUNDS, patience: int = PATIENCE,
                   batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE,
                   min_round_steps: int = MIN_ROUND_STEPS) -> nn.Module:
    """Train :func:`error_head` on ``features [N, D]`` to predict ``incorrect [N]`` (bool).

    A seeded ``VALIDATION_SHARE`` of the rows (when there are five or more) decides when to
    stop; the rest trains, in rounds of one epoch or ``min_round_steps`` steps, whichever is
    longer. The global RNG is left as it was. Returns the head in eval mode, on the CPU.
    """
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    y = torch.as_tensor(np.asarray(incorrect, dtype=bool)).long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        head = error_head(x.shape[1])
        order = torch.randperm(len(x), generator=generator)
        n_val = int(round(len(x) * VALIDATION_SHARE)) if len(x) >= 5 else 0
        val, train = order[:n_val], order[n_val:]
        optimizer = torch.optim.Adam(head.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        # a last batch of one row cannot be batch-normalised: batches of two rows at least
        batches = [rows for rows in torch.split(train, batch_size) if len(rows) >= 2]
        round_steps = max(len(batches), min_round_steps) if batches else 0
        best, waited = float("inf"), 0
        for _ in range(max_rounds if round_steps else 0):
            head.train()
            for step in range(round_steps):
                if step % len(batches) == 0:   # a new epoch: reshuffle
                    shuffled = train[torch.randperm(len(train), generator=generator)]
                    batches = [rows for rows in torch.split(shuffled, batch_size)
                               if len(rows) >= 2]
                rows = batches[step % len(batches)]
                optimizer.zero_grad(set_to_none=True)
                loss_fn(head(x[rows]), y[rows]).backward()
                optimizer.step()
            if n_val:
                head.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(head(x[val]), y[val]))
                if val_loss < best:
                    best, waited = val_loss, 0
                else:
                    waited += 1
                    if waited >= patience:
                        break
    return head.eval()


def transfer_scores(inputs: Mapping[str, torch.Tensor], reduction: str = "mean", *,
                    head: nn.Module) -> torch.Tensor:
    """The head's probability that the model is wrong on each candidate.

    ``inputs["hidden"]`` is ``[B, D]`` or ``[B, D, h, w]`` (per position, reduced per image with
    ``reduction``: "mean", "max", or "none" for the ``[B, h, w]`` maps). Returns ``[B]``.
    """
    hidden = inputs[HIDDEN].detach().float().cpu()
    if hidden.ndim == 2:
        return torch.softmax(head(hidden), dim=1)[:, 1]
    batch, dim, height, width = hidden.shape
    rows = hidden.permute(0, 2, 3, 1).reshape(-1, dim)
    maps = torch.softmax(head(rows), dim=1)[:, 1].reshape(batch, height, width)
    return reduce_dense(maps, reduction)


def fit_transfer_head(labeled: LabeledFeatures, seed: int = 0) -> nn.Module:
    """The head for :func:`transfer_scores`, trained on held-out rows (their features, and
    whether the model's class differs from the true one)."""
    if len(labeled) == 0:
        raise ValueError("active transfer learning needs held-out labeled items: the labeled "
                         "set holds fewer than two units, so none is held out")
    incorrect = labeled.predicted != labeled.labels
    if incorrect.all() or not incorrect.any():
        logger.warning("active transfer learning: the model is %s on all %d held-out rows; the "
                       "head has one class to learn", "wrong" if incorrect.all() else "right",
                       len(labeled))
    return fit_error_head(labeled.features, incorrect, seed)
