"""Classification datasets, read from their real on-disk formats.

``load_classification_data(dataset, data_dir, ...)`` returns a ``ClassificationData`` with an
augmented training view, the same training items without augmentation (for scoring the pool), a
test set, and one CSV name per training item. Every item is
``(image [C, H, W] float32, label int)``.

Supported datasets and the layout each expects:

- ``cifar10``: torchvision's layout ``<data_dir>/cifar-10-batches-py/`` (``data_batch_1`` ..
  ``data_batch_5``, ``test_batch``, ``batches.meta``: pickled dicts with ``data`` uint8
  ``[N, 3072]``, channel-major, and ``labels``). ``cifar.py`` reads the pickles through an
  unpickler that only accepts numpy arrays and plain containers (torchvision's ``CIFAR10``
  also checks md5 sums, which custom or test copies cannot match). ``download=True`` fetches
  the archive with torchvision when the folder is missing. ``<data_dir>`` may also be the
  ``cifar-10-batches-py`` folder itself.
- ``fashion_mnist``: torchvision's layout ``<data_dir>/FashionMNIST/raw/{train,t10k}-{images-idx3,
  labels-idx1}-ubyte`` (plain or ``.gz``; the files may also sit directly in ``<data_dir>``). When
  they are not there, or ``data_dir`` is None, Debian's ``fashion-mnist`` package folder
  ``/usr/share/datasets/fashion-mnist/`` is used. ``fashion_mnist.py`` parses the IDX files
  (magic number, dims, big-endian sizes); a malformed or truncated file raises ``DataError``
  naming it.
- ``image_folder``: ``<data_dir>/train/<class>/<image>`` and ``<data_dir>/test/<class>/<image>``
  (torchvision ``ImageFolder`` layout, same class folders in both). Images are converted to RGB and
  resized to ``image_size`` x ``image_size``. Corrupt images: every file is opened and verified with
  PIL once, at load; a file that fails is SKIPPED with a ``CorruptImageWarning`` naming it, and
  ``DataError`` is raised if no readable image remains in a split. (``verify`` checks headers and
  chunk checksums without decoding pixels, so a file damaged deeper inside can still fail when it
  is read; that raises ``DataError`` naming the file.) CSV names are the file names
  (``csv_names="filename"``, which must then be unique across class folders) or the paths relative
  to the train folder with ``/`` separators (``csv_names="relpath"``).
  ``load_unlabeled_folder`` reads a folder of unlabeled images (any depth) with the same rules, and
  ``with_unlabeled`` appends them to a dataset's training items, for ranking them (target -1).
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0..16), split by a seeded
  stratified shuffle into 1,500 train / 297 test items. For tiny, fast runs and tests.

CSV names of the array datasets are ``train_00042.png`` (the absolute training index, 5 digits at
least). Missing or empty folders, bad files and unknown names raise ``DataError`` with one message
meant for the user.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from active_learning.errors import DataError

from .cifar import load_cifar10
from .datasets import ClassificationData, array_views, index_names, make_transform
from .fashion_mnist import load_fashion_mnist
from .folders import CSV_NAME_STYLES, load_image_folder

DATASETS = ("cifar10", "fashion_mnist", "image_folder", "digits")


DIGITS_TRAIN_SIZE = 1500
DIGITS_SEED = 0


# --------------------------------------------------------------------------------------------------
# Entry point


def load_classification_data(
    dataset: str,
    data_dir: str | os.PathLike | None,
    *,
    download: bool = False,
    csv_names: str = "filename",
    augment: bool = True,
    image_size: int = 32,
) -> ClassificationData:
    """Load ``dataset`` (one of ``DATASETS``) from ``data_dir``.

    Args:
        dataset: ``"cifar10"``, ``"fashion_mnist"``, ``"image_folder"`` or ``"digits"``.
        data_dir: the dataset root (see the module docstring for each layout); ignored by
            ``digits``.
        download: fetch CIFAR-10 / Fashion-MNIST with torchvision when the files are missing.
        csv_names: ``"filename"`` or ``"relpath"``; only ``image_folder`` has real file names.
        augment: False makes ``train`` identical to ``train_eval`` (no random crop / flip).
        image_size: side length images are resized to (``image_folder`` only).

    Raises:
        DataError: unknown dataset, missing / empty folder, malformed file, duplicate CSV names.
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")
    if csv_names not in CSV_NAME_STYLES:
        raise DataError(f"unknown csv_names {csv_names!r}; choose one of: "
                        f"{', '.join(CSV_NAME_STYLES)}")
    if dataset == "cifar10":
        return load_cifar10(data_dir, download=download, augment=augment)
    if dataset == "fashion_mnist":
        return load_fashion_mnist(data_dir, download=download, augment=augment)
    if dataset == "image_folder":
        return load_image_folder(data_dir, image_size=image_size, csv_names=csv_names,
                                 augment=augment)
    return load_digits_data(augment=augment)


# --------------------------------------------------------------------------------------------------
# scikit-learn digits


def load_digits_data(*, augment: bool = True) -> ClassificationData:
    """sklearn's 8x8 digits: 1,500 train / 297 test, stratified, seeded; 1 channel, values 0..16.

    ``augment`` is accepted for symmetry but unused: 8x8 glyphs have no room for crops or flips.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None]  # [1797, 1, 8, 8], values 0..16
    targets = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(targets)), train_size=DIGITS_TRAIN_SIZE, stratify=targets,
        random_state=DIGITS_SEED
    )
    train_images, train_targets = images[train_idx], targets[train_idx]
    # Statistics of the train split on the 0..1 scale: fixed numbers, as the split is seeded.
    scaled = train_images.astype(np.float64) / 16.0
    transform = make_transform(8, (float(scaled.mean()),), (float(scaled.std()),), max_value=16.0)
    views = array_views(torch.from_numpy(np.ascontiguousarray(train_images)), train_targets,
                   torch.from_numpy(np.ascontiguousarray(images[test_idx])), targets[test_idx],
                   transform, transform)
    return ClassificationData(*views, num_classes=10, in_channels=1, image_size=8,
                              names=index_names(len(train_targets)), targets=train_targets,
                              class_names=[str(c) for c in bunch.target_names])


