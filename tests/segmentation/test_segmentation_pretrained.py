"""fyu/drn's published DRN-D-22 files load into the right layers, from tiny files written under the
reference's key names into the per-test torch.hub cache (never downloaded)."""
from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn

from active_learning.errors import WeightsError
from seg_fixtures import DRN_D_22, TINY_ARGS, reference_state, write_tiny_cityscapes
from segmentation.build import build
from segmentation.model import DRNSegmentation, build_model
from segmentation.train import COMMAND, main, parse_args
from segmentation.weights import DRN_D_22_CITYSCAPES, DRN_D_22_IMAGENET, load_pretrained
from weights_cache import distinct_values, write_hub_checkpoint

IMAGENET = DRN_D_22_IMAGENET.filename
CITYSCAPES = DRN_D_22_CITYSCAPES.filename


def _pairs(model: nn.Module) -> list[tuple[str, nn.Conv2d, nn.BatchNorm2d | None]]:
    """(reference name, convolution, its BatchNorm) in DRN_D_22's order; the classifier last."""
    modules = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    pairs, position = [], 0
    for name, *_ in DRN_D_22[:-1]:
        pairs.append((name, modules[position], modules[position + 1]))
        position += 2
    pairs.append(("seg", modules[position], None))
    return pairs


def _bn(name: str) -> str:
    if name.endswith((".conv1", ".conv2")):
        return name[:-5] + "bn" + name[-1]
    return name[:-1] + "1"


def _assert_loaded(model: nn.Module, file: dict[str, torch.Tensor], prefix=lambda key: key,
                   classifier: bool = False) -> None:
    """Every convolution and BatchNorm holds the file tensor of its reference name."""
    for name, conv, bn in _pairs(model):
        if bn is None:
            loaded = torch.equal(conv.weight, file["seg.weight"])
            assert loaded == classifier, "the classifier"
            continue
        assert torch.equal(conv.weight, file[prefix(f"{name}.weight")]), name
        for key in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(bn, key), file[prefix(f"{_bn(name)}.{key}")]), \
                f"{_bn(name)}.{key}"


def test_fyu_imagenet_drn_d_22_loads_every_backbone_layer_and_leaves_the_classifier():
    file = distinct_values(reference_state(DRNSegmentation(19)))       # tensor k filled with k+.5
    write_hub_checkpoint(IMAGENET, file)
    model = build_model(19, weights_backbone=IMAGENET)
    file["seg.weight"] = torch.full_like(model.classifier.weight, -1.0)   # not in the file
    _assert_loaded(model, file)
    assert len(_pairs(model)) == 26 and "fc.weight" in file            # fc: ImageNet's, dropped


@pytest.mark.parametrize("layout, prefix", [
    ("fyu_drnseg", lambda key: f"base.{key[5]}.{key.split('.', 1)[1]}"),
    ("original_drnseg", lambda key: f"base.{key}"),
])
def test_a_drnseg_checkpoint_loads_as_the_whole_model(layout, prefix):
    file = distinct_values(reference_state(DRNSegmentation(19), layout))
    write_hub_checkpoint(CITYSCAPES, file)
    model = build_model(19, weights_path=CITYSCAPES)
    _assert_loaded(model, file, prefix, classifier=True)
    assert torch.equal(model.classifier.bias, file["seg.bias"])
    # as a backbone start it loads everything but the classifier
    backbone = build_model(19, weights_backbone=CITYSCAPES)
    _assert_loaded(backbone, file, prefix, classifier=False)


def test_this_projects_own_checkpoints_still_load(tmp_path):
    source = DRNSegmentation(5, width=0.25)
    state = distinct_values(source.state_dict())
    path = tmp_path / "model.pth"
    torch.save({"model": state}, path)
    model = build_model(5, width=0.25, weights_path=str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.pop("layer5.1.bn2.running_var"), "layers the file lacks (1): "
                                                  "stage5.0.1.bn2.running_var"),
    (lambda f: f.pop("layer6.0.downsample.0.weight"), "stage6.0.0.shortcut.0.weight"),
    (lambda f: f.update({"layer9.0.weight": torch.zeros(1)}), "layer9.0.weight"),
    (lambda f: f.update({"layer3.2.conv1.weight": torch.zeros(1)}), "keys the model lacks"),
])
def test_a_file_that_misses_or_adds_a_layer_is_refused_by_name(damage, message):
    file = reference_state(DRNSegmentation(19))
    damage(file)
    write_hub_checkpoint(IMAGENET, file)
    model = DRNSegmentation(19)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(WeightsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_pretrained(model, IMAGENET, flag="--weights-backbone", backbone=True)
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())


def test_another_width_is_a_shape_mismatch_naming_the_width():
    write_hub_checkpoint(IMAGENET, reference_state(DRNSegmentation(19)))
    with pytest.raises(WeightsError, match="shape mismatches.*--width 1"):
        build_model(19, width=0.25, weights_backbone=IMAGENET)


def test_a_missing_cached_file_is_one_error_naming_from_scratch():
    with pytest.raises(WeightsError) as error:
        build_model(19, weights_backbone=IMAGENET)
    message = str(error.value)
    assert "\n" not in message and "--from-scratch" in message
    assert DRN_D_22_IMAGENET.url in message and IMAGENET in message


def test_the_command_lists_both_files_and_the_reference_starts_from_imagenet():
    assert set(COMMAND.published) == {DRN_D_22_IMAGENET, DRN_D_22_CITYSCAPES}
    assert parse_args([]).weights_backbone == IMAGENET                  # the reference protocol
    assert parse_args(["--preset", "cityscapes"]).weights_backbone == IMAGENET
    assert parse_args(["--preset", "synthetic-cpu"]).weights_backbone is None
    assert parse_args(["--from-scratch"]).weights_backbone is None
    assert parse_args(["--weights", "x.pth"]).weights_backbone is None  # whole model instead


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_cityscapes(tmp_path_factory.mktemp("data") / "cs")


def test_the_reference_path_runs_end_to_end_from_the_cached_imagenet_file(dataset, tmp_path,
                                                                           caplog):
    tiny = [arg for arg in TINY_ARGS if arg != "--from-scratch"]        # width 0.125
    argv = ["-d", str(dataset), *tiny, "--cycles", "1", "--output-dir", str(tmp_path / "runs")]
    with pytest.raises(SystemExit) as exit_info:                        # not cached yet
        main(argv)
    assert exit_info.value.code == 2 and not (tmp_path / "runs").exists()
    file = distinct_values(reference_state(DRNSegmentation(19, width=0.125)))
    path = write_hub_checkpoint(IMAGENET, file)
    task = build(parse_args(argv)).adapter
    _assert_loaded(task.build_model(), file | {"seg.weight": torch.zeros(0)})
    caplog.set_level(logging.INFO)
    run_dir = main(argv)
    assert str(path) in caplog.text
    assert json.loads((run_dir / "args.json").read_text())["task"]["weights_backbone"] == IMAGENET
    assert (run_dir / "metrics.csv").is_file()
