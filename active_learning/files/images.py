"""Image files on disk, shared by the tasks: finding the unlabeled ones,
checking them before a run."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def find_images(folder: str | Path, error: type[Exception] = FileNotFoundError,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Every image file under ``folder`` (any depth), sorted; ``error`` if the folder is missing
    or holds no image (rank mode's ``--unlabeled-dir``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise error(f"--unlabeled-dir not found: {folder}")
    images = sorted(path for path in folder.rglob("*") if path.suffix.lower() in extensions)
    if not images:
        raise error(f"no image ({', '.join(extensions)}) under {folder}")
    return images


def check_image_sizes(images: Iterable[tuple[Path, tuple[int, int] | None]],
                      error: type[Exception] = ValueError, progress: bool = False) -> None:
    """Open each image's header: a missing or unreadable file, or one whose (width, height)
    differs from the size its annotation gives (None: not checked), raises ``error`` naming it.

    A run calls this before training, so bad data stops it before anything is written.
    """
    from PIL import Image

    images = list(images)
    if progress:
        from tqdm.auto import tqdm

        images = tqdm(images, desc="checking images", leave=False, dynamic_ncols=True)
    for path, expected in images:
        try:
            with Image.open(path) as opened:
                size = opened.size
        except Exception as failure:
            raise error(f"cannot read image {path}: {failure}") from None
        if expected is not None and tuple(expected) != tuple(size):
            raise error(f"{path} is {size[0]}x{size[1]}, its annotation says "
                        f"{expected[0]}x{expected[1]}")
