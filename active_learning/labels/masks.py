"""Segmentation labels: where an image's class map comes from, and a folder of mask PNGs.

A segmentation target is a *mask label*, read when it is needed (a pool's label maps do not fit
in memory):

* :class:`PngMask`: a PNG label map, its classes stored as class ids (``class_ids``: 0..C-1,
  255 ignored; 8-bit grey or palette indices, as VOC's ``SegmentationClass``), as colours
  (``colors``: CVAT's segmentation mask export paints class k in the colour ``labelmap.txt``
  gives it) or as Cityscapes label ids (``cityscapes``);
* :class:`CocoMask`: COCO polygons and RLE masks, painted with pycocotools' ``annToMask``.

Both give ``train_ids()`` (int64 [H, W], 255 ignored) and ``instance_ids()`` (int64 [H, W], 0 for
no instance, or None). :func:`write_label_maps` writes every label of a round as the class-id
PNGs (and 16-bit instance PNGs) that ``segmentation``'s folder format reads.

A folder export (:func:`read_mask_folder`) is one PNG per labeled image, named after it
(``masks/a/b.png`` labels the image ``a/b.<ext>``). CVAT's "Segmentation mask 1.1" (Datumaro's
VOC segmentation exporter) writes ``SegmentationClass/<item id>.png`` in colours and
``labelmap.txt`` (``name:r,g,b:parts:actions``, ``background`` first, ``0,0,0``); a folder of
class-id PNGs names its classes in ``classes.txt`` (one name per line, in class-id order) or
takes the workspace's.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from active_learning.errors import DataError
from active_learning.labels.categories import match_categories
from active_learning.labels.cityscapes_ids import FIRST_INSTANCE_ID, IGNORE, train_ids
from active_learning.labels.collect import Collected
from active_learning.labels.exported import Labels
from active_learning.labels.images import ImageIndex
from active_learning.labels.voc import read_label_map

ENCODINGS = ("class_ids", "colors", "cityscapes")


def read_png(path: Path, mode: str | None = None) -> np.ndarray:
    """The pixels of ``path`` as PIL stores them (palette indices for a palette image), or
    converted to ``mode``; DataError naming the file if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode) if mode else image)
    except Exception as error:  # PIL raises many types for damaged files
        raise DataError(f"cannot read {path}: {error}") from None


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG from its header."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception as error:
        raise DataError(f"cannot read {path}: {error}") from None


@dataclass
class PngMask:
    """A label map in a PNG file. ``size`` (height, width) is its image's; ``colors[k]`` the RGB
    of class k (``colors`` encoding); ``classes[v]`` the class a stored id v stands for
    (``class_ids`` encoding, when the file's ids are not the classes' order; -1: none);
    ``instances`` an instance-id PNG (0 or a stuff id: none)."""

    path: Path
    size: tuple[int, int]
    encoding: str = "class_ids"
    num_classes: int = 256
    colors: tuple[tuple[int, int, int], ...] = ()
    classes: tuple[int, ...] = ()
    instances: Path | None = None
    image: Path | None = None          # for messages: the image it labels

    def _checked(self, raw: np.ndarray, what: str, path: Path) -> np.ndarray:
        if raw.shape[:2] != tuple(self.size):
            image = f" {self.image}" if self.image else ""
            raise DataError(f"{what} {path} is {raw.shape[1]}x{raw.shape[0]} but its image"
                            f"{image} is {self.size[1]}x{self.size[0]}")
        return raw

    def train_ids(self) -> np.ndarray:
        """int64 [H, W]: the class of each pixel, 255 where it is ignored."""
        if self.encoding == "colors":
            rgb = self._checked(read_png(self.path, "RGB"), "mask", self.path).astype(np.int64)
            return colors_to_classes(rgb, self.colors, self.path)
        raw = read_png(self.path)
        if raw.ndim != 2:
            raise DataError(f"label map {self.path} has shape {raw.shape}; expected one channel")
        raw = self._checked(raw, "label map", self.path)
        if self.encoding == "cityscapes":
            return train_ids(raw, self.path)
        classes = raw.astype(np.int64)
        bad = (classes >= (len(self.classes) or self.num_classes)) & (classes != IGNORE)
        if bad.any():
            raise DataError(f"mask {self.path} holds class ids "
                            f"{np.unique(classes[bad])[:5].tolist()} outside "
                            f"0..{(len(self.classes) or self.num_classes) - 1} "
                            "(and 255 = ignored)")
        if self.classes:
            table = np.full(256, IGNORE, dtype=np.int64)
            table[: len(self.classes)] = self.classes
            classes = table[classes.clip(0, 255)]
        return classes

    def instance_ids(self) -> np.ndarray | None:
        """int64 [H, W] instance ids (0, or below 1000 for Cityscapes: no instance), or None."""
        if self.instances is None:
            return None
        return self._checked(read_png(self.instances).astype(np.int64), "instance map",
                             self.instances)


