"""The task adapter contract (docs/design.md), checked on every adapter in the repository.

Each adapter runs on a tiny model and a tiny batch: the feature maps match ``feature_info``,
``per_sample_loss`` is ``[B]``, finite, and equals each sample's loss computed on its own (a
batch mean broadcast to ``[B]`` would fail), the ranking loss's gradient reaches the loss module
and the backbone, probabilities sum to one, embeddings are ``[B, D]``, and CSV names are unique.
"""
from __future__ import annotations

import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from active_learning.adapter import TaskAdapter
from active_learning.loop.config import LoopConfig
from active_learning.loop.runner import run_active_learning
from active_learning.loop.scoring import SlottedProbabilities
from active_learning.strategies import DISTRIBUTIONS
from active_learning.strategies.loss_prediction import LossPredictionLoss, LossPredictionModule
from toy_adapters import (
    ToyClassificationAdapter,
    ToyDenseAdapter,
    ToyGroupedAdapter,
    ToyRegionAdapter,
)


def _classification():
    from classification.data import load_classification_data
    from classification.task import ClassificationTask

    return ClassificationTask(load_classification_data("digits", None), width=2, dropout=0.2)


def _segmentation(superpixels: bool = False):
    import tempfile

    from active_learning.labels.cityscapes_ids import CITYSCAPES_CLASSES
    from seg_fixtures import write_tiny_cityscapes
    from segmentation.data import CITYSCAPES_MEAN, CITYSCAPES_STD, find_samples
    from segmentation.task import SegmentationTask

    root = write_tiny_cityscapes(Path(tempfile.mkdtemp(prefix="contract_")) / "cs")
    return SegmentationTask(find_samples(root, "train", "cityscapes", need_instances=superpixels),
                            find_samples(root, "val", "cityscapes"), data_format="cityscapes",
                            num_classes=19, class_names=CITYSCAPES_CLASSES, mean=CITYSCAPES_MEAN,
                            std=CITYSCAPES_STD, width=0.125, crop_size=None, superpixels=superpixels,
                            superpixels_per_image=12, cache_dir=root.parent / "cache", progress=False)


def _detection():
    import tempfile

    from det_fixtures import write_tiny_voc
    from object_detection.task import DetectionTask
    from object_detection.voc import read_class_names, read_split

    root = write_tiny_voc(Path(tempfile.mkdtemp(prefix="contract_")) / "voc", trainval=8, test=2)
    names = read_class_names(root / "classes.txt")
    return DetectionTask(read_split(root, [("2007", "trainval")], names), read_split(root, [("2007", "test")], names),
                         class_names=names, width=0.0625, dropout=0.1, progress=False)


def _pose():
    import tempfile

    from human_pose_estimation.coco import read_split
    from human_pose_estimation.task import PoseTask
    from pose_fixtures import write_tiny_coco

    root = write_tiny_coco(Path(tempfile.mkdtemp(prefix="contract_")) / "coco", train=6, val=2)
    return PoseTask(read_split(root, "train2017"), read_split(root, "val2017"), arch="hrnet_w18_small",
                    input_size=(64, 96), dropout=0.1, progress=False)


ADAPTERS = {
    "classification": _classification,
    "detection": _detection,
    "pose": _pose,
    "segmentation": _segmentation,
    "segmentation_superpixels": lambda: _segmentation(superpixels=True),
    "toy_classification": ToyClassificationAdapter,
    "toy_dense": ToyDenseAdapter,
    "toy_grouped": ToyGroupedAdapter,
    "toy_regions": ToyRegionAdapter,
}


def _batch(adapter, size: int = 6):
    units = adapter.selection_units()
    labeled = np.flatnonzero(units.selectable())[:size]
    if units.kind == "regions":  # one region of each of the first images, the rest unlabeled
        labeled = units.offsets[:size] + 1
    dataset = adapter.training_set(labeled)
    loader = DataLoader(dataset, batch_size=size, collate_fn=getattr(adapter, "collate_fn", None))
    return adapter.split_batch(next(iter(loader)), torch.device("cpu"))


