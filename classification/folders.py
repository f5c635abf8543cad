"""Images in class folders (torchvision's ``ImageFolder`` layout), unlabeled folders to rank, and a
labeling round's images: corrupt files skipped with a ``CorruptImageWarning``."""
from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from torch import Tensor
from torch.utils.data import ConcatDataset

from active_learning.errors import DataError
from active_learning.labels.exported import Labels

from .datasets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    UNLABELED_TARGET,
    ClassificationData,
    CorruptImageWarning,
    ImageFileDataset,
    make_transform,
)

CSV_NAME_STYLES = ("filename", "relpath")


def _scan_split(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """``(class names, [(path, label), ...])`` of one ``<split>/<class>/<image>``
    tree, readable files only."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    if not split_dir.is_dir():
        raise DataError(f"image folder missing: {split_dir} (expected "
                        f"{split_dir}/<class>/<image files>)")
    try:
        classes, class_to_idx = find_classes(str(split_dir))
        samples = make_dataset(str(split_dir), class_to_idx, extensions=IMG_EXTENSIONS,
                               allow_empty=True)
    except FileNotFoundError as err:  # torchvision's message for "no class folders"
        raise DataError(f"no class folders in {split_dir}: {err}") from err
    if not samples:
        raise DataError(f"no image files ({', '.join(IMG_EXTENSIONS)}) under {split_dir}")
    return classes, _readable(samples, split_dir)


def _check_classes(split_dir: Path, classes: list[str], samples: list[tuple[str, int]]) -> None:
    """A ranking needs at least two classes, each with a readable image to learn it from."""
    if len(classes) < 2:
        raise DataError(f"{split_dir} holds {len(classes)} class folder ({', '.join(classes)}); "
                        "classification needs at least two: one folder per class")
    counts = np.bincount([label for _, label in samples], minlength=len(classes))
    empty = [classes[label] for label in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"class folder {split_dir / empty[0]} holds no readable image"
                        + (f" (nor do {', '.join(empty[1:])})" if len(empty) > 1 else "")
                        + ": add images or remove the folder")


def _readable(samples: list[tuple[str, int]], folder: Path) -> list[tuple[str, int]]:
    """The samples whose file opens and verifies (the others are warned about and dropped)."""
    samples = [(path, label) for path, label in samples if _image_ok(path)]
    if not samples:
        raise DataError(f"no readable image under {folder} (every file failed to open)")
    return samples


def _image_ok(path: str) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as err:  # PIL raises many types for damaged files; any of them means "skip"
        warnings.warn(f"skipping corrupt image {path}: {err}", CorruptImageWarning, stacklevel=2)
        return False
    return True


def _folder_names(samples: list[tuple[str, int]], root: Path, csv_names: str) -> list[str]:
    if csv_names == "relpath":
        return [Path(path).relative_to(root).as_posix() for path, _ in samples]
    names = [Path(path).name for path, _ in samples]
    seen: dict[str, str] = {}
    for name, (path, _) in zip(names, samples, strict=True):
        if name in seen:
            raise DataError(
                f"file name {name!r} appears twice ({seen[name]} and {path}); CSV names must be "
                "unique: use --csv-names relpath"
            )
        seen[name] = path
    return names


def load_image_folder(
    data_dir: str | os.PathLike | None, *, image_size: int = 32, csv_names: str = "filename",
    augment: bool = True) -> ClassificationData:
    """RGB images from ``<data_dir>/train/<class>/`` and ``<data_dir>/test/<class>/``,
    resized to ``image_size``."""
    if data_dir is None:
        raise DataError("image_folder needs --data-dir (the folder that holds train/ and test/)")
    _check_image_size(image_size)
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data folder missing: {root}")
    train_classes, train_samples = _scan_split(root / "train")
    test_classes, test_samples = _scan_split(root / "test")
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise DataError(
            f"train and test class folders differ under {root}: only in train {only_train}, "
            f"only in test {only_test}"
        )
    _check_classes(root / "train", train_classes, train_samples)
    names = _folder_names(train_samples, root / "train", csv_names)

    eval_tf = _folder_eval_transform(image_size)
    train_tf = eval_tf
    if augment:  # padding 4 at 32 px, as for CIFAR, scaled with the image size
        train_tf = make_transform(image_size, IMAGENET_MEAN, IMAGENET_STD,
                                  crop_padding=max(1, image_size // 8), flip=True)
    return ClassificationData(
        train=ImageFileDataset(train_samples, image_size, train_tf),
        train_eval=ImageFileDataset(train_samples, image_size, eval_tf),
        test=ImageFileDataset(test_samples, image_size, eval_tf),
        num_classes=len(train_classes), in_channels=3, image_size=image_size, names=names,
        targets=np.array([label for _, label in train_samples], dtype=np.int64),
        class_names=list(train_classes),
    )


def _check_image_size(image_size: int) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size!r}")


def _folder_eval_transform(image_size: int) -> Callable[[Tensor], Tensor]:
    return make_transform(image_size, IMAGENET_MEAN, IMAGENET_STD)


def load_unlabeled_folder(
    path: str | os.PathLike | None, *, image_size: int = 32, csv_names: str = "filename"
) -> tuple[ImageFileDataset, list[str]]:
    """Every image under ``path`` (any depth), to be ranked: ``(dataset, CSV names)``.

    Items are ``(image float32 [3, image_size, image_size], UNLABELED_TARGET)`` with the same
    resizing and normalisation as ``load_image_folder``'s evaluation view, in the order of their
    relative paths. Extensions, the corrupt-file policy (skip with a ``CorruptImageWarning``,
    ``DataError`` when nothing readable is left) and the CSV names (file names, unique; or paths
    relative to ``path`` with ``csv_names="relpath"``) are those of ``load_image_folder``.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    if path is None:
        raise DataError("no unlabeled image folder given")
    if csv_names not in CSV_NAME_STYLES:
        raise DataError(f"unknown csv_names {csv_names!r}; choose one of: "
                        f"{', '.join(CSV_NAME_STYLES)}")
    _check_image_size(image_size)
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"unlabeled image folder missing: {root}")
    # followlinks, like torchvision's ImageFolder: a folder of symlinks to images is common.
    files = [Path(folder, name)
             for folder, _, names in os.walk(root, followlinks=True) for name in names
             if has_file_allowed_extension(name, IMG_EXTENSIONS)]
    if not files:
        raise DataError(f"no image files ({', '.join(IMG_EXTENSIONS)}) under {root}")
    files.sort(key=lambda file: file.relative_to(root).as_posix())
    samples = _readable([(str(file), UNLABELED_TARGET) for file in files], root)
    names = _folder_names(samples, root, csv_names)
    return ImageFileDataset(samples, image_size, _folder_eval_transform(image_size)), names