def colors_to_classes(rgb: np.ndarray, colors: Sequence[tuple[int, int, int]],
                      path: Path) -> np.ndarray:
    """RGB int [H, W, 3] -> class int64 [H, W] by ``colors`` (class k painted ``colors[k]``);
    DataError naming ``path`` for a colour that is no class's."""
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    table = np.array([(r << 16) | (g << 8) | b for r, g, b in colors], dtype=np.int64)
    order = np.argsort(table)
    position = np.searchsorted(table[order], code).clip(0, len(table) - 1)
    found = table[order][position] == code
    if not found.all():
        value = int(code[~found][0])
        raise DataError(f"mask {path} has pixels of colour "
                        f"({value >> 16}, {(value >> 8) & 255}, {value & 255}), which "
                        "labelmap.txt gives no label")
    return order[position].astype(np.int64)


@dataclass
class CocoMask:
    """An image's COCO annotations painted into a class map (torchvision's reference
    segmentation recipe, references/segmentation/coco_utils.py ``ConvertCocoPolysToMask``):
    pixels no annotation covers are class 0 (background), an annotation paints its class
    (``classes[category_id]``), and pixels two annotations of *different* classes cover are
    255 (torchvision ignores every overlap; one of the same class leaves no doubt about the
    class, so it is kept). A category named ``background`` (class 0) paints what is background
    anyway: it never clashes with an object drawn over it. ``annotations``: the image's COCO
    annotations (dicts, in file order); ``size`` (height, width), which ``coco``'s entry of the
    image gives too (annToMask sizes masks by it)."""

    coco: Any
    annotations: tuple[dict, ...]
    classes: Mapping[int, int]
    size: tuple[int, int]
    image_id: int = 0

    def _masks(self) -> list[tuple[int, np.ndarray]]:
        """(class, bool [H, W]) of each annotation, in file order."""
        return [(self.classes[note["category_id"]], self.coco.annToMask(note).astype(bool))
                for note in self.annotations]

    def train_ids(self) -> np.ndarray:
        """int64 [H, W] (see the class doc)."""
        return paint_train_ids(self.size, self._masks())

    def instance_ids(self) -> np.ndarray:
        """int64 [H, W]: annotation k (1-based, in file order) of a class other than 0 over its
        pixels; 0 elsewhere. Where two overlap, the later one (drawn on top)."""
        return paint_instance_ids(self.size, self._masks())

    def key(self) -> str:
        import json

        return json.dumps(sorted(json.dumps([self.classes[n["category_id"]], n["segmentation"]],
                                            sort_keys=True) for n in self.annotations))


def paint_train_ids(size: tuple[int, int], masks: Iterable[tuple[int, np.ndarray]]) -> np.ndarray:
    """int64 [H, W] (``size``) class ids from ``(class, bool [H, W])`` region masks in drawing
    order: 0 (background) where no region of another class lies; where two regions of
    different classes overlap, the ignore label (whose pixel it is cannot be told); a region of
    class 0 draws nothing (background is what every uncovered pixel is already)."""
    label = np.full(size, -1, dtype=np.int64)
    for cls, mask in masks:
        if cls == 0:
            continue
        free = mask & (label == -1)
        clash = mask & (label != -1) & (label != cls)
        label[free] = cls
        label[clash] = IGNORE
    label[label == -1] = 0
    return label


