"""Fashion-MNIST from IDX files (plain or gzip), in torchvision's layout or Debian's
``dataset-fashion-mnist`` package folder. The IDX parser is ours: torchvision's
``read_sn3_pascalvincent_tensor`` asserts on a malformed file and reads no ``.gz``, where a user
needs one message naming the file."""
from __future__ import annotations

import gzip
import os
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

FASHION_MNIST_MEAN = (0.2860,)


FASHION_MNIST_STD = (0.3530,)


FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (plain or gzip): magic ``00 00 <dtype> <ndim>``, ndim big-endian
    uint32 dims, data.

    Raises ``DataError`` naming the file when it is truncated, too long or malformed.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    # gzip reports truncation as EOFError, bad headers as OSError
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read IDX file {path}: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"IDX file {path}: bad magic number {raw[:4].hex() or '(empty file)'}")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path}: truncated header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {path}: dims {dims} need {expected} data bytes, found {len(raw) - header} "
            "(truncated or corrupt file)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find_idx(folders: list[Path], stem: str) -> Path | None:
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _fashion_split(folders: list[Path], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 1, 28, 28], labels int64 [N])`` for prefix ``train`` or ``t10k``."""
    paths = [_find_idx(folders, f"{prefix}-{kind}-ubyte")
             for kind in ("images-idx3", "labels-idx1")]
    images_path, labels_path = paths
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"IDX file {images_path}: expected uint8 images [N, 28, 28], got "
                        f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"IDX file {labels_path}: expected {len(images)} labels, got "
                        f"shape {labels.shape}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise DataError(f"IDX file {labels_path}: labels outside 0..9")
    return images[:, None].copy(), labels  # copy: frombuffer arrays are read-only


def _fashion_folders(data_dir: Path | None) -> list[Path]:
    folders = [] if data_dir is None else [data_dir / "FashionMNIST" / "raw", data_dir]
    return folders + [Path(FASHION_MNIST_SYSTEM_DIR)]


def _fashion_complete(folders: list[Path]) -> bool:
    stems = [f"{p}-{k}-ubyte" for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
    # All four files must come from the same folder: never mix a user's copy with the system one.
    return any(all(_find_idx([folder], stem) for stem in stems) for folder in folders)


def load_fashion_mnist(data_dir: str | os.PathLike | None, *, download: bool = False,
                       augment: bool = True) -> ClassificationData:
    """Fashion-MNIST (60,000 train / 10,000 test, 28x28 grayscale) from IDX files."""
    root = None if data_dir is None else Path(data_dir)
    folders = _fashion_folders(root)
    if not _fashion_complete(folders) and download and root is not None:
        download_with_torchvision("FashionMNIST", root)
    folder = next((f for f in folders if _fashion_complete([f])), None)
    if folder is None:
        looked = ", ".join(str(f) for f in folders)
        raise DataError(
            "Fashion-MNIST not found: looked for {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] "
            f"in {looked}; pass --data-dir with --download to fetch it, or install Debian's "
            "fashion-mnist package"
        )
    train_images, train_targets = _fashion_split([folder], "train")
    test_images, test_targets = _fashion_split([folder], "t10k")

    eval_tf = make_transform(28, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    train_tf = (make_transform(28, FASHION_MNIST_MEAN, FASHION_MNIST_STD, crop_padding=2)
                if augment else eval_tf)
    views = array_views(torch.from_numpy(train_images), train_targets,
                        torch.from_numpy(test_images), test_targets, train_tf, eval_tf)
    return ClassificationData(*views, num_classes=10, in_channels=1, image_size=28,
                              names=index_names(len(train_targets)), targets=train_targets,
                              class_names=list(FASHION_MNIST_CLASSES))
