"""MC-dropout sampler: same draws as naive full passes, prefix run once, modes restored."""

import pytest
import torch
from torch import nn

from active_learning.strategies.mc_dropout import (
    MCDropoutSampler,
    has_dropout,
    mc_dropout_mode,
    mc_dropout_predict,
)


class CallCounter(nn.Module):
    """Identity that counts its forward calls (dropout-free, so the sampler keeps it opaque)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x


class HeadDropoutNet(nn.Module):
    """Conv features -> dropout -> linear classifier (dropout right before the classifier)."""

    def __init__(self, n_classes: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.prefix_counter = CallCounter()
        self.drop = nn.Dropout(0.5)
        self.suffix_counter = CallCounter()
        self.fc = nn.Linear(8, n_classes)

    def forward(self, x):
        x = self.prefix_counter(self.features(x).flatten(1))  # [B, 8]
        return self.fc(self.suffix_counter(self.drop(x)))  # [B, n_classes]


class Block(nn.Module):
    """Residual block; with `p` a Dropout2d between its convs (so the block is traced through)."""

    def __init__(self, c: int, p: float | None = None) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.drop = nn.Dropout2d(p) if p is not None else nn.Identity()
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.drop(out)))
        out += x  # in place on the stochastic branch; x (the skip) may be a cached value
        return self.relu(out)


class ResidualDropoutNet(nn.Module):
    """Small residual conv net with BatchNorm and dropout after each stage and inside a block."""

    def __init__(self, c: int = 6, n_classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.counter = CallCounter()
        self.stage1 = Block(c)
        self.drop1 = nn.Dropout2d(0.3, inplace=True)  # mutates a cached value: must be copied
        self.stage2 = Block(c, p=0.2)
        self.drop2 = nn.Dropout(0.3)
        self.stage3 = Block(c)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n_classes))

    def forward(self, x):
        x = self.stage1(self.counter(self.stem(x)))
        x = self.stage2(self.drop1(x))
        x = self.stage3(self.drop2(x))
        return self.head(x)


class DataDependentNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.drop, self.fc2 = nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3)

    def forward(self, x):
        h = self.fc1(x)
        if h.mean() > 0:  # a Python branch on a tensor value: fx cannot trace this
            h = h * 2
        return self.fc2(self.drop(h))


def _randomise_batchnorm(model: nn.Module) -> None:
    """Non-trivial running statistics, so BatchNorm in train mode would give other outputs."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _naive(model: nn.Module, x: torch.Tensor, n_samples: int, seed: int) -> torch.Tensor:
    """Reference: T full forward passes with only dropout active -> [T, B, ...]."""
    torch.manual_seed(seed)
    with mc_dropout_mode(model), torch.inference_mode():
        return torch.stack([model(x) for _ in range(n_samples)])


@pytest.mark.parametrize("make_model", [HeadDropoutNet, ResidualDropoutNet])
def test_cached_prefix_matches_naive_passes_exactly(make_model):
    torch.manual_seed(0)
    model = make_model()
    _randomise_batchnorm(model)
    x = torch.randn(3, 3, 8, 8)
    sampler = MCDropoutSampler(model)
    assert sampler.uses_cached_prefix
    expected = _naive(model, x, n_samples=6, seed=123)
    torch.manual_seed(123)
    got = sampler.sample(x, 6)
    assert got.shape == expected.shape == (6, 3, expected.shape[-1])
    assert torch.equal(got, expected)
    # The passes really differ (dropout was active) ...
    assert not torch.equal(got[0], got[1])
    # ... and a second call on the same sampler gives the same again (cache not corrupted).
    torch.manual_seed(123)
    assert torch.equal(sampler.sample(x, 6), expected)


def test_prefix_runs_once_and_suffix_t_times():
    model = HeadDropoutNet()
    sampler = MCDropoutSampler(model)
    sampler.sample(torch.randn(2, 3, 8, 8), n_samples=10)
    assert model.prefix_counter.calls == 1
    assert model.suffix_counter.calls == 10
    sampler.sample(torch.randn(2, 3, 8, 8), n_samples=10, batch_samples=True)
    assert model.prefix_counter.calls == 2
    assert model.suffix_counter.calls == 11  # the T passes ran as one [T*B] batch

    deep = ResidualDropoutNet()
    MCDropoutSampler(deep).sample(torch.randn(2, 3, 8, 8), n_samples=7)
    assert deep.counter.calls == 1


def test_modes_and_batchnorm_stats_restored():
    model = ResidualDropoutNet()
    _randomise_batchnorm(model)
    model.train()
    model.stage3.eval()  # a mixed state must come back as it was
    flags = {name: m.training for name, m in model.named_modules()}
    stats = {k: v.clone() for k, v in model.state_dict().items()}

    sampler = MCDropoutSampler(model)
    sampler.sample(torch.randn(4, 3, 8, 8), n_samples=5)
    sampler.sample(torch.randn(4, 3, 8, 8), n_samples=5, batch_samples=True)

    assert {name: m.training for name, m in model.named_modules()} == flags
    for k, v in model.state_dict().items():
        assert torch.equal(v, stats[k]), k  # running_mean/var and num_batches_tracked untouched