def paint_instance_ids(size: tuple[int, int],
                       masks: Iterable[tuple[int, np.ndarray]]) -> np.ndarray:
    """int64 [H, W]: region k (1-based, in drawing order) of a class other than 0 over its
    pixels, 0 elsewhere; where two overlap, the later one (drawn on top)."""
    instances = np.zeros(size, dtype=np.int64)
    for number, (cls, mask) in enumerate(masks, start=1):
        if cls != 0:
            instances[mask] = number
    return instances


MaskLabel = PngMask | CocoMask


def mask_key(mask: MaskLabel) -> str:
    """What makes two labels of one image equal (comparing an export's duplicate entries)."""
    if hasattr(mask, "key"):   # COCO's or Label Studio's regions
        return str(mask.key())
    import hashlib

    return hashlib.sha256(mask.path.read_bytes()).hexdigest()


def read_class_list(path: Path) -> list[str]:
    """``classes.txt``: one class name per line, in class-id order (blank lines and ``#``
    comments skipped)."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if not names:
        raise DataError(f"{path} lists no class name")
    return names


# Folders of an export that hold no class masks: its images (CVAT's, Label Studio's), VOC's
# coloured instance masks, the folder format's instance maps.
NOT_MASKS = ("JPEGImages", "images", "SegmentationObject", "instances")


def mask_files(folder: Path) -> tuple[Path, list[Path]]:
    """The masks of a folder export: ``SegmentationClass/`` (CVAT, VOC) when there is one, else
    the folder itself less :data:`NOT_MASKS`; every ``.png`` under it (any depth), sorted.
    Returns (base, files)."""
    base = folder / "SegmentationClass" if (folder / "SegmentationClass").is_dir() else folder
    return base, sorted(path for path in base.rglob("*.png") if path.is_file()
                        and path.relative_to(base).parts[0] not in NOT_MASKS)


def refuse_lossy_masks(base: Path) -> None:
    """DataError naming the first mask under ``base`` (less :data:`NOT_MASKS`) stored in an
    image format other than PNG: a JPEG's compression changes class ids at every edge, so
    such a file cannot be read as a mask, and leaving it out would drop its labels unseen."""
    from active_learning.files.images import is_image_name

    lossy = sorted(path for path in base.rglob("*") if path.suffix.lower() != ".png"
                   and path.relative_to(base).parts[0] not in NOT_MASKS
                   and is_image_name(path.relative_to(base)) and path.is_file())
    if lossy:
        raise DataError(f"{lossy[0]}: a mask must be a PNG (lossless), not {lossy[0].suffix} "
                        f"({len(lossy)} such file(s) under {base}); export the masks as PNG")


def instance_file(folder: Path, base: Path, mask: Path) -> Path | None:
    """The instance-id map of ``mask``: ``instances/<its path>`` (a 16-bit PNG, 0: no
    instance), the folder format's. (VOC's ``SegmentationObject/`` paints instances in colours,
    which name no instance id: it is not read.)"""
    candidate = folder / "instances" / mask.relative_to(base)
    return candidate if candidate.is_file() else None


def _class_table(folder: Path, base: Path, expected: list[str] | None,
                 source: str) -> tuple[list[str], str, tuple, tuple, list[Path]]:
    """(category names, encoding, colours by class, class by stored id, files read) of a mask
    folder: ``labelmap.txt`` (CVAT: colours, or ids in its order), ``classes.txt`` (ids in its
    order), else the workspace's categories (ids in their order)."""
    for where in (folder, base):
        label_map = where / "labelmap.txt"
        if label_map.is_file():
            entries = read_label_map(label_map)
            found = [name for name, _ in entries]
            names = match_categories(found, expected, source, complete=True)
            if all(colour is not None for _, colour in entries):
                colour_of = dict(entries)
                return names, "colors", tuple(colour_of[name] for name in names), (), [label_map]
            return names, "class_ids", (), tuple(names.index(name) for name in found), \
                [label_map]
        class_list = where / "classes.txt"
        if class_list.is_file():
            found = read_class_list(class_list)
            names = match_categories(found, expected, source, complete=True)
            return names, "class_ids", (), tuple(names.index(name) for name in found), \
                [class_list]
    if expected is not None:
        return list(expected), "class_ids", (), (), []
    raise DataError(f"{folder}: no labelmap.txt or classes.txt names the classes of its masks; "
                    "add classes.txt (one name per line, in class-id order)")


