"""CPU benchmark data: Fashion-MNIST items composed into scenes, written in real dataset formats.

``python -m synthetic --format cityscapes --output data/fmnist_cityscapes`` writes scenes of
Fashion-MNIST photographs (10 classes) at random scales and positions, overlapping one another,
on textured backgrounds, in the Cityscapes layout (labelIds, instanceIds: one instance per
item). ``--format voc`` writes 300x300 scenes in the Pascal VOC layout (XML boxes of the visible
items, ``difficult`` on items less than half visible). Seeded: the same arguments give the same
files. See ``scenes.py``.
"""
from .scenes import (
    SceneConfig,
    SceneObject,
    compose_scene,
    compose_scene_with_objects,
    load_fashion_mnist,
)

__all__ = ["SceneConfig", "SceneObject", "compose_scene", "compose_scene_with_objects",
           "load_fashion_mnist"]
