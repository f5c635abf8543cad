"""Write composed scenes in the Cityscapes layout (leftImg8bit / gtFine labelIds, instanceIds)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .scenes import SceneConfig, compose_scene


def scene_paths(root: Path, split: str, city: str, index: int) -> dict[str, Path]:
    stem = f"{city}_{index:06d}_000019"
    return {"image": root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
            "labels": root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png",
            "instances": root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png"}


def write_scene(paths: dict[str, Path], image: np.ndarray, labels: np.ndarray,
                instances: np.ndarray) -> None:
    """PNG files as Cityscapes ships them: RGB, 8-bit label ids, 16-bit instance ids."""
    from PIL import Image

    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(paths["image"])
    Image.fromarray(labels).save(paths["labels"])
    Image.fromarray(instances.astype(np.uint16)).save(paths["instances"])


def write_cityscapes(root: str | Path, items: dict[str, tuple[np.ndarray, np.ndarray]],
                     counts: dict[str, int], *, config: SceneConfig | None = None, seed: int = 0,
                     cities_per_split: int = 3, progress: bool = True) -> dict[str, int]:
    """Write ``counts[split]`` scenes per split, items of split s drawn from ``items[s]``.

    Scenes are spread over ``cities_per_split`` city folders. Every scene has its own seed
    (``seed``, split, index), so a split's scenes do not depend on the other split's count.
    """
    root = Path(root)
    config = config or SceneConfig()
    written = {}
    for split_index, (split, count) in enumerate(counts.items()):
        images, labels = items[split]
        indices = range(count)
        if progress:
            from tqdm.auto import tqdm

            indices = tqdm(indices, desc=f"{split} scenes", leave=False)
        for index in indices:
            rng = np.random.default_rng([seed, split_index, index])
            city = f"fmnist{index % cities_per_split}"
            scene = compose_scene(rng, images, labels, config)
            write_scene(scene_paths(root, split, city, index), *scene)
        written[split] = count
    return written