def with_unlabeled(data: ClassificationData, unlabeled: ImageFileDataset,
                   names: list[str]) -> ClassificationData:
    """``data`` whose training items are followed by the ``U`` unlabeled items (absolute indices
    ``N_train .. N_train + U - 1``, target ``UNLABELED_TARGET``), for ranking them with the loop.

    Only the first ``N_train`` items may be trained on: the unlabeled ones carry no label, so both
    training views hold them without augmentation. Raises ``DataError`` when a file is in both sets.
    """
    labeled_files = {os.path.realpath(path) for path, _ in getattr(data.train_eval, "samples", [])}
    shared = [path for path, _ in unlabeled.samples if os.path.realpath(path) in labeled_files]
    if shared:
        raise DataError(f"{len(shared)} unlabeled image(s) are also labeled training images, e.g. "
                        f"{shared[0]}; point the unlabeled folder elsewhere than train/")
    return dataclasses.replace(
        data,
        train=ConcatDataset([data.train, unlabeled]),
        train_eval=ConcatDataset([data.train_eval, unlabeled]),
        names=list(data.names) + list(names),
        targets=np.concatenate([data.targets, unlabeled.targets]),
    )


def load_round_data(images_dir: str | os.PathLike, labeled: Sequence[tuple[str, int]],
                    candidates: Sequence[str], class_names: Sequence[str], *,
                    image_size: int = 32) -> ClassificationData:
    """A labeling round's pool: the ``labeled`` images (name under ``images_dir``, class index
    into ``class_names``), then the ``candidates`` to rank (``UNLABELED_TARGET``); no test set.

    Images are resized to ``image_size`` and normalised as ``load_image_folder`` does; the
    labeled images' training view is augmented, the candidates never are. Names are the paths
    under ``images_dir``.
    """
    _check_image_size(image_size)
    root = Path(images_dir)
    eval_tf = _folder_eval_transform(image_size)
    train_tf = make_transform(image_size, IMAGENET_MEAN, IMAGENET_STD,
                              crop_padding=max(1, image_size // 8), flip=True)
    labeled_samples = [(str(root / name), int(label)) for name, label in labeled]
    unlabeled = ImageFileDataset([(str(root / name), UNLABELED_TARGET) for name in candidates],
                                 image_size, eval_tf)
    return ClassificationData(
        train=ConcatDataset([ImageFileDataset(labeled_samples, image_size, train_tf), unlabeled]),
        train_eval=ConcatDataset([ImageFileDataset(labeled_samples, image_size, eval_tf),
                                  unlabeled]),
        test=ImageFileDataset([], image_size, eval_tf),
        num_classes=len(class_names), in_channels=3, image_size=image_size,
        names=[name for name, _ in labeled] + list(candidates),
        targets=np.concatenate([np.array([label for _, label in labeled_samples],
                                         dtype=np.int64), unlabeled.targets]),
        class_names=list(class_names))


def samples_from_labels(labels: Labels) -> list[tuple[str, int]]:
    """A round's labeled images (``active_learning.labels.read_labels`` for classification) as
    :class:`ImageFileDataset` samples ``(path, class index into labels.categories)``, in the
    labels' order."""
    return [(str(labels.images_dir / name), int(label)) for name, label in labels.targets.items()]
