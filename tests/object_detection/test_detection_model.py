"""SSD300: torchvision's layout, the loss-prediction taps, weight files, the per-image loss, MC dropout."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from active_learning.errors import WeightsError
from object_detection.loss import batch_loss, match_anchors, ssd_coder_and_matcher, ssd_losses
from object_detection.model import (
    TAP_CHANNELS,
    NarrowVGGExtractor,
    build_model,
    feature_info,
    load_basenet,
    load_weights,
)


def _targets(seed: int = 0, counts=(3, 1, 0, 2)):
    generator = torch.Generator().manual_seed(seed)
    targets = []
    for count in counts:
        corner = torch.rand(count, 2, generator=generator) * 200
        size = 20 + torch.rand(count, 2, generator=generator) * 80
        targets.append({"boxes": torch.cat([corner, corner + size], dim=1),
                        "labels": torch.randint(1, 5, (count,), generator=generator)})
    return targets


@pytest.fixture(scope="module")
def narrow():
    torch.manual_seed(0)
    return build_model(5, width=0.0625, dropout=0.2)


def test_full_width_is_torchvisions_ssd300_and_taps_match_the_paper():
    from torchvision.models.detection.ssd import ssd300_vgg16

    torch.manual_seed(0)
    model = build_model(21).eval()
    # Only the references' shapes are compared: built on the meta device, they cost no weights.
    with torch.device("meta"):
        reference = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
        narrow_at_full_width = NarrowVGGExtractor(1.0)
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    # the narrow extractor at width 1 is the same network as torchvision's
    assert {k: v.shape for k, v in narrow_at_full_width.state_dict().items()} == \
        {k: v.shape for k, v in reference.backbone.state_dict().items()}
    head_inputs = []
    hook = model.head.register_forward_pre_hook(lambda module, args: head_inputs.append(args[0]))
    with torch.no_grad():
        outputs, taps = model.forward_intermediates(torch.rand(1, 3, 300, 300))
    hook.remove()
    assert [tuple(t.shape[1:]) for t in taps] == [(512, 38, 38), (1024, 19, 19), (512, 10, 10), (256, 5, 5),
                                                 (256, 3, 3), (256, 1, 1)]
    assert outputs["cls_logits"].shape == (1, 8732, 21) and outputs["anchors"].shape == (8732, 4)
    # the first tap is conv4_3 before the L2 normalisation the head sees
    (sources,) = head_inputs
    norms = sources[0].norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, 20.0), atol=1e-3, rtol=0)
    assert not torch.allclose(taps[0].norm(dim=1), norms, atol=1e-3)
    for source, tap in zip(sources[1:], taps[1:]):       # the other taps are the sources
        torch.testing.assert_close(source, tap, atol=0, rtol=0)
    assert feature_info(1.0)[0] == {"name": "conv4_3", "channels": 512, "stride": 8}
    assert [info["channels"] for info in feature_info(1.0)] == list(TAP_CHANNELS)


def test_narrow_model_taps_match_feature_info(narrow):
    with torch.no_grad():
        outputs, taps = narrow.forward_intermediates(torch.rand(2, 3, 300, 300))
    assert [t.shape[1] for t in taps] == [info["channels"] for info in feature_info(0.0625)]
    assert [t.shape[-1] for t in taps] == [38, 19, 10, 5, 3, 1]
    assert outputs["bbox_regression"].shape == (2, 8732, 4)


def test_per_image_losses_give_torchvisions_batch_loss(narrow):
    ssd = narrow._torchvision[0]                # the torchvision SSD the detector was built from
    targets = _targets()
    torch.manual_seed(1)
    with torch.no_grad():
        outputs, _ = narrow.eval().forward_intermediates(torch.rand(4, 3, 300, 300))
    anchors = outputs["anchors"]
    matched = match_anchors(ssd.proposal_matcher, targets, anchors)
    reference = ssd.compute_loss(targets, {k: outputs[k] for k in ("cls_logits", "bbox_regression")},
                                 [anchors] * 4, matched)
    per_image, positives = ssd_losses(outputs, targets, box_coder=ssd.box_coder, matcher=ssd.proposal_matcher)
    assert per_image.shape == (4,) and positives.tolist()[2] == 0 and per_image[2] == 0  # no object: no loss
    torch.testing.assert_close(batch_loss(per_image, positives),
                               reference["bbox_regression"] + reference["classification"])
    # the defaults are torchvision's coder and matcher
    torch.testing.assert_close(ssd_losses(outputs, targets)[0], per_image)


def test_per_image_loss_by_hand(narrow):
    """One image: smooth-L1 of its positives + CE of its positives and its 3 x P hardest negatives."""
    coder, matcher = ssd_coder_and_matcher()
    target = _targets(counts=(2,))
    with torch.no_grad():
        outputs, _ = narrow.eval().forward_intermediates(torch.rand(1, 3, 300, 300))
    matches = match_anchors(matcher, target, outputs["anchors"])[0]
    positive = torch.where(matches >= 0)[0]
    classes = torch.zeros(8732, dtype=torch.int64)
    classes[positive] = target[0]["labels"][matches[positive]]
    ce = F.cross_entropy(outputs["cls_logits"][0], classes, reduction="none")
    background = torch.where(matches < 0)[0]
    hardest = background[ce[background].argsort(descending=True)[:3 * len(positive)]]
    encoded = coder.encode_single(target[0]["boxes"][matches[positive]], outputs["anchors"][positive])
    expected = (F.smooth_l1_loss(outputs["bbox_regression"][0, positive], encoded, reduction="sum")
                + ce[positive].sum() + ce[hardest].sum())
    loss, positives = ssd_losses(outputs, target)
    assert positives.item() == len(positive) >= 2      # every box keeps at least its best default box
    torch.testing.assert_close(loss[0], expected)


def test_basenet_maps_ssd_pytorch_and_torchvision_vgg_keys(tmp_path, narrow):
    from object_detection.model import _vgg_key

    own = narrow.state_dict()

    def complete(prefix):   # every VGG convolution the layout has, shaped as ours
        return {f"{prefix}{index}.{p}": torch.randn_like(own[target]) for index in range(34)
                for p in ("weight", "bias")
                if (target := _vgg_key(f"{prefix}{index}.{p}")) is not None and target in own}

    reduced_fc = complete("")
    torch.save(reduced_fc, tmp_path / "vgg16_reducedfc.pth")
    loaded = load_basenet(narrow, tmp_path / "vgg16_reducedfc.pth")
    assert len(loaded) == 30                     # 15 convolutions (13 VGG, fc6, fc7) x 2
    after = narrow.state_dict()
    torch.testing.assert_close(after["backbone.features.0.weight"], reduced_fc["0.weight"])
    torch.testing.assert_close(after["backbone.extra.0.1.bias"], reduced_fc["24.bias"])
    torch.testing.assert_close(after["backbone.extra.0.7.3.weight"], reduced_fc["33.weight"])
    torchvision_vgg = {**complete("features."), "classifier.0.weight": torch.randn(7, 7)}
    torch.save(torchvision_vgg, tmp_path / "vgg16.pth")
    loaded = load_basenet(narrow, tmp_path / "vgg16.pth")
    assert len(loaded) == 26 and "backbone.extra.0.5.weight" in loaded     # no fc6 / fc7
    torch.testing.assert_close(narrow.state_dict()["backbone.extra.0.5.weight"],
                               torchvision_vgg["features.28.weight"])
    torch.save({"0.weight": torch.randn(64, 3, 3, 3)}, tmp_path / "full.pth")
    with pytest.raises(ValueError, match="need --width 1"):
        load_basenet(narrow, tmp_path / "full.pth")
    with pytest.raises(WeightsError, match="--weights-backbone .*missing.pth: no such file"):
        load_basenet(narrow, tmp_path / "missing.pth")


def test_basenet_takes_our_own_backbone_keys_and_batch_norm(tmp_path):
    source = build_model(5, width=0.0625, batch_norm=True)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in source.backbone.modules())
    backbone = {k: v + 1 for k, v in source.state_dict().items() if k.startswith("backbone.") and v.is_floating_point()}
    torch.save(backbone, tmp_path / "pretrained.pth")
    target = build_model(5, width=0.0625, batch_norm=True, basenet=tmp_path / "pretrained.pth")
    for key, value in backbone.items():
        torch.testing.assert_close(target.state_dict()[key], value)
    torch.save({"0.weight": torch.randn(4, 3, 3, 3)}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="BatchNorm"):
        load_basenet(target, tmp_path / "plain.pth")


def test_whole_detector_weights_round_trip(tmp_path, narrow):
    torch.save({"model": narrow.state_dict()}, tmp_path / "ssd.pth")
    other = build_model(5, width=0.0625, weights=tmp_path / "ssd.pth")
    for key, value in narrow.state_dict().items():
        torch.testing.assert_close(other.state_dict()[key], value)
    with pytest.raises(ValueError, match="does not fit"):       # another width: refused
        load_weights(build_model(5, width=0.125), tmp_path / "ssd.pth")


def test_mc_dropout_runs_the_backbone_once_and_the_head_t_times(narrow):
    from active_learning.strategies.mc_dropout import MCDropoutSampler

    calls = {"features": 0}
    hook = narrow.backbone.features.register_forward_hook(lambda *args: calls.__setitem__("features", calls["features"] + 1))
    try:
        sampler = MCDropoutSampler(narrow.eval().scorer)
        samples = sampler.sample(torch.rand(2, 3, 300, 300), 3)
    finally:
        hook.remove()
    assert samples.shape == (3, 2, 8732, 5)
    assert calls["features"] <= 2          # traced once (maybe) + run once, not T = 3 times
    assert not torch.allclose(samples[0], samples[1])   # dropout is active in the passes
    with torch.no_grad():
        deterministic = narrow.eval().forward(torch.rand(2, 3, 300, 300))["cls_logits"]
    assert deterministic.shape == (2, 8732, 5)


def _grid_outputs(scores: torch.Tensor, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Head outputs whose decoded boxes are ``boxes`` [A, 4] (zero regression: the anchors) and
    whose softmax is ``scores`` [A, C]."""
    return {"cls_logits": scores.log()[None], "bbox_regression": torch.zeros(1, len(boxes), 4),
            "anchors": boxes}


