"""The original project's YAML configuration (``--cfg``), its ``KEY VALUE`` overrides, and how its
keys become ``train.py`` flags.

Keys read (the rest of the file is kept for reference and ignored):

===========================  ==============================================================
``DATA_DIR`` / ``--dataDir``  prefix of ``DATASET.ROOT`` (as the original joins them)
``DATASET.ROOT``              ``--dataset-root``; ``TRAIN_SET`` / ``TEST_SET``: the image sets
``DATASET.FLIP``, ``ROT_FACTOR``, ``SCALE_FACTOR``, ``PROB_HALF_BODY``: the augmentation
``MODEL.NAME``                must be ``pose_hrnet``; ``EXTRA.STAGE2.NUM_CHANNELS[0]`` picks
                              ``hrnet_w<C>``
``MODEL.IMAGE_SIZE``          ``--image-size`` (W, H); ``HEATMAP_SIZE`` must be a quarter of it
``MODEL.SIGMA``, ``NUM_JOINTS`` (17), ``TARGET_TYPE`` (gaussian), ``LOSS.USE_TARGET_WEIGHT`` (true)
``MODEL.PRETRAINED``          ``--weights-backbone`` when ``INIT_WEIGHTS``: the file (relative
                              to the task folder) when it is there, else its name when it is a
                              published file (``hrnet_w32-36af842e.pth``: from torch.hub's cache,
                              downloaded there), else a WeightsError; ``INIT_WEIGHTS false`` or
                              ``--from-scratch``: ``--from-scratch``
``TRAIN.*``                   batch size (per GPU: one device here), epochs (END - BEGIN),
                              optimizer, LR, LR_FACTOR, LR_STEP, MOMENTUM, WD (SGD only: the
                              original's Adam has no weight decay)
``TEST.BATCH_SIZE_PER_GPU``, ``FLIP_TEST``, ``USE_GT_BBOX`` (true: evaluation on ground-truth boxes)
``TEST.OKS_THRE``, ``IN_VIS_THRE``  ``--oks-threshold``, ``--in-vis-threshold`` (OKS-NMS, rescoring)
``TEST.MODEL_FILE``           ``--weights`` (initial weights of the whole model) when set
``OUTPUT_DIR`` / ``--modelDir``  ``--output-dir``; ``WORKERS``: ``--workers`` (at most the CPU
                                 count)
===========================  ==============================================================
"""
from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from active_learning.errors import ConfigError, WeightsError
from active_learning.files.pretrained import PublishedCheckpoint

log = logging.getLogger(__name__)


