"""CPU benchmark data: Fashion-MNIST items composed into scenes, written in real dataset formats.

``python -m synthetic --format cityscapes --output data/fmnist_cityscapes`` writes scenes of
Fashion-MNIST photographs (10 classes) at random scales and positions, overlapping one another,
on textured backgrounds, in the Cityscapes layout (labelIds, instanceIds: one instance per
item). Seeded: the same arguments give the same files. See ``scenes.py``.
"""
from .scenes import SceneConfig, compose_scene, load_fashion_mnist

__all__ = ["SceneConfig", "compose_scene", "load_fashion_mnist"]
