"""Write composed scenes in the Pascal VOC layout (JPEGImages / Annotations XML / ImageSets).

``<root>/VOC2007/`` gets ``trainval`` and ``test`` image sets, one XML per image with a box per
visible item (the extent of its visible silhouette, VOC's 1-based inclusive pixel indices), and
``<root>/classes.txt`` lists the ten class names in label order, which the detection task reads
instead of VOC's twenty.
"""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from .scenes import SceneConfig, SceneObject, compose_scene_with_objects

# Fashion-MNIST's classes as VOC-style object names (lower case, no spaces).
FASHION_MNIST_CLASS_NAMES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                             "sneaker", "bag", "ankleboot")
DIFFICULT_BELOW = 0.5    # an item with less than half of its silhouette visible is "difficult"
VOC_SCENES = SceneConfig(height=300, width=300, min_items=2, max_items=6, min_size=32, max_size=120)


def annotation_xml(filename: str, size: tuple[int, int], objects: list[SceneObject],
                   class_names: tuple[str, ...] = FASHION_MNIST_CLASS_NAMES) -> str:
    """A VOC annotation: every field VOC writes, boxes 1-based inclusive; ``size`` = (H, W)."""
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "folder").text = "VOC2007"
    ElementTree.SubElement(root, "filename").text = filename
    source = ElementTree.SubElement(root, "source")
    ElementTree.SubElement(source, "database").text = "Fashion-MNIST scenes"
    size_node = ElementTree.SubElement(root, "size")
    for name, value in (("width", size[1]), ("height", size[0]), ("depth", 3)):
        ElementTree.SubElement(size_node, name).text = str(value)
    ElementTree.SubElement(root, "segmented").text = "0"
    for item in objects:
        node = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(node, "name").text = class_names[item.item_class]
        ElementTree.SubElement(node, "pose").text = "Unspecified"
        ElementTree.SubElement(node, "truncated").text = str(int(item.truncated))
        ElementTree.SubElement(node, "difficult").text = str(int(item.visible < DIFFICULT_BELOW))
        box = ElementTree.SubElement(node, "bndbox")
        for name, value in zip(("xmin", "ymin", "xmax", "ymax"), item.box, strict=True):
            ElementTree.SubElement(box, name).text = str(value + 1)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode") + "\n"


def write_voc(root: str | Path, items: dict[str, tuple[np.ndarray, np.ndarray]],
              counts: dict[str, int], *,
              config: SceneConfig | None = None, seed: int = 0, year: str = "2007",
              progress: bool = True) -> dict[str, int]:
    """Write ``counts[split]`` scenes for the splits ``trainval`` and ``test``.

    Items of split s come from ``items[s]``; scene k of a split has its own seed (``seed``,
    split, k). Image ids run on across splits (``000001``, ...) so the two sets never share one.
    """
    from PIL import Image

    root = Path(root)
    config = config or VOC_SCENES
    year_dir = root / f"VOC{year}"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (year_dir / folder).mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(FASHION_MNIST_CLASS_NAMES) + "\n", encoding="utf-8")
    written, next_id = {}, 1
    for split_index, (split, count) in enumerate(counts.items()):
        images, labels = items[split]
        indices = range(count)
        if progress:
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc=f"{split} scenes", leave=False)
        ids = []
        for index in indices:
            rng = np.random.default_rng([seed, split_index, index])
            image, _, _, objects = compose_scene_with_objects(rng, images, labels, config)
            image_id = f"{next_id:06d}"
            next_id += 1
            Image.fromarray(image).save(year_dir / "JPEGImages" / f"{image_id}.jpg", quality=92)
            (year_dir / "Annotations" / f"{image_id}.xml").write_text(
                annotation_xml(f"{image_id}.jpg", image.shape[:2], objects), encoding="utf-8")
            ids.append(image_id)
        (year_dir / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n",
                                                                      encoding="utf-8")
        written[split] = count
    return written