def _take(value, index: int):
    """Sample ``index`` of a batch-first tensor, or of each tensor in a tuple / list / dict."""
    if isinstance(value, torch.Tensor):
        return value[index:index + 1]
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[index:index + 1]            # one target dict per sample (detection)
    if isinstance(value, (tuple, list)):
        return type(value)(_take(item, index) for item in value)
    if isinstance(value, dict):
        return {key: _take(item, index) for key, item in value.items()}
    raise TypeError(f"cannot take one sample of a {type(value).__name__}")


@pytest.fixture(scope="module")
def built_adapters():
    """Each adapter built once for the module (the task ones write a tiny dataset), with the
    random state its building left: (adapter, torch RNG state) by name."""
    return {}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request, built_adapters):
    # as if built for this test alone: seed 0, built, its model drawn from the state it left
    if request.param not in built_adapters:
        torch.manual_seed(0)
        built = ADAPTERS[request.param]()
        built_adapters[request.param] = (built, torch.get_rng_state())
    built, state = built_adapters[request.param]
    torch.set_rng_state(state)
    return built


def test_features_match_feature_info(adapter):
    model = adapter.build_model().eval()
    inputs, _ = _batch(adapter)
    with torch.no_grad():
        _, features = adapter.forward_intermediates(model, inputs)
    assert len(features) == len(adapter.feature_info)
    for feature, info in zip(features, adapter.feature_info):
        assert feature.ndim == 4 and feature.shape[0] == len(inputs)
        assert feature.shape[1] == info["channels"], info["name"]


def test_per_sample_loss_is_each_samples_own_loss(adapter):
    model = adapter.build_model().eval()
    inputs, targets = _batch(adapter)
    with torch.no_grad():
        outputs, _ = adapter.forward_intermediates(model, inputs)
        losses = adapter.per_sample_loss(outputs, targets)
        assert losses.shape == (len(inputs),) and torch.isfinite(losses).all()
        for index in range(len(inputs)):
            alone, _ = adapter.forward_intermediates(model, _take(inputs, index))
            own = adapter.per_sample_loss(alone, _take(targets, index))
            torch.testing.assert_close(own, losses[index:index + 1], atol=1e-4, rtol=1e-4)
    assert losses.std() > 0  # distinct samples, distinct losses: not one value broadcast


def test_batch_loss_trains_on_the_per_sample_losses(adapter):
    model = adapter.build_model().eval()
    inputs, targets = _batch(adapter)
    with torch.no_grad():
        outputs, _ = adapter.forward_intermediates(model, inputs)
        loss, losses = adapter.batch_loss(outputs, targets)
        torch.testing.assert_close(losses, adapter.per_sample_loss(outputs, targets))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0


def test_the_ranking_loss_reaches_the_loss_module_and_the_backbone(adapter):
    model = adapter.build_model().train()
    module = LossPredictionModule([info["channels"] for info in adapter.feature_info])
    inputs, targets = _batch(adapter)
    outputs, features = adapter.forward_intermediates(model, inputs)
    losses = adapter.per_sample_loss(outputs, targets)
    predicted = module(features)
    assert predicted.shape == (len(inputs),)
    LossPredictionLoss(margin=1.0)(predicted, losses).backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_probabilities_and_embeddings(adapter):
    model = adapter.build_model().eval()
    inputs, _ = _batch(adapter)
    with torch.no_grad():
        outputs, features = adapter.forward_intermediates(model, inputs)
        probs = adapter.probabilities(outputs)
        embedding = adapter.embedding(outputs, features)
    assert probs.shape[0] == len(inputs) and torch.isfinite(probs).all()
    if adapter.output_kind in DISTRIBUTIONS:
        torch.testing.assert_close(probs.sum(dim=1), torch.ones_like(probs.sum(dim=1)), atol=1e-5, rtol=0)
    else:  # pose: heatmaps, one map per joint at the output's resolution
        assert probs.shape == outputs.shape
    assert embedding.ndim == 2 and embedding.shape[0] == len(inputs) and torch.isfinite(embedding).all()
    if isinstance(adapter, SlottedProbabilities):   # the counts come with the probabilities
        with torch.no_grad():
            slotted, counts = adapter.probabilities_and_slots(outputs)
        torch.testing.assert_close(slotted, probs, rtol=0, atol=0)
        if counts is not None:
            assert counts.shape == (len(inputs),) and (counts <= probs.shape[2]).all()


