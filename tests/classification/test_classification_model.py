"""CifarResNet18: feature taps, one-pass intermediates, parameter count, fx tracing, weight loading."""

import math

import pytest
import torch
import torch.fx
from torch import nn

from active_learning.errors import WeightsError
from classification.model import CifarResNet18, build_model, feature_info


def _expected_params(num_classes: int, in_channels: int, width: int) -> int:
    """Brute-force count of a CIFAR ResNet-18 (BasicBlock [2, 2, 2, 2]), written from the architecture."""

    def conv3(cin, cout):
        return 9 * cin * cout

    def bn(c):
        return 2 * c

    def block(cin, cout):
        n = conv3(cin, cout) + bn(cout) + conv3(cout, cout) + bn(cout)
        if cin != cout:  # 1x1 projection shortcut + its batch norm
            n += cin * cout + bn(cout)
        return n

    total = conv3(in_channels, width) + bn(width)
    cin = width
    for mult in (1, 2, 4, 8):
        cout = width * mult
        total += block(cin, cout) + block(cout, cout)
        cin = cout
    return total + 8 * width * num_classes + num_classes


def test_feature_info_lists_four_stages():
    assert feature_info(64) == [
        {"name": "layer1", "channels": 64, "stride": 1},
        {"name": "layer2", "channels": 128, "stride": 2},
        {"name": "layer3", "channels": 256, "stride": 4},
        {"name": "layer4", "channels": 512, "stride": 8},
    ]
    assert CifarResNet18(width=16).feature_info == feature_info(16)


@pytest.mark.parametrize("in_channels,size", [(3, 32), (1, 28)])
def test_feature_maps_match_feature_info(in_channels, size):
    model = CifarResNet18(num_classes=7, in_channels=in_channels, width=8).eval()
    x = torch.randn(2, in_channels, size, size)
    logits, features, embedding = model.forward_intermediates(x)
    assert logits.shape == (2, 7)
    assert embedding.shape == (2, 64)
    assert len(features) == len(model.feature_info) == 4
    for fmap, info in zip(features, model.feature_info):
        side = math.ceil(size / info["stride"])  # 28 -> 28, 14, 7, 4 with padded stride-2 convs
        assert fmap.shape == (2, info["channels"], side, side), info


def test_forward_equals_intermediates_and_embedding_is_pooled_layer4():
    torch.manual_seed(0)
    model = CifarResNet18(num_classes=10, width=8, dropout=0.3).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits, features, embedding = model.forward_intermediates(x)
        torch.testing.assert_close(model(x), logits, rtol=0, atol=0)
        torch.testing.assert_close(embedding, features[-1].mean(dim=(2, 3)))
        torch.testing.assert_close(logits, embedding @ model.fc.weight.T + model.fc.bias)


def test_hooks_by_name_see_the_same_maps():
    model = CifarResNet18(width=8).eval()
    seen = {}
    modules = dict(model.named_modules())
    for info in model.feature_info:
        modules[info["name"]].register_forward_hook(lambda m, i, o, n=info["name"]: seen.__setitem__(n, o))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model(x)
        _, features, _ = model.forward_intermediates(x)
    for info, fmap in zip(model.feature_info, features):
        torch.testing.assert_close(seen[info["name"]], fmap)


def test_parameter_count_is_standard_cifar_resnet18():
    model = CifarResNet18(num_classes=10, in_channels=3, width=64)
    count = sum(p.numel() for p in model.parameters())
    assert count == 11_173_962 == _expected_params(10, 3, 64)


@pytest.mark.parametrize("num_classes,in_channels,width", [(10, 1, 8), (3, 3, 16)])
def test_parameter_count_formula_other_shapes(num_classes, in_channels, width):
    model = CifarResNet18(num_classes=num_classes, in_channels=in_channels, width=width)
    assert sum(p.numel() for p in model.parameters()) == _expected_params(num_classes, in_channels, width)


def test_stem_is_cifar_style():
    model = CifarResNet18(in_channels=1, width=8)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.in_channels == 1
    assert isinstance(model.maxpool, nn.Identity)


def test_fx_symbolic_trace_matches_eager():
    model = CifarResNet18(width=8).eval()
    traced = torch.fx.symbolic_trace(model)
    targets = {node.target for node in traced.graph.nodes if node.op == "call_module"}
    assert {"layer1.0.conv1", "layer4.1.bn2", "fc", "dropout"} <= targets
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))


def test_dropout_sits_before_fc_and_samples_in_train_mode():
    model = CifarResNet18(width=8, dropout=0.5)
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    names = [name for name, _ in model.named_children()]
    assert names.index("dropout") == names.index("fc") - 1
    assert isinstance(CifarResNet18(width=8).dropout, nn.Identity)

    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        _, _, embedding = model.forward_intermediates(x)
        model.dropout.train()  # MC dropout: only the dropout samples, batch norm stays in eval
        a, b = model(x), model(x)
        _, _, embedding2 = model.forward_intermediates(x)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(embedding, embedding2)  # the embedding is taken before dropout


def test_build_model_loads_local_weights(tmp_path):
    source = build_model(5, 1, width=8)
    source.eval()
    path = tmp_path / "w.pt"
    torch.save(source.state_dict(), path)
    nested = tmp_path / "ckpt.pt"
    torch.save({"model": source.state_dict(), "cycle": 3}, nested)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = source(x)
        for p in (path, str(nested)):
            loaded = build_model(5, 1, width=8, weights_path=p).eval()
            torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)


def test_build_model_weight_errors(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(WeightsError, match="nope.pt: no such file"):
        build_model(10, 3, width=8, weights_path=missing)
    other = tmp_path / "other.pt"
    torch.save(build_model(5, 3, width=8).state_dict(), other)
    with pytest.raises(ValueError, match=r"fc\.weight"):
        build_model(10, 3, width=8, weights_path=other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        build_model(10, 3, width=8, weights_path=junk)


@pytest.mark.parametrize(
    "kwargs,name",
    [({"num_classes": 0}, "num_classes"), ({"in_channels": 0}, "in_channels"), ({"width": 2.5}, "width"),
     ({"dropout": 1.0}, "dropout"), ({"dropout": -0.1}, "dropout")],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CifarResNet18(**kwargs)
