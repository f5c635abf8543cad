"""BatchBALD: Kirsch, van Amersfoort & Gal, "BatchBALD: Efficient and Diverse Batch Acquisition
for Deep Bayesian Active Learning", NeurIPS 2019.

BALD scores each candidate by the mutual information between its label and the model
parameters, ``I(y; w) = H(y) - E_w H(y | w)``, and top-k of it fills a batch with near copies
of one uncertain image. BatchBALD scores the batch as a whole,
``I(y_1, ..., y_n; w) = H(y_1, ..., y_n) - sum_i E_w H(y_i | w)``, and builds it greedily: each
step adds the candidate that maximises the joint mutual information of the batch so far plus
that candidate (the objective is submodular, so greedy is a (1 - 1/e)-approximation).

The K MC-dropout samples stand for draws of ``w``. With the batch so far ``A`` (n labels), the
joint distribution of ``y_A`` under sample ``k`` is ``P(y_A | w_k) = prod_{a in A} p(y_a | w_k)``
and the joint entropy of ``(y_A, y)`` for a candidate ``y`` is computed two ways:

* exactly, while the ``C^n`` label configurations of ``A`` number at most ``max_exact``:
  ``P(y_A, y) = 1/K sum_k P(y_A | w_k) p(y | w_k)`` for every configuration, a
  ``[C^n, K] x [K, C]`` product per candidate;
* by sampling, beyond that (the paper's estimator, as in baal and BlackHC's batchbald_redux):
  ``S = joint_samples // K`` configurations ``y_A`` are drawn from each ``P(y_A | w_k)``, so the
  ``M = K S`` draws come from the mixture ``Q(y_A) = 1/K sum_k P(y_A | w_k)``, and
  ``H(y_A, y) ~ 1/M sum_m sum_c -P(y_A^m, c) log P(y_A^m, c) / Q(y_A^m)``. The draws are made
  again from the whole batch each time it grows (as the references do).

Costs: every step computes ``M x K x C`` per candidate, so a batch of B from U candidates costs
``B U M K C``; BatchBALD is a strategy for small batches (the paper's were 5 to 40 images).
Memory: the candidates are processed in chunks of at most ``_BLOCK_ELEMENTS`` joint values; the
largest other arrays are the MC samples themselves, ``[U, K, C]`` in float64.
"""
from __future__ import annotations

import numpy as np
import torch

# Largest [chunk, M, C] block of joint probabilities (float64: 32 MiB).
_BLOCK_ELEMENTS = 1 << 22


def conditional_entropies(probs: torch.Tensor) -> torch.Tensor:
    """``probs: [U, K, C]`` -> ``[U]`` expected entropy ``1/K sum_k H(y | w_k)``."""
    return -torch.special.xlogy(probs, probs).sum(dim=(1, 2)) / probs.shape[1]