def test_postprocess_is_ssd_pytorchs_detect(narrow):
    # 300 disjoint 5 x 5 boxes (no NMS between them); classes 1 and 2 above 0.01 on all of them
    corners = torch.stack(torch.meshgrid(torch.arange(20) * 14.0, torch.arange(15) * 14.0,
                                         indexing="ij"), -1).reshape(-1, 2)
    boxes = torch.cat([corners, corners + 5], dim=1)
    generator = torch.Generator().manual_seed(0)
    foreground = 0.02 + 0.4 * torch.rand(300, 2, generator=generator)
    scores = torch.cat([torch.full((300, 1), 0.02), foreground,
                        torch.zeros(300, 2)], dim=1)        # classes 3, 4 never above 0.01
    scores[:, 0] = 1 - scores[:, 1:].sum(dim=1)
    (result,) = narrow.postprocess(_grid_outputs(scores, boxes))
    # 200 per class (the top_k best), no cap per image: 400 (torchvision's SSD would keep 200)
    assert len(result["scores"]) == 400
    for label in (1, 2):
        mine = result["labels"] == label
        best = scores[:, label].topk(200).indices
        assert set(result["anchor"][mine].tolist()) == set(best.tolist())
    assert (result["scores"][:-1] >= result["scores"][1:]).all()            # best first
    torch.testing.assert_close(result["boxes"], boxes[result["anchor"]])
    torch.testing.assert_close(result["scores"], scores[result["anchor"], result["labels"]])


def test_postprocess_thresholds(narrow):
    # box 1 overlaps box 0 at IoU 0.5 (suppressed at 0.45); box 2 overlaps box 0 at IoU 0.4 (kept)
    boxes = torch.tensor([[0, 0, 30, 10], [10, 0, 40, 10], [0, 0, 30, 4.0], [100, 100, 110, 110]])
    scores = torch.tensor([[0.2, 0.8, 0, 0, 0], [0.3, 0.7, 0, 0, 0], [0.4, 0.6, 0, 0, 0],
                           [0.99, 0.01, 0, 0, 0]])           # box 3: 0.01 is not above 0.01
    scores = scores.clamp_min(1e-12)
    (result,) = narrow.postprocess(_grid_outputs(scores / scores.sum(1, keepdim=True), boxes))
    assert result["anchor"].tolist() == [0, 2] and result["labels"].tolist() == [1, 1]