def load_config(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--cfg file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (DATASET, MODEL, TRAIN, TEST)")
    return config


def apply_overrides(config: dict[str, Any], opts: Sequence[str]) -> dict[str, Any]:
    """``KEY VALUE`` pairs (``TRAIN.END_EPOCH 20``) over ``config``; values parse as YAML.

    A key that the configuration lacks is an error, as in the original's yacs ``merge_from_list``.
    """
    import yaml

    if len(opts) % 2:
        raise ConfigError(f"options come as KEY VALUE pairs, got an odd number: {' '.join(opts)}")
    merged = copy.deepcopy(config)
    for key, text in zip(opts[::2], opts[1::2], strict=True):
        node = merged
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown configuration key {key}")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"unknown configuration key {key}")
        node[parts[-1]] = yaml.safe_load(text)
    return merged


def _get(config: dict[str, Any], key: str, default: Any = None) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def _pair(value: Any, key: str) -> tuple[int, int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{key} must be [width, height], got {value!r}")
    return int(value[0]), int(value[1])


def pretrained_spec(pretrained: str, base_dir: str | Path,
                    published: Sequence[PublishedCheckpoint]) -> str:
    """What ``--weights-backbone`` gets for MODEL.PRETRAINED: the file under ``base_dir`` if it
    is there, else its name if a reference publishes a file of that name (found in torch.hub's
    cache, or downloaded there, as ``train.py``'s default is); else WeightsError."""
    path = Path(base_dir) / pretrained
    if path.is_file():
        return str(path)
    name = Path(pretrained).name
    if any(checkpoint.filename == name for checkpoint in published):
        log.info("MODEL.PRETRAINED %s is not under %s: using the published %s (torch.hub's "
                 "cache)", pretrained, base_dir, name)
        return name
    raise WeightsError(f"MODEL.PRETRAINED {pretrained}: no such file ({path}); put the backbone's "
                       f"weights there, set MODEL.INIT_WEIGHTS false, or pass --from-scratch to "
                       f"train from random weights")


def config_to_argv(config: dict[str, Any], *, data_dir: str | None = None,
                   model_dir: str | None = None, base_dir: str | Path = ".",
                   published: Sequence[PublishedCheckpoint] = (),
                   from_scratch: bool = False) -> list[str]:
    """``train.py`` arguments of a configuration (see the module doc for each key);
    ``from_scratch``: the command line asked for random weights (MODEL.PRETRAINED unused)."""
    argv: list[str] = []

    def add(flag: str, value: Any) -> None:
        argv.extend([flag, str(value)])

    root = str(_get(config, "DATASET.ROOT", "data/coco/"))
    data_prefix = data_dir if data_dir is not None else str(_get(config, "DATA_DIR", "") or "")
    add("--dataset-root", os.path.join(data_prefix, root) if data_prefix else root)
    for key, flag in (("DATASET.TRAIN_SET", "--train-set"), ("DATASET.TEST_SET", "--test-set"),
                      ("DATASET.ROT_FACTOR", "--rotation-factor"),
                      ("DATASET.SCALE_FACTOR", "--scale-factor"),
                      ("DATASET.PROB_HALF_BODY", "--half-body-probability"),
                      ("MODEL.SIGMA", "--sigma"),
                      ("TRAIN.BATCH_SIZE_PER_GPU", "--batch-size"), ("TRAIN.LR", "--lr"),
                      ("TRAIN.LR_FACTOR", "--gamma"), ("TRAIN.MOMENTUM", "--momentum"),
                      ("TEST.BATCH_SIZE_PER_GPU", "--eval-batch-size"),
                      ("TEST.OKS_THRE", "--oks-threshold"),
                      ("TEST.IN_VIS_THRE", "--in-vis-threshold")):
        value = _get(config, key)
        if value is not None:
            add(flag, value)
    workers = _get(config, "WORKERS")
    if workers is not None:   # the reference's 24 loader processes, capped at this machine's cores
        add("--workers", min(int(workers), os.cpu_count() or 1))
    for key, flag in (("DATASET.FLIP", "--flip"), ("TEST.FLIP_TEST", "--flip-test")):
        value = _get(config, key)
        if value is not None:
            add(flag, bool(value))
    name = _get(config, "MODEL.NAME", "pose_hrnet")
    if name != "pose_hrnet":
        raise ConfigError(f"MODEL.NAME {name!r}: this task builds pose_hrnet only")
    joints = _get(config, "MODEL.NUM_JOINTS", 17)
    if joints != 17:
        raise ConfigError(f"MODEL.NUM_JOINTS {joints}: COCO keypoints have 17")
    if _get(config, "MODEL.TARGET_TYPE", "gaussian") != "gaussian":
        raise ConfigError("MODEL.TARGET_TYPE must be gaussian")
    if not _get(config, "LOSS.USE_TARGET_WEIGHT", True):
        raise ConfigError("LOSS.USE_TARGET_WEIGHT false is not supported: unlabeled "
                          "joints always weigh 0")
    if not _get(config, "TEST.USE_GT_BBOX", True):
        raise ConfigError("TEST.USE_GT_BBOX false (evaluation on a detector's boxes) is not "
                          "supported: the test set is evaluated on its ground-truth person boxes")
    width = _get(config, "MODEL.EXTRA.STAGE2.NUM_CHANNELS", [32])[0]
    add("--arch", f"hrnet_w{int(width)}")
    image_size = _pair(_get(config, "MODEL.IMAGE_SIZE", [192, 256]), "MODEL.IMAGE_SIZE")
    heatmap = _get(config, "MODEL.HEATMAP_SIZE")
    quarter = (image_size[0] // 4, image_size[1] // 4)
    if heatmap is not None and _pair(heatmap, "MODEL.HEATMAP_SIZE") != quarter:
        raise ConfigError(f"MODEL.HEATMAP_SIZE {heatmap} must be a quarter of "
                          f"MODEL.IMAGE_SIZE {list(image_size)}")
    add("--image-size", f"{image_size[0]},{image_size[1]}")
    pretrained = _get(config, "MODEL.PRETRAINED")
    if from_scratch or not (_get(config, "MODEL.INIT_WEIGHTS", False) and pretrained):
        argv.append("--from-scratch")
    else:
        argv.extend(["--weights-backbone", pretrained_spec(str(pretrained), base_dir, published)])
    model_file = _get(config, "TEST.MODEL_FILE")
    if model_file:
        add("--weights", model_file)
    begin, end = int(_get(config, "TRAIN.BEGIN_EPOCH", 0)), _get(config, "TRAIN.END_EPOCH")
    if end is not None:
        add("--epochs", int(end) - begin)
    optimizer = str(_get(config, "TRAIN.OPTIMIZER", "adam")).lower()
    if optimizer not in ("adam", "sgd"):
        raise ConfigError(f"TRAIN.OPTIMIZER {optimizer!r}: use adam or sgd")
    add("--optimizer", optimizer)
    if optimizer == "sgd" and _get(config, "TRAIN.WD") is not None:
        add("--weight-decay", _get(config, "TRAIN.WD"))
    steps = _get(config, "TRAIN.LR_STEP")
    if steps is not None:
        add("--milestones", ",".join(str(int(step) - begin) for step in steps))
    output = model_dir if model_dir is not None else _get(config, "OUTPUT_DIR")
    if output:
        add("--output-dir", output)
    return argv
