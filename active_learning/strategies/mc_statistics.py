"""Streaming MC-dropout statistics: running sums over the T passes instead of ``[T, B, C, *dense]``.

A segmentation batch of 2 Cityscapes images holds 2 x 19 x 1024 x 2048 probabilities (320 MB in
float32); keeping T = 20 of them is 6.4 GB. Every MC score of ``uncertainty`` needs only a few
running statistics, each the size of one pass, so peak memory does not grow with T:

=====================  ===================================  ===============================
statistic              accumulated over the passes t        used by
=====================  ===================================  ===============================
``mean``               mean_t p_t            [N, C, *dense]  mc_entropy, bald, mc_variance
``mean_entropy``       mean_t H(p_t)         [N, *dense]     bald
``m2``                 sum_t (p_t - mean)^2  [N, C, *dense]  mc_variance (Welford's update)
``votes``              #{t : argmax p_t = c} [N, C, *dense]  variation_ratio
=====================  ===================================  ===============================

``uncertainty.mc_entropy / bald / predictive_variance / variation_ratio`` accept an
:class:`MCStatistics` wherever they accept ``mc_probs`` and return the same scores.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

MEAN, MEAN_ENTROPY, M2, VOTES = "mean", "mean_entropy", "m2", "votes"
STATISTICS = (MEAN, MEAN_ENTROPY, M2, VOTES)


@dataclass
class MCStatistics:
    """Running statistics of T MC-dropout probability samples; absent ones are None.

    Attributes:
        n_samples: T, the passes folded in.
        mean: [N, C, *dense] mean probability.
        mean_entropy: [N, *dense] mean over the passes of each pass's entropy (natural log).
        m2: [N, C, *dense] sum of squared deviations from the mean (variance = m2 / T).
        votes: [N, C, *dense] int32, how many passes put the argmax on class c.
    """

    n_samples: int
    mean: Tensor | None = None
    mean_entropy: Tensor | None = None
    m2: Tensor | None = None
    votes: Tensor | None = None

    def require(self, *names: str) -> tuple[Tensor, ...]:
        """The statistics ``names``, in that order; ValueError naming any not accumulated."""
        values = [getattr(self, name) for name in names]
        missing = [name for name, value in zip(names, values, strict=True) if value is None]
        if missing:
            raise ValueError(f"these MC statistics were not accumulated: {missing}; "
                             f"accumulate them with MCAccumulator({list(names)})")
        return tuple(values)

    @classmethod
    def from_samples(cls, mc_probs: Tensor, statistics: Iterable[str] = STATISTICS) -> MCStatistics:
        """Fold a ``[T, N, C, *dense]`` sample tensor pass by pass (tests, one-off use)."""
        accumulator = MCAccumulator(statistics)
        for probs in mc_probs:
            accumulator.update(probs)
        return accumulator.result()


class MCAccumulator:
    """Folds MC passes ``[N, C, *dense]`` into :class:`MCStatistics`, O(N*C*dense) memory.

    accumulator = MCAccumulator({"mean", "mean_entropy"})
    for probs in sampler.passes(x, 20, output_fn=softmax):   # [B, C, H, W] each
        accumulator.update(probs)
    scores = uncertainty.bald(accumulator.result(), reduction="none")   # [B, H, W]
    """

    def __init__(self, statistics: Iterable[str]) -> None:
        self.statistics = frozenset(statistics)
        unknown = self.statistics - set(STATISTICS)
        if unknown:
            raise ValueError(f"unknown MC statistics {sorted(unknown)}; known: {list(STATISTICS)}")
        if M2 in self.statistics:
            self.statistics |= {MEAN}  # Welford's update needs the running mean
        self.count = 0
        self._mean: Tensor | None = None
        self._entropy_sum: Tensor | None = None
        self._m2: Tensor | None = None
        self._votes: Tensor | None = None

    def update(self, probs: Tensor) -> None:
        """Fold one pass: probs [N, C, *dense] (float probabilities)."""
        if probs.ndim < 2:
            raise ValueError(f"an MC pass must be [N, C, *dense], got shape {tuple(probs.shape)}")
        probs = probs.float() if probs.dtype in (torch.float16, torch.bfloat16) else probs
        self.count += 1
        if MEAN in self.statistics:
            if self._mean is None:
                self._mean = probs.clone()
                if M2 in self.statistics:
                    self._m2 = torch.zeros_like(probs)
            else:
                delta = probs - self._mean                 # [N, C, *dense]
                self._mean.add_(delta, alpha=1.0 / self.count)
                if self._m2 is not None:
                    self._m2.addcmul_(delta, probs - self._mean)
        if MEAN_ENTROPY in self.statistics:
            entropy = -torch.special.xlogy(probs, probs).sum(dim=1)   # [N, *dense]
            self._entropy_sum = (entropy if self._entropy_sum is None
                                 else self._entropy_sum.add_(entropy))
        if VOTES in self.statistics:
            if self._votes is None:
                self._votes = torch.zeros(probs.shape, dtype=torch.int32, device=probs.device)
            winner = probs.argmax(dim=1, keepdim=True)                  # [N, 1, *dense]
            self._votes.scatter_add_(1, winner, torch.ones_like(winner, dtype=torch.int32))

    def result(self) -> MCStatistics:
        if self.count == 0:
            raise ValueError("no MC pass was folded in (T >= 1)")
        return MCStatistics(
            n_samples=self.count,
            mean=self._mean,
            mean_entropy=None if self._entropy_sum is None else self._entropy_sum / self.count,
            m2=self._m2,
            votes=self._votes,
        )
