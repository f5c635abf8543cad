"""active_learning.files.weights: reading weights files and loading them into a model, and the four task
models that use it. Every file is written here with torch.save; nothing is downloaded."""
from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from active_learning.errors import UserError, WeightsError
from active_learning.files.weights import (
    load_state_dict_checked,
    load_weights_file,
    read_state_dict,
)


class Tiny(nn.Module):
    def __init__(self, width: int = 4, classes: int = 2) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(3, width, 7), nn.BatchNorm2d(width))
        self.head = nn.Linear(width, classes)


def _randomised(module: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    return module


def _assert_same(actual: dict, expected: dict) -> None:
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


def _save(obj, path) -> str:
    torch.save(obj, path)
    return str(path)


@pytest.fixture
def source() -> Tiny:
    return _randomised(Tiny(), seed=1)


def test_the_error_is_a_user_error_and_a_value_error():
    assert issubclass(WeightsError, UserError) and issubclass(WeightsError, ValueError)


def test_a_missing_file_and_a_folder_name_the_flag_and_the_file(tmp_path):
    with pytest.raises(WeightsError) as error:
        read_state_dict(tmp_path / "nope.pt", flag="--resume")
    assert str(error.value) == f"--resume file {tmp_path / 'nope.pt'}: no such file"
    with pytest.raises(WeightsError, match=f"--weights file {tmp_path}: is a folder"):
        read_state_dict(tmp_path, flag="--weights")


def _unreadable_files(folder, source: Tiny) -> dict[str, str]:
    good = _save(source.state_dict(), folder / "good.pt")
    data = open(good, "rb").read()
    paths = {name: str(folder / f"{name}.pt") for name in
             ("text", "random", "truncated", "empty", "pickle", "numpy", "zip")}
    open(paths["text"], "w").write("conv.weight = [1, 2, 3]\n")
    open(paths["random"], "wb").write(np.random.default_rng(0).bytes(300))
    open(paths["truncated"], "wb").write(data[: len(data) // 2])
    open(paths["empty"], "wb").write(b"")
    with open(paths["pickle"], "wb") as handle:
        pickle.dump({"weight": [1.0, 2.0]}, handle, protocol=4)
    torch.save({"weight": np.zeros(3)}, paths["numpy"])    # not loadable with weights_only=True
    with zipfile.ZipFile(paths["zip"], "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")
    return paths


def test_a_file_that_is_not_a_checkpoint_is_one_line_without_torchs_advice(tmp_path, source,
                                                                           recwarn):
    for name, path in _unreadable_files(tmp_path, source).items():
        with pytest.raises(WeightsError) as error:
            read_state_dict(path, flag="--pretrained")
        message = str(error.value)
        assert message.startswith(f"--pretrained file {path}: "), name
        assert "\n" not in message and "weights_only" not in message, (name, message)
        assert error.value.__cause__ is None and error.value.__suppress_context__, name
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]   # torch's noise


@pytest.mark.parametrize("wrap", [
    lambda state: state,
    lambda state: {"state_dict": state, "epoch": 3},
    lambda state: {"model": state, "cycle": 2, "loss_module": None},
    lambda state: {"net": state},
    lambda state: {"model": {"state_dict": state}, "optimizer": {"lr": 0.1}},
    lambda state: {"state_dict": {f"module.{key}": value for key, value in state.items()}},
    lambda state: {f"module.module.{key}": value for key, value in state.items()},
], ids=["plain", "state_dict", "model", "net", "nested", "data_parallel", "ddp_of_data_parallel"])
def test_checkpoint_wrappers_and_module_prefixes_give_the_plain_tensors(tmp_path, source, wrap):
    path = _save(wrap(source.state_dict()), tmp_path / "w.pt")
    _assert_same(read_state_dict(path), source.state_dict())
    target = Tiny()
    assert load_weights_file(target, path) == sorted(source.state_dict())
    _assert_same(target.state_dict(), source.state_dict())


@pytest.mark.parametrize("content, expected", [
    ([torch.zeros(2)], "holds a list, not a state dict"),
    (torch.zeros(2), "holds a Tensor, not a state dict"),
    ({"epoch": 3, "lr": 0.1}, "holds no state dict"),
    ({}, "holds no state dict"),
    ({"model": {"conv.weight": torch.zeros(1), "step": 4}}, "it has keys conv.weight, step"),
])
def test_a_file_without_a_tensor_dict_is_one_error(tmp_path, content, expected):
    path = _save(content, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match=expected) as error:
        read_state_dict(path, flag="--basenet")
    assert str(error.value).startswith(f"--basenet file {path}: ")
    assert "\n" not in str(error.value)


def test_a_key_with_and_without_module_prefix_is_refused(tmp_path):
    path = _save({"a": torch.zeros(1), "module.a": torch.ones(1)}, tmp_path / "w.pt")
    with pytest.raises(WeightsError, match="'a' both with and without"):
        read_state_dict(path)


def test_a_shape_mismatch_names_the_layer_and_both_shapes(tmp_path):
    path = _save(_randomised(Tiny(width=16), 2).state_dict(), tmp_path / "w.pt")
    target = Tiny(width=32)
    before = {key: value.clone() for key, value in target.state_dict().items()}
    with pytest.raises(WeightsError) as error:
        load_weights_file(target, path, flag="--weights", hint="same --width?")
    message = str(error.value)
    assert message.startswith(f"--weights file {path} does not fit the model: shape mismatches (")
    assert "stage1.0.weight: file (16, 3, 7, 7) vs model (32, 3, 7, 7)" in message
    assert "shape mismatches (7): " in message and "head.weight" not in message   # 5 of 7 shown
    assert message.endswith("(same --width?)") and "\n" not in message
    assert "missing" not in message and "unexpected" not in message
    _assert_same(target.state_dict(), before)          # nothing loaded on failure


def test_missing_and_unexpected_keys_are_named_with_their_count(tmp_path, source):
    state = {key: value for key, value in source.state_dict().items()
             if not key.startswith("head.")}
    state.update({f"extra.{index}.weight": torch.zeros(1) for index in range(7)})
    path = _save(state, tmp_path / "w.pt")
    with pytest.raises(WeightsError) as error:
        load_weights_file(Tiny(), path)
    message = str(error.value)
    assert "missing keys (2): head.weight, head.bias" in message
    assert ("unexpected keys (7): extra.0.weight, extra.1.weight, extra.2.weight, extra.3.weight, "
            "extra.4.weight, ...") in message
    assert "extra.5.weight" not in message and "shape" not in message


def test_non_strict_loads_the_shared_keys_and_leaves_the_rest(tmp_path, source):
    state = {key: value for key, value in source.state_dict().items() if key.startswith("stage1.")}
    state["classifier.weight"] = torch.zeros(1000, 4)         # an ImageNet head the model lacks
    target = _randomised(Tiny(), seed=5)
    head_before = {key: value.clone() for key, value in target.state_dict().items()
                   if key.startswith("head.")}
    loaded = load_state_dict_checked(target, state, path="backbone.pt", flag="--pretrained",
                                     strict=False)
    assert loaded == sorted(key for key in state if key.startswith("stage1."))
    after = target.state_dict()
    for key in loaded:
        assert torch.equal(after[key], source.state_dict()[key]), key
    for key, value in head_before.items():
        assert torch.equal(after[key], value), key


def test_non_strict_still_refuses_a_shape_mismatch_and_a_file_sharing_no_key():
    target = Tiny(width=4)
    shapes = r"stage1\.0\.weight: file \(8, 3, 7, 7\) vs model \(4, 3, 7, 7\)"
    with pytest.raises(WeightsError, match=shapes):
        load_state_dict_checked(target, {"stage1.0.weight": torch.zeros(8, 3, 7, 7)},
                                path="b.pt", flag="--pretrained", strict=False)
    with pytest.raises(WeightsError, match="--pretrained file b.pt shares no layer with the model"):
        load_state_dict_checked(target, {"fc.weight": torch.zeros(2, 2)}, path="b.pt",
                                flag="--pretrained", strict=False)


# One test per task model: a DataParallel checkpoint ({"state_dict": {"module.*": ...}}) loads.

def _data_parallel_checkpoint(model: nn.Module, path) -> str:
    state = {f"module.{key}": value for key, value in model.state_dict().items()}
    return _save({"state_dict": state, "epoch": 1}, path)


def test_classification_model_loads_a_data_parallel_checkpoint(tmp_path):
    from classification.model import build_model

    source = _randomised(build_model(3, 1, width=4), 3)
    path = _data_parallel_checkpoint(source, tmp_path / "w.pt")
    _assert_same(build_model(3, 1, width=4, weights_path=path).state_dict(), source.state_dict())
    with pytest.raises(WeightsError, match="--weights file .*width 8, 3 classes"):
        build_model(3, 1, width=8, weights_path=path)


def test_segmentation_model_loads_a_data_parallel_checkpoint(tmp_path):
    from segmentation.model import build_model

    source = _randomised(build_model(3, width=0.0625), 4)
    path = _data_parallel_checkpoint(source, tmp_path / "w.pt")
    _assert_same(build_model(3, width=0.0625, weights_path=path).state_dict(), source.state_dict())
    with pytest.raises(WeightsError, match=r"--weights file .*classifier\.weight: file \(3, "):
        build_model(4, width=0.0625, weights_path=path)
    with pytest.raises(WeightsError, match="no such file"):
        build_model(3, width=0.0625, weights_path=os.fspath(tmp_path / "missing.pt"))


def test_detection_model_loads_a_data_parallel_checkpoint(tmp_path):
    from object_detection.model import build_model

    source = _randomised(build_model(3, width=0.0625), 5)
    path = _data_parallel_checkpoint(source, tmp_path / "w.pt")
    _assert_same(build_model(3, width=0.0625, weights=path).state_dict(), source.state_dict())
    backbone = build_model(3, width=0.0625, basenet=path).state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(backbone[key], value) == key.startswith("backbone."), key


def test_pose_model_loads_a_data_parallel_checkpoint(tmp_path):
    from human_pose_estimation.model import build_model

    source = _randomised(build_model("hrnet_w18_small", num_joints=3), 6)
    path = _data_parallel_checkpoint(source, tmp_path / "w.pt")
    _assert_same(build_model("hrnet_w18_small", num_joints=3, weights=path).state_dict(),
                 source.state_dict())
    backbone = build_model("hrnet_w18_small", num_joints=3, pretrained=path).state_dict()
    for key, value in source.state_dict().items():
        assert torch.equal(backbone[key], value) == key.startswith("backbone."), key