def _mask_index(folder: Path, base: Path, index: ImageIndex | None,
                files: Sequence[Path]) -> ImageIndex:
    """``index``, or the images of ``JPEGImages/`` (CVAT with images) or ``images/``."""
    if index is not None:
        return index
    for candidate in (folder / "JPEGImages", folder / "images"):
        if candidate.is_dir():
            images = ImageIndex.of_folder(candidate)
            stems = [mask.relative_to(base).with_suffix("").as_posix() for mask in files]
            if all(images.resolve_stem(stem, str(folder)) is not None for stem in stems):
                return images
    raise DataError(f"{folder}: found the images of its masks neither in JPEGImages/ nor in "
                    "images/; give --images")


def read_mask_folder(kind: str, folder: Path, index: ImageIndex | None,
                     expected: list[str] | None, source: str) -> Labels:
    """A folder of mask PNGs (see the module doc) as ``kind`` (mask) labels: one
    :class:`PngMask` per image, checked to have its image's size."""
    if not folder.is_dir():
        raise DataError(f"--labels {folder} is not a folder of mask PNGs")
    base, files = mask_files(folder)
    refuse_lossy_masks(base)
    if not files:
        raise DataError(f"no mask PNG under {base}")
    names, encoding, colors, classes, listed = _class_table(folder, base, expected, source)
    index = _mask_index(folder, base, index, files)
    collected = Collected()
    for mask in files:
        stem = mask.relative_to(base).with_suffix("").as_posix()
        name = index.resolve_stem(stem, str(mask))
        if name is None:
            raise DataError(f"{mask}: no image {stem}.* under --images {index.folder}")
        width, height = index.size(name)
        mask_width, mask_height = png_size(mask)
        if (mask_width, mask_height) != (width, height):
            raise DataError(f"mask {mask} is {mask_width}x{mask_height} but its image "
                            f"{index.path(name)} is {width}x{height}")
        target = PngMask(mask, (height, width), encoding, len(names), colors, classes,
                         instance_file(folder, base, mask), index.path(name))
        collected.add(name, target, mask_key(target), str(mask))
    return collected.labels(kind, "masks", source, index.folder, names,
                            [*listed, *files], folder)


def write_label_maps(targets: Mapping[str, MaskLabel], folder: str | Path,
                     num_classes: int) -> dict[str, PngMask]:
    """Write each target as a class-id PNG ``<folder>/<name>.png`` (uint8, 255 ignored; the
    image's own extension kept in the name, so ``a.jpg`` and ``a.png`` do not collide) and,
    where it has instances, a 16-bit ``<folder>/instances/<name>.png`` (0: none; Cityscapes'
    stuff ids below 1000 become 0), each atomically: the files ``segmentation``'s folder format
    reads (``read_label(..., "folder", ...)``, instances from id 1). Returns the written labels
    by name (``class_ids``, ``num_classes`` classes). Only ``folder`` is written to."""
    from PIL import Image

    from active_learning.files.atomic import atomic_open

    folder = Path(folder)
    written: dict[str, PngMask] = {}
    for name, target in targets.items():
        classes = target.train_ids()
        instances = target.instance_ids()
        path = folder / f"{name}.png"
        with atomic_open(path, "wb") as handle:
            Image.fromarray(classes.astype(np.uint8)).save(handle, format="PNG")
        instance_path = None
        if instances is not None:
            if isinstance(target, PngMask) and target.encoding == "cityscapes":
                instances = np.where(instances >= FIRST_INSTANCE_ID, instances, 0)
            if instances.max() > 65535:
                raise DataError(f"{name}: instance ids up to {instances.max()} do not fit a "
                                "16-bit PNG")
            instance_path = folder / "instances" / f"{name}.png"
            with atomic_open(instance_path, "wb") as handle:
                Image.fromarray(instances.astype(np.uint16)).save(handle, format="PNG")
        written[name] = PngMask(path, target.size, "class_ids", num_classes,
                                instances=instance_path, image=getattr(target, "image", None))
    return written
