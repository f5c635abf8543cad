"""Pretrained starts: ssd.pytorch's vgg16_reducedfc.pth (the reference), torchvision's VGG-16
features and COCO SSD300, a whole ssd.pytorch detector. Tiny checkpoints under each reference's
own key names, every tensor a distinct value, written into the test's torch.hub cache."""
from __future__ import annotations

import json
import math

import pytest
import torch

from active_learning.errors import WeightsError
from det_fixtures import TINY_ARGS, write_tiny_voc
from object_detection.model import build_model, load_basenet
from object_detection.train import main, parse_args
from weights_cache import write_hub_checkpoint

# ssd.pytorch's `vgg` list for SSD300 (ssd.py: base['300'] + pool5, conv6, conv7): the index of
# each convolution in it, and the layer of torchvision's SSDFeatureExtractorVGG it is.
SSD_PYTORCH_VGG = {0: "features.0", 2: "features.2", 5: "features.5", 7: "features.7",
                   10: "features.10", 12: "features.12", 14: "features.14", 17: "features.17",
                   19: "features.19", 21: "features.21",                    # conv1_1 .. conv4_3
                   24: "extra.0.1", 26: "extra.0.3", 28: "extra.0.5",        # conv5_1 .. conv5_3
                   31: "extra.0.7.1", 33: "extra.0.7.3"}                     # fc6, fc7 (conv)
# ssd.pytorch's `extras` (conv8_1, conv8_2, ..., conv11_2) in torchvision's extra blocks 1..4
SSD_PYTORCH_EXTRAS = {0: "extra.1.0", 1: "extra.1.2", 2: "extra.2.0", 3: "extra.2.2",
                      4: "extra.3.0", 5: "extra.3.2", 6: "extra.4.0", 7: "extra.4.2"}
COCO_FILE = "ssd300_vgg16_coco-b556d3b4.pth"            # the file name of torchvision's URL
VGG_FEATURES_FILE = "vgg16_features-amdegroot-88682ab5.pth"


def _distinct(pairs, own):
    """{file key: tensor shaped as our ``target`` key, filled with a value of its own}."""
    return {key: torch.full_like(own[target], 1000.0 + number)
            for number, (key, target) in enumerate(pairs)}


def _reducedfc(own, prefix=""):
    pairs = [(f"{prefix}{index}.{p}", f"backbone.{layer}.{p}")
             for index, layer in SSD_PYTORCH_VGG.items() for p in ("weight", "bias")]
    return pairs, _distinct(pairs, own)


def test_the_table_covers_every_vgg_convolution():
    with torch.device("meta"):
        model = build_model(21)
    convolutions = {name for name, module in model.backbone.named_modules()
                    if isinstance(module, torch.nn.Conv2d) and not name.startswith(("extra.1", "extra.2",
                                                                                    "extra.3", "extra.4"))}
    assert convolutions == set(SSD_PYTORCH_VGG.values())     # 13 VGG convolutions, fc6, fc7


def test_vgg16_reducedfc_loads_into_the_right_layers():
    own = build_model(5, width=0.0625).state_dict()
    pairs, state = _reducedfc(own)
    write_hub_checkpoint("vgg16_reducedfc.pth", state)
    model = build_model(5, width=0.0625, basenet="vgg16_reducedfc.pth")
    after = model.state_dict()
    for key, target in pairs:
        assert torch.equal(after[target], state[key]), (key, target)
    # what the file does not hold stays as initialised: the L2Norm scale (20) and the heads
    assert torch.equal(after["backbone.scale_weight"], torch.full_like(after["backbone.scale_weight"], 20.0))
    assert not (after["head.classification_head.module_list.0.weight"] >= 1000).any()


def test_a_whole_ssd_pytorch_detector_as_basenet_gives_its_vgg():
    own = build_model(5, width=0.0625).state_dict()
    pairs, state = _reducedfc(own, prefix="vgg.")
    state["L2Norm.weight"] = torch.full_like(own["backbone.scale_weight"], 7.0)
    write_hub_checkpoint("vgg16_reducedfc.pth", state)
    after = build_model(5, width=0.0625, basenet="vgg16_reducedfc.pth").state_dict()
    for key, target in pairs:
        assert torch.equal(after[target], state[key]), (key, target)


def test_a_whole_ssd_pytorch_detector_as_weights():
    own = build_model(5, width=0.0625).state_dict()
    pairs, _ = _reducedfc(own, prefix="vgg.")
    pairs += [(f"extras.{index}.{p}", f"backbone.{layer}.{p}")
              for index, layer in SSD_PYTORCH_EXTRAS.items() for p in ("weight", "bias")]
    pairs += [(f"{head}.{k}.{p}", f"head.{kind}_head.module_list.{k}.{p}")
              for head, kind in (("loc", "regression"), ("conf", "classification"))
              for k in range(6) for p in ("weight", "bias")]
    pairs += [("L2Norm.weight", "backbone.scale_weight")]
    state = _distinct(pairs, own)
    assert len(state) == len(own)                # ssd.pytorch's detector has every tensor of ours
    path = write_hub_checkpoint("ssd300_mAP_77.43_v2.pth", state)
    after = build_model(5, width=0.0625, weights=str(path)).state_dict()
    for key, target in pairs:
        assert torch.equal(after[target], state[key]), (key, target)