def test_names_are_unique(adapter):
    units = adapter.selection_units()
    count = units.n_samples if units.kind == "regions" else units.n_units   # the CSV names images
    names = [adapter.item_name(index) for index in range(min(count, 500))]
    assert len(set(names)) == len(names) and all(names)


class _Recorder:
    """Wraps an adapter and records which of its members the loop reads."""

    def __init__(self, adapter) -> None:
        self.__dict__["_adapter"] = adapter
        self.__dict__["read"] = set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._adapter, name)


def _protocol_members() -> set[str]:
    members = set(typing.get_type_hints(TaskAdapter))
    members |= {name for name, value in vars(TaskAdapter).items()
                if callable(value) and not name.startswith("_")}
    return members


def test_the_protocol_lists_exactly_what_the_loop_calls(tmp_path):
    read: set[str] = set()
    for index, (factory, strategy) in enumerate([(ToyClassificationAdapter, "loss_prediction"),
                                                 (ToyClassificationAdapter, "bald"),
                                                 (ToyClassificationAdapter, "coreset"),
                                                 (ToyClassificationAdapter, "hidden_uncertainty"),
                                                 (ToyRegionAdapter, "entropy")]):
        recorder = _Recorder(factory())
        config = LoopConfig(strategy=strategy, cycles=1, initial_size=20, budget=5, subset_size=0,
                            epochs=1, batch_size=8, eval_batch_size=32, mc_samples=2, progress=False)
        # with the report's map, as the command line runs it (it reads class_names)
        run_active_learning(recorder, config, tmp_path / str(index), report_map=50)
        read |= recorder.read
    assert read == _protocol_members()


def test_every_adapter_implements_the_protocol(adapter):
    missing = [name for name in _protocol_members() if not hasattr(adapter, name)]
    assert not missing


def _same(left, right) -> bool:
    """Deep equality of evaluation parts: tensors, arrays, lists, tuples, dicts and numbers."""
    if isinstance(left, torch.Tensor):
        return torch.equal(left, right)
    if isinstance(left, np.ndarray):   # detections of an image batched with another or alone:
        if left.dtype.kind == "f":       # float rounding apart
            return left.shape == right.shape and np.allclose(left, right, rtol=1e-5, atol=1e-5)
        return np.array_equal(left, right)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, float):   # a sum of per-batch float32 losses, batched differently
        return left == pytest.approx(right, rel=1e-6)
    return left == right


def _joined(parts):
    """What one part of the whole test set must equal: counts and matrices summed, per-image
    lists concatenated in slice order."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return sum(parts[1:], first.clone())
    if all(isinstance(value, list) for value in first):
        return tuple(sum((list(part[i]) for part in parts), []) for i in range(len(first)))
    return tuple(sum(part[i] for part in parts) for i in range(len(first)))


@pytest.mark.parametrize("name", ["classification", "detection", "pose", "segmentation"])
def test_evaluating_slices_apart_gives_the_metrics_of_the_whole_test_set(name):
    from torch.utils.data import Subset

    from active_learning.adapter import PartwiseEvaluation

    torch.manual_seed(0)
    adapter = ADAPTERS[name]()
    assert isinstance(adapter, PartwiseEvaluation)
    model = adapter.build_model().eval()
    size = len(adapter.test_set)
    cuts = [0, 0, (size + 1) // 2, size]   # an empty slice; 297 digits cut inside a batch of 2

    def part(indices):
        loader = DataLoader(Subset(adapter.test_set, list(indices)), batch_size=2,
                            collate_fn=adapter.collate_fn)
        return adapter.evaluation_part(model, loader, torch.device("cpu"))

    whole = part(range(size))
    slices = [part(range(start, stop)) for start, stop in zip(cuts, cuts[1:])]
    assert _same(_joined(slices), tuple(whole) if isinstance(whole, tuple) else whole)
    expected = adapter.metrics_from_parts([whole])
    combined = adapter.metrics_from_parts(slices)
    assert combined == pytest.approx(expected, rel=1e-6, nan_ok=True)
    # the first slice alone is not the whole: the test set tells a lost part apart
    assert not _same(_joined(slices[:2]), _joined([whole]))