def exact_joint_entropies(joint: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Exact ``H(y_A, y)`` for every candidate.

    Args:
        joint: ``[M, K]``: ``P(y_A = m | w_k)`` for every configuration ``m`` of the batch's
            labels (``[1, K]`` of ones for an empty batch).
        probs: ``[U, K, C]`` the candidates' MC samples.

    Returns:
        ``[U]`` joint entropies in nats.
    """
    out = torch.empty(probs.shape[0], dtype=probs.dtype)
    rows = max(1, _BLOCK_ELEMENTS // (joint.shape[0] * probs.shape[2]))
    for start in range(0, probs.shape[0], rows):
        block = torch.einsum("mk,ukc->umc", joint, probs[start:start + rows]) / joint.shape[1]
        out[start:start + rows] = -torch.special.xlogy(block, block).sum(dim=(1, 2))
    return out


def sampled_joint_entropies(samples: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """The importance-sampled estimate of ``H(y_A, y)`` for every candidate.

    Args:
        samples: ``[M, K]``: ``P(y_A^m | w_k)`` for M configurations ``y_A^m`` drawn from the
            mixture ``Q = 1/K sum_k P(. | w_k)`` (see :func:`sample_configurations`).
        probs: ``[U, K, C]`` the candidates' MC samples.

    Returns:
        ``[U]`` estimates ``1/M sum_m sum_c -P(y_A^m, c) log P(y_A^m, c) / Q(y_A^m)``.
    """
    m = samples.shape[0]
    # Q(y_A^m) > 0 for a configuration that was drawn; the floor only guards underflow.
    q = samples.mean(dim=1).clamp_min(torch.finfo(samples.dtype).tiny)       # [M]
    out = torch.empty(probs.shape[0], dtype=probs.dtype)
    rows = max(1, _BLOCK_ELEMENTS // (m * probs.shape[2]))
    for start in range(0, probs.shape[0], rows):
        block = torch.einsum("mk,ukc->umc", samples, probs[start:start + rows]) / samples.shape[1]
        terms = -torch.special.xlogy(block, block) / q[None, :, None]       # [u, M, C]
        out[start:start + rows] = terms.sum(dim=(1, 2)) / m
    return out


def sample_configurations(batch_probs: torch.Tensor, draws_per_sample: int,
                          generator: torch.Generator) -> torch.Tensor:
    """Draw label configurations of the batch and their probability under every MC sample.

    Args:
        batch_probs: ``[n, K, C]`` MC samples of the batch's n candidates, in pick order.
        draws_per_sample: S, configurations drawn from each ``P(y_A | w_k)``.
        generator: the source of the draws (one ``torch.multinomial`` call on the
            ``[n K, C]`` rows, the layout baal and batchbald_redux use, so that the same
            generator state gives the same draws).

    Returns:
        ``[K S, K]``: row ``k' S + s`` is the s-th configuration drawn from sample ``k'``,
        column ``k`` its probability ``prod_a p(y_a | w_k)`` under sample ``k``.
    """
    n, k, c = batch_probs.shape
    choices = torch.multinomial(batch_probs.reshape(n * k, c), draws_per_sample, replacement=True,
                                generator=generator).reshape(n, k, draws_per_sample)
    # Accumulate log-probabilities one batch member at a time: [K, K, S], not [n, K, K, S].
    log_joint = torch.zeros(k, k, draws_per_sample, dtype=batch_probs.dtype)
    for member in range(n):
        # [K (model k), K (drawn from k'), S]: p(y_member = choice[k', s] | w_k)
        gathered = torch.gather(batch_probs[member][:, None, :].expand(k, k, c), 2,
                                choices[member][None, :, :].expand(k, k, draws_per_sample))
        log_joint += torch.log(gathered)
    return log_joint.exp().reshape(k, k * draws_per_sample).T.contiguous()       # [K S, K]


@torch.inference_mode()
def batchbald(mc_probs, budget: int, *, joint_samples: int = 10000, max_exact: int | None = None,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Greedy BatchBALD selection.

    Args:
        mc_probs: ``[K, U, C]`` MC-dropout class probabilities of the U candidates (K samples).
        budget: how many candidates to pick (at most U).
        joint_samples: M, the configurations the sampled estimator draws (``M // K`` per MC
            sample, at least one).
        max_exact: the largest number of label configurations ``C^n`` of the batch so far for
            which the joint entropy is computed exactly (default: ``joint_samples``, as
            batchbald_redux; 1 samples from the second pick on, as baal does).
        seed: seeds the draws of the sampled estimator.

    Returns:
        (positions int64 ``[budget]`` into the candidates in pick order, float64 ``[budget]``
        the batch's estimated mutual information ``I(y_1..y_i; w)`` after each pick, in nats).
    """
    probs = torch.as_tensor(mc_probs).detach().to("cpu", torch.float64)
    if probs.ndim != 3:
        raise ValueError("batchbald needs one class distribution per candidate and MC sample, "
                         f"[K, U, C]; got {tuple(probs.shape)}")
    probs = probs.permute(1, 0, 2).contiguous()                                  # [U, K, C]
    n_candidates, k, c = probs.shape
    budget = int(budget)
    if budget > n_candidates:
        raise ValueError(f"budget ({budget}) exceeds the number of candidates ({n_candidates})")
    if joint_samples < 1:
        raise ValueError(f"joint_samples must be >= 1, got {joint_samples}")
    max_exact = joint_samples if max_exact is None else int(max_exact)
    draws = max(1, joint_samples // k)
    generator = torch.Generator().manual_seed(int(seed))

    conditional = conditional_entropies(probs)                                   # [U]
    picked = torch.zeros(n_candidates, dtype=torch.bool)
    picks: list[int] = []
    values: list[float] = []
    joint: torch.Tensor | None = torch.ones(1, k, dtype=torch.float64)  # exact P(y_A | w_k)
    for _ in range(budget):
        if joint is not None:
            entropy = exact_joint_entropies(joint, probs)                        # [U]
        else:
            samples = sample_configurations(probs[picks], draws, generator)      # [K S, K]
            entropy = sampled_joint_entropies(samples, probs)                    # [U]
        # I(y_A, y; w) = H(y_A, y) - sum over A and y of E_w H(. | w)
        mutual = entropy - conditional - conditional[picks].sum()
        mutual[picked] = -torch.inf
        best = int(torch.argmax(mutual))   # first maximum: the lowest position on ties
        picks.append(best)
        values.append(float(mutual[best]))
        picked[best] = True
        if joint is not None and c ** len(picks) <= max_exact:
            # [M, K] x [K, C] -> [M C, K]: configuration m C + y of the grown batch
            joint = (joint[:, :, None] * probs[best][None, :, :]).permute(0, 2, 1).reshape(-1, k)
        else:
            joint = None   # sampled from now on: the batch only grows
    return np.asarray(picks, dtype=np.int64), np.asarray(values, dtype=np.float64)