def test_mc_dropout_mode_restores_after_exception():
    model = ResidualDropoutNet().train()
    with pytest.raises(RuntimeError, match="boom"):
        with mc_dropout_mode(model):
            assert not model.stage1.bn1.training and model.drop1.training
            raise RuntimeError("boom")
    assert all(m.training for m in model.modules())


def test_batched_samples_match_unbatched_statistically():
    torch.manual_seed(0)
    model = HeadDropoutNet(n_classes=3)
    _randomise_batchnorm(model)
    x = torch.randn(4, 3, 8, 8)
    sampler = MCDropoutSampler(model)
    n = 4000
    plain = sampler.sample(x, n)  # [T, B, C]
    batched = sampler.sample(x, n, batch_samples=True)  # [T, B, C]
    assert batched.shape == plain.shape == (n, 4, 3)
    # Dropout is followed only by a linear layer, so the expected output is the eval output:
    # this also checks that sample t of image b lands at [t, b] after the [T*B] reshape.
    with torch.inference_mode():
        model.eval()
        eval_out = model(x)  # [B, C]
    std = plain.std(dim=0)  # [B, C]
    tol = 5 * std / n**0.5 + 1e-6  # 5 standard errors of the mean
    assert ((plain.mean(0) - eval_out).abs() <= tol).all()
    assert ((batched.mean(0) - eval_out).abs() <= tol).all()
    ratio = batched.var(0) / plain.var(0)
    assert ((ratio > 0.85) & (ratio < 1.15)).all()


def test_fallback_on_data_dependent_control_flow():
    model = DataDependentNet()
    with pytest.warns(RuntimeWarning, match="could not trace"):
        sampler = MCDropoutSampler(model)
    assert not sampler.uses_cached_prefix
    x = torch.randn(5, 4)
    out = sampler.sample(x, 7, output_fn=lambda y: y.softmax(dim=1))
    assert out.shape == (7, 5, 3)
    torch.testing.assert_close(out.sum(dim=2), torch.ones(7, 5))
    assert sampler.sample(x, 7, batch_samples=True).shape == (7, 5, 3)
    expected = _naive(model, x, 7, seed=5)
    torch.manual_seed(5)
    assert torch.equal(sampler.sample(x, 7), expected)


def test_model_without_dropout_raises():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert not has_dropout(model)
    with pytest.raises(ValueError, match="no dropout"):
        MCDropoutSampler(model)
    with pytest.raises(ValueError, match="no dropout"):
        mc_dropout_predict(model, torch.randn(2, 4))


def test_output_fn_and_dict_outputs():
    class DictOut(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.drop = nn.Conv2d(3, 4, 1), nn.Dropout2d(0.5)

        def forward(self, x):
            return {"out": self.drop(self.conv(x))}  # [B, 4, H, W], like torchvision segmentation

    model, x = DictOut(), torch.randn(2, 3, 5, 5)
    probs = mc_dropout_predict(model, x, n_samples=3, output_fn=lambda o: o["out"].softmax(1))
    assert probs.shape == (3, 2, 4, 5, 5)
    torch.testing.assert_close(probs.sum(2), torch.ones(3, 2, 5, 5))
    with pytest.raises(TypeError, match="output_fn"):
        mc_dropout_predict(model, x, n_samples=3)


def test_bad_arguments():
    sampler = MCDropoutSampler(HeadDropoutNet())
    with pytest.raises(ValueError, match="n_samples"):
        sampler.sample(torch.randn(2, 3, 8, 8), 0)
    with pytest.raises(ValueError, match="inputs"):
        sampler.sample([1.0, 2.0], 3)


def test_replaced_submodule_is_picked_up():
    model = HeadDropoutNet(n_classes=4)
    sampler = MCDropoutSampler(model)
    model.fc = nn.Linear(8, 9)  # e.g. a new head for another label set
    assert sampler.sample(torch.randn(2, 3, 8, 8), 3).shape == (3, 2, 9)


def test_inplace_op_after_dropout_read_keeps_eager_order():
    class LateInplace(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.drop, self.fc2 = nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 6)

        def forward(self, x):
            h = self.fc1(x)
            d = self.drop(h)  # reads h before ...
            h.relu_()  # ... a deterministic in-place op changes it; hoisting it would be wrong
            return self.fc2(d) + h

    torch.manual_seed(0)
    model, x = LateInplace(), torch.randn(3, 4)
    sampler = MCDropoutSampler(model)
    assert sampler.uses_cached_prefix
    expected = _naive(model, x, 5, seed=9)
    torch.manual_seed(9)
    assert torch.equal(sampler.sample(x, 5), expected)
