"""CIFAR-10 in torchvision's layout (``cifar-10-batches-py/``), read through an unpickler that
accepts numpy arrays and plain containers only: a dataset file must not be able to run code,
which torchvision's own ``CIFAR10`` (``pickle.load``) does not guarantee."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from active_learning.errors import DataError

from .datasets import (
    ClassificationData,
    array_views,
    download_with_torchvision,
    index_names,
    make_transform,
)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)


CIFAR10_STD = (0.2470, 0.2435, 0.2616)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


CIFAR10_DIR = "cifar-10-batches-py"


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts / lists / numpy arrays only: a dataset file must not be able to run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # numpy's protocol-5 reduction
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 pickles bytes objects at protocol < 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_pickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"CIFAR-10 file missing: {path}")
    try:
        with open(path, "rb") as f:
            # latin1: the official batches were pickled by Python 2 (numpy's recommended encoding).
            raw = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as err:  # any unpickling failure means the same thing to the user
        raise DataError(f"cannot read CIFAR-10 file {path}: {err}") from err
    if not isinstance(raw, dict):
        raise DataError(f"CIFAR-10 file {path} holds a {type(raw).__name__}, expected a dict")
    # Python-2 pickles give str keys, Python-3 ones bytes keys: normalise to str.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch file -> ``(images uint8 [N, 3, 32, 32], labels int64 [N])``."""
    entry = _read_cifar_pickle(path)
    if "data" not in entry or "labels" not in entry:
        raise DataError(f"CIFAR-10 file {path} lacks 'data' or 'labels' (keys: {sorted(entry)})")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"CIFAR-10 file {path}: 'data' must be uint8 [N, 3072], got "
                        f"{data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"CIFAR-10 file {path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise DataError(f"CIFAR-10 file {path}: labels outside 0..9")
    # Each row is the red plane, then green, then blue, each row-major: exactly [3, 32, 32].
    return data.reshape(-1, 3, 32, 32), labels


def _find_cifar_dir(data_dir: Path) -> Path | None:
    for candidate in (data_dir / CIFAR10_DIR, data_dir):
        if (candidate / "data_batch_1").is_file():
            return candidate
    return None


def load_cifar10(data_dir: str | os.PathLike | None, *, download: bool = False,
                 augment: bool = True) -> ClassificationData:
    """CIFAR-10 from ``<data_dir>/cifar-10-batches-py/`` (50,000 train / 10,000 test, 32x32 RGB)."""
    if data_dir is None:
        raise DataError("cifar10 needs --data-dir (the folder that holds cifar-10-batches-py/)")
    root = Path(data_dir)
    folder = _find_cifar_dir(root)
    if folder is None and download:
        download_with_torchvision("CIFAR10", root)
        folder = _find_cifar_dir(root)
    if folder is None:
        raise DataError(
            f"CIFAR-10 not found: looked for {root / CIFAR10_DIR / 'data_batch_1'}; "
            "pass --download to fetch it, or point --data-dir at the folder holding "
            "cifar-10-batches-py/"
        )
    train = [_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_images, test_targets = _cifar_batch(folder / "test_batch")
    train_images = np.concatenate([images for images, _ in train])  # [N, 3, 32, 32]
    train_targets = np.concatenate([labels for _, labels in train])
    class_names = _cifar_class_names(folder / "batches.meta")

    eval_tf = make_transform(32, CIFAR10_MEAN, CIFAR10_STD)
    train_tf = (make_transform(32, CIFAR10_MEAN, CIFAR10_STD, crop_padding=4, flip=True)
                if augment else eval_tf)
    views = array_views(torch.from_numpy(train_images), train_targets,
                        torch.from_numpy(test_images), test_targets, train_tf, eval_tf)
    return ClassificationData(*views, num_classes=10, in_channels=3, image_size=32,
                              names=index_names(len(train_targets)), targets=train_targets,
                              class_names=class_names)


def _cifar_class_names(meta_path: Path) -> list[str]:
    # batches.meta only carries display names; the standard ones serve when it is absent.
    if not meta_path.is_file():
        return list(CIFAR10_CLASSES)
    names = _read_cifar_pickle(meta_path).get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise DataError(f"CIFAR-10 file {meta_path}: 'label_names' must list 10 class names")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
