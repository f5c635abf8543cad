"""Classification datasets, read from their real on-disk formats.

``load_classification_data(dataset, data_dir, ...)`` returns a ``ClassificationData`` with an
augmented training view, the same training items without augmentation (for scoring the pool), a
test set, and one CSV name per training item. Every item is
``(image [C, H, W] float32, label int)``.

Supported datasets and the layout each expects:

- ``cifar10``: torchvision's layout ``<data_dir>/cifar-10-batches-py/`` (``data_batch_1`` ..
  ``data_batch_5``, ``test_batch``, ``batches.meta``: pickled dicts with ``data`` uint8
  ``[N, 3072]``, channel-major, and ``labels``). The pickles are read here, through an unpickler
  that only accepts numpy arrays and plain containers (torchvision's ``CIFAR10`` also checks md5
  sums, which custom or test copies cannot match). ``download=True`` fetches the archive with
  torchvision when the folder is missing. ``<data_dir>`` may also be the ``cifar-10-batches-py``
  folder itself.
- ``fashion_mnist``: torchvision's layout ``<data_dir>/FashionMNIST/raw/{train,t10k}-{images-idx3,
  labels-idx1}-ubyte`` (plain or ``.gz``; the files may also sit directly in ``<data_dir>``). When
  they are not there, or ``data_dir`` is None, Debian's ``fashion-mnist`` package folder
  ``/usr/share/datasets/fashion-mnist/`` is used. IDX files are parsed here (magic number, dims,
  big-endian sizes); a malformed or truncated file raises ``DataError`` naming it.
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

import dataclasses
import gzip
import os
import pickle
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from active_learning.errors import DataError
from active_learning.labels import Labels

DATASETS = ("cifar10", "fashion_mnist", "image_folder", "digits")
CSV_NAME_STYLES = ("filename", "relpath")

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
CIFAR10_DIR = "cifar-10-batches-py"

FASHION_MNIST_MEAN = (0.2860,)
FASHION_MNIST_STD = (0.3530,)
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

# Generic photos: the ImageNet statistics are the usual default when a dataset's own are unknown.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

UNLABELED_TARGET = -1  # the label of an image to rank: never trained on

DIGITS_TRAIN_SIZE = 1500
DIGITS_SEED = 0


class CorruptImageWarning(UserWarning):
    """An image file failed to open or verify and was skipped."""


@dataclass
class ClassificationData:
    """A loaded classification dataset.

    ``train`` and ``train_eval`` hold the same items in the same order (absolute dataset indices),
    with and without augmentation. ``names[i]`` is the CSV name of training item ``i``;
    ``targets: int64 [N_train]``.
    """

    train: Dataset
    train_eval: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    names: list[str]
    targets: np.ndarray
    class_names: list[str]


# --------------------------------------------------------------------------------------------------
# Datasets and transforms


class ArrayImageDataset(Dataset):
    """Images held in memory: ``images: uint8 [N, C, H, W]``, ``targets: int64 [N]``.

    ``transform`` maps one ``uint8 [C, H, W]`` tensor to a float tensor.
    """

    def __init__(self, images: Tensor, targets: np.ndarray,
                 transform: Callable[[Tensor], Tensor]) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} "
                             f"{tuple(images.shape)}")
        if len(images) != len(targets):
            raise ValueError(f"images ({len(images)}) and targets "
                             f"({len(targets)}) differ in length")
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.transform(self.images[index]), int(self.targets[index])


class ImageFileDataset(Dataset):
    """Images read from files: ``samples`` is ``[(path, label), ...]``.

    Each image is converted to RGB, resized to ``image_size`` x ``image_size`` and passed to
    ``transform`` as ``uint8 [3, image_size, image_size]``.
    """

    def __init__(self, samples: list[tuple[str, int]], image_size: int,
                 transform: Callable[[Tensor], Tensor]) -> None:
        self.samples = samples
        self.targets = np.array([label for _, label in samples], dtype=np.int64)
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB").resize((self.image_size, self.image_size), Image.BILINEAR)
        except (OSError, ValueError, SyntaxError) as err:  # PIL reports damaged data with all three
            raise DataError(f"cannot read image {path}: {err}") from err
        return self.transform(pil_to_tensor(img)), label  # [3, S, S]


class _Scale:
    """``uint8 [C, H, W]`` -> ``float32`` divided by ``max_value`` (255 for
    photos, 16 for digits)."""

    def __init__(self, max_value: float) -> None:
        self.max_value = float(max_value)

    def __call__(self, x: Tensor) -> Tensor:
        return x.to(torch.float32) / self.max_value


def make_transform(
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    crop_padding: int = 0,
    flip: bool = False,
    max_value: float = 255.0,
) -> Callable[[Tensor], Tensor]:
    """``uint8 [C, S, S]`` -> normalised ``float32 [C, S, S]``, with optional random crop / flip.

    The crop pads with zeros before scaling (black borders), like torchvision's CIFAR recipe.
    """
    from torchvision.transforms import v2

    steps: list = []
    if crop_padding > 0:
        steps.append(v2.RandomCrop(image_size, padding=crop_padding))
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [_Scale(max_value), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


def _views(
    train_images: Tensor,
    train_targets: np.ndarray,
    test_images: Tensor,
    test_targets: np.ndarray,
    train_transform: Callable,
    eval_transform: Callable,
) -> tuple[Dataset, Dataset, Dataset]:
    # train and train_eval share the same storage: no copy of the images.
    return (
        ArrayImageDataset(train_images, train_targets, train_transform),
        ArrayImageDataset(train_images, train_targets, eval_transform),
        ArrayImageDataset(test_images, test_targets, eval_transform),
    )


def index_names(n: int, prefix: str = "train") -> list[str]:
    """``["train_00000.png", ...]``: CSV names for datasets whose items have no file name."""
    return [f"{prefix}_{i:05d}.png" for i in range(n)]


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
# CIFAR-10


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
        _download_with_torchvision("CIFAR10", root)
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
    views = _views(torch.from_numpy(train_images), train_targets, torch.from_numpy(test_images),
                   test_targets, train_tf, eval_tf)
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


def _download_with_torchvision(name: str, root: Path) -> None:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, name)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as err:  # network errors come in many types; the user needs one message
        raise DataError(f"downloading {name} into {root} failed: {err}") from err


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files)

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
        _download_with_torchvision("FashionMNIST", root)
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
    views = _views(torch.from_numpy(train_images), train_targets, torch.from_numpy(test_images),
                   test_targets, train_tf, eval_tf)
    return ClassificationData(*views, num_classes=10, in_channels=1, image_size=28,
                              names=index_names(len(train_targets)), targets=train_targets,
                              class_names=list(FASHION_MNIST_CLASSES))


# --------------------------------------------------------------------------------------------------
# Image folders


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
    views = _views(torch.from_numpy(np.ascontiguousarray(train_images)), train_targets,
                   torch.from_numpy(np.ascontiguousarray(images[test_idx])), targets[test_idx],
                   transform, transform)
    return ClassificationData(*views, num_classes=10, in_channels=1, image_size=8,
                              names=index_names(len(train_targets)), targets=train_targets,
                              class_names=[str(c) for c in bunch.target_names])


def samples_from_labels(labels: Labels) -> list[tuple[str, int]]:
    """A round's labeled images (``active_learning.labels.read_labels`` for classification) as
    :class:`ImageFileDataset` samples ``(path, class index into labels.categories)``, in the
    labels' order."""
    return [(str(labels.images_dir / name), int(label)) for name, label in labels.targets.items()]