def test_torchvisions_vgg_features_load_and_normalised_vgg_is_refused():
    own = build_model(5, width=0.0625).state_dict()
    pairs = [(f"features.{index}.{p}", f"backbone.{layer}.{p}")
             for index, layer in SSD_PYTORCH_VGG.items() if index < 30 for p in ("weight", "bias")]
    state = _distinct(pairs, own)
    state["classifier.0.weight"] = torch.full((4, 4), math.nan)       # IMAGENET1K_FEATURES: no values
    write_hub_checkpoint(VGG_FEATURES_FILE, state)
    torch.manual_seed(0)
    model = build_model(5, width=0.0625)
    fc7 = model.state_dict()["backbone.extra.0.7.3.weight"].clone()
    load_basenet(model, "VGG16_Weights.IMAGENET1K_FEATURES")
    after = model.state_dict()
    for key, target in pairs:
        assert torch.equal(after[target], state[key]), (key, target)
    assert torch.equal(after["backbone.extra.0.7.3.weight"], fc7)  # fc6 / fc7 stay (torchvision's SSD too)
    for name in ("VGG16_Weights.IMAGENET1K_V1", "VGG16_Weights.DEFAULT", "VGG16_BN_Weights.IMAGENET1K_V1"):
        with pytest.raises(WeightsError) as error:
            load_basenet(model, name)
        message = str(error.value)
        assert "\n" not in message and "normalised" in message and "IMAGENET1K_FEATURES" in message
        assert "vgg16_reducedfc.pth" in message and "--from-scratch" in message


def test_torchvisions_coco_detector_loads_all_but_the_class_head():
    coco = build_model(91, width=0.0625, anchors="coco").state_dict()
    state = {key: torch.full_like(value, 1000.0 + number) for number, (key, value) in enumerate(coco.items())}
    write_hub_checkpoint(COCO_FILE, state)
    with pytest.warns(UserWarning) as caught:
        model = build_model(5, width=0.0625, weights="SSD300_VGG16_Weights.COCO_V1")
    messages = " ".join(str(w.message) for w in caught)
    assert "class head has 91 classes, this model 5" in messages and "--anchors coco" in messages
    after = model.state_dict()
    for key, value in state.items():
        if key.startswith("head.classification_head."):
            assert not (after[key] >= 1000).any(), key          # left random
        else:
            assert torch.equal(after[key], value), key
    with pytest.warns(UserWarning) as caught:                    # with its own boxes: one warning
        build_model(5, width=0.0625, anchors="coco", weights="SSD300_VGG16_Weights.COCO_V1")
    assert len(caught) == 1 and "class head" in str(caught[0].message)


def test_the_reference_starts_from_vgg16_reducedfc_and_a_missing_file_stops_early(tmp_path, capsys):
    assert parse_args([]).weights_backbone == "vgg16_reducedfc.pth"
    assert parse_args(["--preset", "voc"]).weights_backbone == "vgg16_reducedfc.pth"
    assert parse_args(["--from-scratch"]).weights_backbone is None
    assert parse_args(["--preset", "synthetic-cpu"]).weights_backbone is None
    with pytest.raises(WeightsError, match="vgg16_reducedfc.pth .*--from-scratch"):
        build_model(5, width=0.0625, basenet="vgg16_reducedfc.pth")
    root = write_tiny_voc(tmp_path / "voc")
    args = [arg for arg in TINY_ARGS if arg != "--from-scratch"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset_root", str(root), *args, "--output-dir", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(error) == 1
    assert error[0].startswith("error: --weights-backbone vgg16_reducedfc.pth (amdegroot/ssd.pytorch)")
    assert "https://s3.amazonaws.com/amdegroot-models/vgg16_reducedfc.pth" in error[0]
    assert "--from-scratch" in error[0] and not (tmp_path / "runs").exists()


def test_a_tiny_run_from_the_cached_reference_start(tmp_path):
    own = build_model(11, width=0.0625).state_dict()
    _, state = _reducedfc(own)
    write_hub_checkpoint("vgg16_reducedfc.pth", {k: v / 1000 for k, v in state.items()})
    root = write_tiny_voc(tmp_path / "voc")
    args = [arg for arg in TINY_ARGS if arg != "--from-scratch"]
    run_dir = main(["--dataset_root", str(root), *args, "--cycles", "1", "--strategy", "entropy",
                    "--output-dir", str(tmp_path / "runs")])
    record = json.loads((run_dir / "args.json").read_text())
    assert record["task"]["weights_backbone"] == "vgg16_reducedfc.pth"
    assert (run_dir / "metrics.csv").is_file()


@pytest.mark.parametrize("dropped", ["31.weight", "28.bias", "0.weight"])
def test_a_partial_vgg_file_is_refused_naming_the_missing_layers(dropped):
    own = build_model(5, width=0.0625).state_dict()
    _, state = _reducedfc(own)
    del state[dropped]
    write_hub_checkpoint("vgg16_reducedfc.pth", state)
    with pytest.raises(WeightsError, match="lacks 1 VGG-16 layers: backbone"):
        build_model(5, width=0.0625, basenet="vgg16_reducedfc.pth")


@pytest.mark.parametrize("name", ["VGG16_Weights.IMAGENET1K_V1", "timm:vgg16.tv_in1k"])
def test_normalised_vgg_is_refused_before_anything_is_fetched(name, monkeypatch):
    import active_learning.files.pretrained as pretrained

    monkeypatch.setattr(pretrained, "load_named_state", lambda *a, **k: pytest.fail("fetched"))
    with pytest.raises(WeightsError, match="mean/std-normalised inputs"):
        parse_args(["--basenet", name])
