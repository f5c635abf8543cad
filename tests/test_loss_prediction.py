"""Tests for active_learning.strategies.loss_prediction (Learning Loss for Active Learning)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from active_learning.strategies.loss_prediction import (
    ActiveLearning,
    FeatureTap,
    LossPredictionLoss,
    LossPredictionModule,
)

RESNET_LAYERS = ["layer1", "layer2", "layer3", "layer4"]


def _resnet18() -> nn.Module:
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10)


class TinyOriginalApiNet(nn.Module):
    """A small conv net exposing the original project's feature API."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(6, 3)
        self._features: list[torch.Tensor] = []

    def get_active_learning_feature_channel_counts(self) -> list[int]:
        return [4, 6]

    def get_active_learning_features(self) -> list[torch.Tensor]:
        return self._features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.block1(x)  # [B, 4, H, W]
        f2 = self.block2(f1)  # [B, 6, H/2, W/2]
        self._features = [f1, f2]
        return self.fc(f2.mean((2, 3)))  # [B, 3]


class FlattenNet(nn.Module):
    """'head' contains a Conv2d (so static inference succeeds) but outputs a 2-D tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 5, 3, padding=1)
        self.head = nn.Sequential(nn.Conv2d(5, 2, 1), nn.Flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


# ---------------------------------------------------------------- LossPredictionLoss

PRED = [0.2, 0.5, 0.1, 0.9]
TARGET = [1.0, 3.0, 2.0, 0.5]
# By hand, pairs (0,3) and (1,2), margin 1:
#   (0,3): l0=1.0 > l3=0.5 -> sign +1; lhat0-lhat3 = -0.7; max(0, 0.7 + 1) = 1.7
#   (1,2): l1=3.0 > l2=2.0 -> sign +1; lhat1-lhat2 =  0.4; max(0, -0.4 + 1) = 0.6
#   mean = 1.15
EXPECTED = 1.15


def test_loss_hand_computed() -> None:
    loss = LossPredictionLoss()(torch.tensor(PRED), torch.tensor(TARGET))
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(EXPECTED)


def test_loss_negative_sign_pair() -> None:
    # l0=0.5 < l1=4.0 -> sign -1; lhat0-lhat1 = 0.3 -> max(0, 0.3 + 1) = 1.3 (one pair).
    loss = LossPredictionLoss()(torch.tensor([0.8, 0.5]), torch.tensor([0.5, 4.0]))
    assert loss.item() == pytest.approx(1.3)


def test_loss_ties_count_as_negative_sign() -> None:
    # l0 == l1 -> sign -1; lhat0-lhat1 = 0.2 -> max(0, 0.2 + 1) = 1.2.
    loss = LossPredictionLoss()(torch.tensor([0.3, 0.1]), torch.tensor([2.0, 2.0]))
    assert loss.item() == pytest.approx(1.2)


@pytest.mark.parametrize(
    "pred_shape, target_shape",
    [((4,), (4,)), ((4, 1), (4, 1)), ((4, 1), (4,)), ((4,), (4, 1))],
)
def test_loss_same_for_b_and_b1_shapes(pred_shape, target_shape) -> None:
    pred = torch.tensor(PRED).reshape(pred_shape)
    target = torch.tensor(TARGET).reshape(target_shape)
    loss = LossPredictionLoss()(pred, target)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(EXPECTED)


def test_loss_b1_against_b_does_not_broadcast_to_matrix() -> None:
    # The original project's bug: [B,1] - [B] broadcasts to [B,B], giving a different number.
    pred = torch.tensor(PRED).reshape(4, 1)
    target = torch.tensor(TARGET)
    buggy_target_diff = (target - target.flip(0))[:2]  # [2]
    buggy_pred_diff = (pred - pred.flip(0))[:2]  # [2, 1]
    sign = 2 * torch.sign(torch.clamp(buggy_target_diff, min=0)) - 1
    buggy = torch.clamp(1.0 - sign * buggy_pred_diff, min=0)  # [2, 2] — the bug
    assert buggy.shape == (2, 2)
    # The original normalised by input.size(0): sum of the 4 entries / 2 = 2 * 2.3 / 2.
    assert (buggy.sum() / buggy_pred_diff.size(0)).item() == pytest.approx(2.3)
    assert LossPredictionLoss()(pred, target).item() == pytest.approx(EXPECTED)


def test_loss_odd_batch_drops_last_sample() -> None:
    # B=5: pairs (0,3), (1,2); sample 4 is ignored whatever its values.
    loss_fn = LossPredictionLoss()
    for extra_pred, extra_target in [(100.0, -7.0), (-3.0, 50.0)]:
        pred = torch.tensor(PRED + [extra_pred])
        target = torch.tensor(TARGET + [extra_target])
        assert loss_fn(pred, target).item() == pytest.approx(EXPECTED)
    # B=3: pair (0,1); l0=1 < l1=3 -> sign -1; 0.2-0.5=-0.3 -> max(0, -0.3+1) = 0.7.
    assert loss_fn(torch.tensor([0.2, 0.5, 9.0]), torch.tensor([1.0, 3.0, 0.0])).item() == pytest.approx(0.7)


@pytest.mark.parametrize("margin, expected", [(0.0, 0.35), (0.3, 0.5), (2.0, 2.15)])
def test_loss_margin(margin: float, expected: float) -> None:
    # margin 0:   (0,3) 0.7,          (1,2) max(0,-0.4)=0  -> 0.35
    # margin 0.3: (0,3) 1.0,          (1,2) max(0,-0.1)=0  -> 0.5
    # margin 2:   (0,3) 2.7,          (1,2) 1.6            -> 2.15
    loss = LossPredictionLoss(margin=margin)(torch.tensor(PRED), torch.tensor(TARGET))
    assert loss.item() == pytest.approx(expected)


def test_loss_gradient_and_target_detached() -> None:
    pred = torch.tensor(PRED, requires_grad=True)
    target = torch.tensor(TARGET, requires_grad=True)
    LossPredictionLoss()(pred, target).backward()
    # Both hinges are active: d/dlhat_i = -1/2, d/dlhat_j = +1/2 per pair (mean over 2 pairs).
    assert torch.allclose(pred.grad, torch.tensor([-0.5, -0.5, 0.5, 0.5]))
    assert target.grad is None


def test_loss_rejects_bad_input() -> None:
    loss_fn = LossPredictionLoss()
    with pytest.raises(ValueError, match="at least 2"):
        loss_fn(torch.tensor([0.1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="disagree"):
        loss_fn(torch.zeros(4), torch.zeros(6))
    with pytest.raises(ValueError, match="disagree"):
        loss_fn(torch.zeros(4, 1), torch.zeros(3))
    with pytest.raises(ValueError, match="target_loss"):
        loss_fn(torch.zeros(4), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="loss_pred"):
        loss_fn(torch.zeros(2, 2, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="margin"):
        LossPredictionLoss(margin=-1.0)


# ---------------------------------------------------------------- LossPredictionModule


def test_module_shape_and_values_pool1() -> None:
    torch.manual_seed(0)
    module = LossPredictionModule([3, 5], pool_size=1, width=7)
    feats = [torch.randn(4, 3, 6, 6), torch.randn(4, 5, 3, 3)]
    out = module(feats)
    assert out.shape == (4,)
    # Independent formula: global mean -> linear -> relu, concat, linear.
    hidden = []
    for f, level in zip(feats, module.levels):
        lin = level[2]
        hidden.append(torch.relu(f.mean((2, 3)) @ lin.weight.T + lin.bias))  # [4, 7]
    expected = (torch.cat(hidden, 1) @ module.head.weight.T + module.head.bias)[:, 0]  # [4]
    assert torch.allclose(out, expected, atol=1e-6)


def test_module_pool2_linear_input_and_values() -> None:
    torch.manual_seed(1)
    module = LossPredictionModule([3, 8], pool_size=2, width=4)
    assert [level[2].in_features for level in module.levels] == [3 * 4, 8 * 4]
    assert module.head.in_features == 2 * 4
    feats = [torch.randn(2, 3, 4, 4), torch.randn(2, 8, 2, 2)]
    out = module(feats)
    assert out.shape == (2,)
    hidden = []
    for f, level in zip(feats, module.levels):
        b, c, h, w = f.shape
        pooled = f.reshape(b, c, 2, h // 2, 2, w // 2).mean((3, 5)).reshape(b, c * 4)  # [B, C*4]
        lin = level[2]
        hidden.append(torch.relu(pooled @ lin.weight.T + lin.bias))
    expected = (torch.cat(hidden, 1) @ module.head.weight.T + module.head.bias)[:, 0]
    assert torch.allclose(out, expected, atol=1e-6)


def test_module_rejects_wrong_features() -> None:
    module = LossPredictionModule([3, 5])
    with pytest.raises(ValueError, match="expected 2 feature maps"):
        module([torch.randn(2, 3, 4, 4)])
    with pytest.raises(ValueError, match=r"features\[1\].*5 channels"):
        module([torch.randn(2, 3, 4, 4), torch.randn(2, 6, 4, 4)])
    with pytest.raises(ValueError, match=r"features\[0\].*4-D"):
        module([torch.randn(2, 3), torch.randn(2, 5, 4, 4)])
    with pytest.raises(ValueError, match="feature_channels"):
        LossPredictionModule([])
    with pytest.raises(ValueError, match="pool_size"):
        LossPredictionModule([3], pool_size=0)


# ---------------------------------------------------------------- ActiveLearning, original API


def test_original_api_protocol() -> None:
    torch.manual_seed(0)
    wrapped = ActiveLearning(TinyOriginalApiNet(), width=8)
    assert wrapped.feature_channels == [4, 6]
    assert isinstance(wrapped.loss_module, LossPredictionModule)
    out, loss_pred = wrapped(torch.randn(3, 3, 8, 8))
    assert out.shape == (3, 3)
    assert loss_pred.shape == (3,)
    # The same value as running the module on the net's own features.
    assert torch.allclose(loss_pred, wrapped.loss_module(wrapped.net.get_active_learning_features()))


def test_original_api_missing_raises_type_error_explaining_both_options() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(TypeError) as info:
        ActiveLearning(net)
    message = str(info.value)
    assert "feature_layers" in message
    assert "get_active_learning_feature_channel_counts" in message
    assert "get_active_learning_features" in message


def test_original_api_example_input_checks_counts() -> None:
    net = TinyOriginalApiNet()
    net.get_active_learning_feature_channel_counts = lambda: [4, 7]  # wrong: block2 has 6
    with pytest.raises(ValueError, match="7 channels"):
        ActiveLearning(net, example_input=torch.randn(1, 3, 8, 8))


# ---------------------------------------------------------------- ActiveLearning, feature_layers


def test_feature_layers_resnet18_static_channels() -> None:
    wrapped = ActiveLearning(_resnet18(), feature_layers=RESNET_LAYERS, width=16)
    assert wrapped.feature_channels == [64, 128, 256, 512]
    out, loss_pred = wrapped(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert loss_pred.shape == (2,)
    assert wrapped.tap._captured == {}  # nothing kept alive after the forward


def test_feature_layers_example_input_measures_and_restores_modes() -> None:
    net = _resnet18()
    net.train()
    net.layer2.eval()  # a mixed state must come back exactly
    modes = {name: m.training for name, m in net.named_modules()}
    bn_stats = net.bn1.running_mean.clone()
    wrapped = ActiveLearning(net, feature_layers=RESNET_LAYERS, example_input=torch.randn(2, 3, 32, 32))
    assert wrapped.feature_channels == [64, 128, 256, 512]
    assert {name: m.training for name, m in net.named_modules()} == modes
    assert torch.equal(net.bn1.running_mean, bn_stats)  # the dry run was in eval mode


def test_feature_layers_unknown_name() -> None:
    with pytest.raises(ValueError, match="'layer9'") as info:
        ActiveLearning(_resnet18(), feature_layers=["layer1", "layer9"])
    assert "'conv1'" in str(info.value)  # lists some valid names


def test_feature_layers_non_4d_named_at_wrap_time() -> None:
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match="'fc'.*4-D"):
        ActiveLearning(_resnet18(), feature_layers=["layer1", "fc"], example_input=x)
    # Without example_input, 'fc' (no Conv2d / BatchNorm2d) asks for one.
    with pytest.raises(ValueError, match="'fc'.*example_input"):
        ActiveLearning(_resnet18(), feature_layers=["layer1", "fc"])
    with pytest.raises(ValueError, match="'head'.*4-D"):
        ActiveLearning(FlattenNet(), feature_layers=["head"], example_input=torch.randn(1, 3, 8, 8))


def test_feature_layers_non_4d_checked_every_forward() -> None:
    wrapped = ActiveLearning(FlattenNet(), feature_layers=["head"])  # static guess: 2 channels
    assert wrapped.feature_channels == [2]
    with pytest.raises(ValueError, match="'head'.*4-D"):
        wrapped(torch.randn(2, 3, 8, 8))
    assert wrapped.tap._captured == {}


def test_feature_layers_bad_lists() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ActiveLearning(_resnet18(), feature_layers=[])
    with pytest.raises(ValueError, match="duplicate"):
        ActiveLearning(_resnet18(), feature_layers=["layer1", "layer1"])
    with pytest.raises(ValueError, match="sequence of module names"):
        ActiveLearning(_resnet18(), feature_layers="layer1")


def test_feature_tap_only_records_when_armed_and_clears() -> None:
    net = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())
    tap = FeatureTap(net, ["0"])
    net(torch.randn(1, 3, 4, 4))  # not armed: must keep nothing alive
    assert tap._captured == {}
    with tap:
        net(torch.randn(1, 3, 4, 4))
    (f,) = tap.collect()
    assert f.shape == (1, 2, 4, 4)
    assert tap._captured == {}
    with pytest.raises(RuntimeError, match="did not run"):
        with tap:
            pass
        tap.collect()
    tap.remove()
    with tap:
        net(torch.randn(1, 3, 4, 4))
    assert tap._captured == {}


def test_inference_mode_and_deepcopy() -> None:
    wrapped = ActiveLearning(_resnet18(), feature_layers=RESNET_LAYERS, width=8).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        _, loss_pred = wrapped(x)
    assert loss_pred.shape == (2,)
    assert wrapped.tap._captured == {}
    # A deep copy (e.g. to re-initialise each cycle) taps its own net, not the original's.
    clone = copy.deepcopy(wrapped)
    with torch.inference_mode():
        _, clone_pred = clone(x)
    assert torch.allclose(clone_pred, loss_pred)
    assert clone.tap.modules[0] is clone.net.layer1


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("layers", [RESNET_LAYERS, None])
def test_gradient_reaches_backbone_unless_detached(layers) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    target = torch.tensor([0.3, 2.0, 1.0, 0.1])
    for detach in (False, True):
        net = _resnet18() if layers else TinyOriginalApiNet()
        wrapped = ActiveLearning(net, feature_layers=layers, width=8)
        _, loss_pred = wrapped(x, detach_features=detach)
        LossPredictionLoss()(loss_pred, target).backward()
        first_conv = net.conv1 if layers else net.block1[0]
        for name, p in wrapped.loss_module.named_parameters():
            assert p.grad is not None, name
            if name.endswith("weight"):
                assert p.grad.abs().sum() > 0, name
        # The ranking loss sees only differences lhat_i - lhat_j, in which the head's bias
        # cancels: its gradient is exactly zero (so are a level's bias entries whenever both
        # samples of every pair share that unit's ReLU state).
        assert torch.equal(wrapped.loss_module.head.bias.grad, torch.zeros(1))
        if detach:
            assert all(p.grad is None for p in net.parameters())
        else:
            assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_training_step_with_task_loss() -> None:
    """The whole recipe: per-sample task loss + ranking loss on the predicted loss."""
    torch.manual_seed(0)
    wrapped = ActiveLearning(TinyOriginalApiNet(), width=8)
    x, y = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    out, loss_pred = wrapped(x)
    per_sample = F.cross_entropy(out, y, reduction="none")  # [B]
    total = per_sample.mean() + LossPredictionLoss()(loss_pred, per_sample)
    total.backward()
    assert torch.isfinite(total)
    assert wrapped.net.fc.weight.grad.abs().sum() > 0
    assert wrapped.loss_module.head.weight.grad.abs().sum() > 0


def test_ranking_diagnostics_by_hand():
    from active_learning.strategies.loss_prediction import ranking_diagnostics

    true = [1.0, 2.0, 3.0, 4.0]
    assert ranking_diagnostics([10, 20, 30, 40], true) == pytest.approx({"ranking_accuracy": 1.0, "kendall_tau": 1.0})
    assert ranking_diagnostics([4, 3, 2, 1], true) == pytest.approx({"ranking_accuracy": 0.0, "kendall_tau": -1.0})
    # Pairs (i<j): (0,1) ok, (0,2) ok, (0,3) ok, (1,2) wrong, (1,3) ok, (2,3) ok -> 5/6; tau = (5-1)/6.
    result = ranking_diagnostics([1, 3, 2, 4], true)
    assert result["ranking_accuracy"] == pytest.approx(5 / 6)
    assert result["kendall_tau"] == pytest.approx(4 / 6)
    # A tie in the prediction counts one half; pairs with equal true losses are not counted.
    tied = ranking_diagnostics([1, 1, 2], [1.0, 2.0, 2.0])
    assert tied["ranking_accuracy"] == pytest.approx((0.5 + 1.0) / 2)


def test_ranking_diagnostics_of_random_scores_are_near_chance():
    from active_learning.strategies.loss_prediction import ranking_diagnostics

    generator = torch.Generator().manual_seed(0)
    result = ranking_diagnostics(torch.rand(3000, generator=generator), torch.rand(3000, generator=generator))
    assert abs(result["ranking_accuracy"] - 0.5) < 0.02 and abs(result["kendall_tau"]) < 0.04
