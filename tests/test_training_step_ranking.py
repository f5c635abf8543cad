"""The loop's own training step with Learning Loss's companion (``BaseTaskAdapter.train_one_epoch``
with a ``LossPredictionCompanion``): the ranking loss stops reaching the backbone from
``detach_epoch`` on, and it enters the training loss scaled by lambda. Expected values are computed
here by hand on copies of the same model."""
from __future__ import annotations

import copy

import pytest
import torch

from active_learning.loop.config import LoopConfig
from active_learning.strategies.loss_prediction import (
    LossPredictionCompanion,
    LossPredictionLoss,
    LossPredictionModule,
)
from toy_adapters import ToyClassificationAdapter, make_blobs

CPU = torch.device("cpu")
DETACH_EPOCH = 3


class RankingOnlyAdapter(ToyClassificationAdapter):
    """A task loss that moves nothing (0 x the outputs) and real per-sample losses, detached:
    the only thing that can give the backbone a gradient is the ranking loss, through the
    feature maps the loss module reads."""

    def batch_loss(self, outputs, targets):
        losses = self.per_sample_loss(outputs, targets)
        return 0 * outputs.sum(), losses.detach()


def _batch(n: int = 8):
    inputs, targets = make_blobs(n, 3, seed=11)
    return [(inputs, targets)]      # a loader of one batch


def _setup(adapter, seed: int = 0):
    torch.manual_seed(seed)
    model = adapter.build_model()
    model.dropout.p = 0.0           # deterministic forward passes (the reference repeats them)
    module = LossPredictionModule([8, 16], width=16)
    return model, module


def _flat(parameters) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in parameters])


def _backbone(model):
    """The stages whose maps the loss module reads (the head is not on that path)."""
    return list(model.stage1.parameters()) + list(model.stage2.parameters())


@pytest.mark.parametrize("epoch", [DETACH_EPOCH, DETACH_EPOCH + 4])
def test_from_the_detach_epoch_on_the_ranking_loss_leaves_the_backbone_alone(epoch):
    adapter = RankingOnlyAdapter()
    model, module = _setup(adapter)
    model_before, module_before = _flat(model.parameters()), _flat(module.parameters())
    optimizer = torch.optim.SGD(list(model.parameters()) + list(module.parameters()), lr=0.5)
    config = LoopConfig(epochs=10, progress=False)
    companion = LossPredictionCompanion(module, lamda=1.0, margin=1.0, detach_from=DETACH_EPOCH)
    stats = adapter.train_one_epoch(model, companion, _batch(), optimizer, epoch=epoch,
                                    config=config, device=CPU)
    assert stats["ranking_loss"] > 0.1 and stats["task_loss"] == 0.0
    for parameter in model.parameters():
        assert parameter.grad is None or not parameter.grad.any()
    torch.testing.assert_close(_flat(model.parameters()), model_before, rtol=0, atol=0)
    # The loss module itself did learn from the ranking loss.
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert (_flat(module.parameters()) - module_before).abs().max() > 1e-4


@pytest.mark.parametrize("epoch", [0, DETACH_EPOCH - 1])
def test_before_the_detach_epoch_the_ranking_loss_reaches_the_backbone(epoch):
    adapter = RankingOnlyAdapter()
    model, module = _setup(adapter)
    before = _flat(_backbone(model))
    optimizer = torch.optim.SGD(list(model.parameters()) + list(module.parameters()), lr=0.5)
    config = LoopConfig(epochs=10, progress=False)
    companion = LossPredictionCompanion(module, lamda=1.0, margin=1.0, detach_from=DETACH_EPOCH)
    adapter.train_one_epoch(model, companion, _batch(), optimizer, epoch=epoch, config=config,
                            device=CPU)
    grads = torch.cat([p.grad.flatten() for p in _backbone(model)])
    assert grads.abs().sum() > 1e-4
    assert (_flat(_backbone(model)) - before).abs().max() > 1e-5
    assert not model.head.weight.grad.any()      # the task loss gave nothing, as designed


def _hand_ranking_loss(predicted: torch.Tensor, losses: torch.Tensor, margin: float):
    """Yoo & Kweon's pairwise loss: pair sample i with sample B-1-i, hinge
    max(0, -sign(l_i - l_j) (lhat_i - lhat_j) + margin), mean over the B/2 pairs."""
    batch = predicted.shape[0]
    terms = []
    for i in range(batch // 2):
        j = batch - 1 - i
        sign = 1.0 if losses[i].item() > losses[j].item() else -1.0
        terms.append(torch.clamp(-sign * (predicted[i] - predicted[j]) + margin, min=0))
    return sum(terms) / len(terms)


def test_the_ranking_loss_enters_the_training_loss_scaled_by_lambda():
    lamda, margin = 0.25, 1.0
    adapter = ToyClassificationAdapter()
    model, module = _setup(adapter)
    [(inputs, targets)] = _batch()

    # The reference: the same forward pass on copies, the loss written out by hand.
    ref_model, ref_module = copy.deepcopy(model), copy.deepcopy(module)
    ref_model.train()
    ref_module.train()
    logits, features = ref_model.forward_intermediates(inputs)
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_sample = -log_probs[torch.arange(len(targets)), targets]               # [B]
    task_loss = per_sample.mean()
    rank = _hand_ranking_loss(ref_module(features), per_sample.detach(), margin)
    torch.testing.assert_close(rank, LossPredictionLoss(margin)(ref_module(features), per_sample))
    parameters = list(ref_model.parameters()) + list(ref_module.parameters())
    expected_total = task_loss + lamda * rank
    expected = torch.autograd.grad(expected_total, parameters, retain_graph=True)
    with_lamda_1 = torch.autograd.grad(task_loss + rank, parameters)
    assert rank.item() > 0.1
    # lambda matters here: the backbone's gradient with lambda = 1 is visibly another one.
    gap = max((a - b).abs().max().item() for a, b in zip(expected, with_lamda_1))
    assert gap > 1e-3

    optimizer = torch.optim.SGD(list(model.parameters()) + list(module.parameters()), lr=1.0)
    config = LoopConfig(epochs=10, progress=False)
    companion = LossPredictionCompanion(module, lamda=lamda, margin=margin,
                                        detach_from=DETACH_EPOCH)
    stats = adapter.train_one_epoch(model, companion, [(inputs, targets)], optimizer, epoch=0,
                                    config=config, device=CPU)
    assert stats["task_loss"] == pytest.approx(task_loss.item(), rel=1e-5)
    assert stats["ranking_loss"] == pytest.approx(rank.item(), rel=1e-5)
    assert stats["loss"] == pytest.approx(task_loss.item() + 0.25 * rank.item(), rel=1e-5)
    trained = list(model.parameters()) + list(module.parameters())
    for parameter, grad in zip(trained, expected):
        torch.testing.assert_close(parameter.grad, grad, rtol=1e-4, atol=1e-6)
