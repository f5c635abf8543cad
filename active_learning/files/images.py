"""Image files on disk, shared by the tasks: finding the unlabeled ones,
checking them before a run."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from active_learning.errors import DataError

# Every format PIL decodes that cameras, scanners and tools write (TIFF for microscopy and
# scans, PPM/PGM for older datasets): one list, so the rounds' scan and the label readers agree.
# The file where check_images keeps the images that decoded (by size and modification time).
CHECKED_IMAGES = "checked_images.json"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_name(relative: str | Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> bool:
    """Whether the path ``relative`` (to the images folder) names an image: an image suffix,
    and no part hidden (``.thumbnails/``, macOS's ``._photo.png`` resource forks, ``.git/``:
    files a tool or the system left there, not pictures of the project)."""
    parts = Path(relative).parts
    return bool(parts) and Path(parts[-1]).suffix.lower() in extensions and not any(
        part.startswith(".") for part in parts)


def image_names(folder: str | Path, error: type[Exception] = DataError,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS, flag: str = "--images",
                skip: Path | None = None) -> list[str]:
    """The one answer to "what is an image under ``folder``": every file that
    :func:`is_image_name` accepts, at any depth, symlinked subfolders followed (each real
    folder once, so a link loop ends), as paths relative to ``folder`` with ``/``, sorted.
    ``skip``: a folder under ``folder`` left out whole (a round's workspace). ``error`` (naming
    ``flag``) if the folder is missing or holds no image."""
    import os

    folder = Path(folder)
    if not folder.is_dir():
        raise error(f"{flag} not found: {folder}" if not folder.exists()
                    else f"{flag} {folder} is not a folder")
    skipped = os.path.realpath(skip) if skip is not None else None
    seen: set[str] = set()
    found: list[str] = []
    for root, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen or real == skipped:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = [name for name in folders if not name.startswith(".")]
        relative = Path(root).relative_to(folder)
        found.extend((relative / name).as_posix() for name in names
                     if is_image_name(relative / name, extensions))
    if not found:
        raise error(f"no image ({', '.join(extensions)}) under {folder}")
    return sorted(found)


def find_images(folder: str | Path, error: type[Exception] = FileNotFoundError,
                extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                flag: str = "--unlabeled-dir") -> list[Path]:
    """Every image file under ``folder`` (:func:`image_names`, as paths under ``folder``),
    sorted; ``error`` if the folder is missing or holds no image. ``flag`` names the folder in
    that message (rank mode's ``--unlabeled-dir``, a round's ``--images``)."""
    folder = Path(folder)
    return [folder / name for name in image_names(folder, error, extensions, flag)]


def check_images(images: Iterable[tuple[Path, tuple[int, int] | None]],
                 error: type[Exception] = ValueError, progress: bool = False, jobs: int = 1,
                 cache: Path | None = None) -> None:
    """Decode every image once: a missing, unreadable or truncated file, or one whose
    (width, height) differs from the size its annotation gives (None: not checked), raises
    ``error`` naming it.

    A run calls this before training, so bad data stops it before anything is written (an
    image that only fails when a late cycle reads it would lose the cycles before). ``jobs``
    threads decode in parallel (PIL releases the GIL while decoding). ``cache`` (a JSON file)
    remembers the images that decoded, by path, size in bytes and modification time, so a rerun
    does not decode them again; it is written only when every image passed.
    """
    import json
    from concurrent.futures import ThreadPoolExecutor

    images = [(Path(path), expected) for path, expected in images]
    known: dict[str, list[int]] = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}   # a damaged cache only costs the decoding it would have saved

    def stamp(path: Path) -> list[int] | None:
        try:
            status = path.stat()
        except OSError:
            return None
        return [status.st_size, status.st_mtime_ns]

    def check(item: tuple[Path, tuple[int, int] | None]) -> tuple[str, list[int]]:
        path, expected = item
        before = stamp(path)
        entry = known.get(str(path))
        if before is not None and entry is not None and entry[:2] == before:
            size = tuple(entry[2:4])
        else:
            size = _decoded_size(path, error)
        if expected is not None and tuple(expected) != size:
            raise error(f"{path} is {size[0]}x{size[1]}, its annotation says "
                        f"{expected[0]}x{expected[1]}")
        return str(path), [*(before or [0, 0]), *size]

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = pool.map(check, images)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(images), desc="checking images", leave=False,
                           dynamic_ncols=True)
        checked = dict(results)
    if cache is not None and checked != known:
        from active_learning.files.atomic import atomic_write_text

        try:
            atomic_write_text(cache, json.dumps(checked) + "\n")
        except OSError as failure:   # only a cache: the next run decodes the images again
            import logging

            logging.getLogger("active_learning").warning(
                "cannot remember the checked images in %s: %s", cache, failure.strerror or failure)


def unreadable_images(paths: Iterable[Path], jobs: int = 1,
                      cache: Path | None = None) -> dict[Path, str]:
    """Decode every image once and return those that fail, each with why (every one, not
    the first: a round lists them all). ``cache`` (a JSON file, the format
    :func:`check_images` writes) remembers the images that decoded by path, size in bytes
    and modification time; it is rewritten with this call's readable images."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    paths = [Path(path) for path in paths]
    known: dict[str, list[int]] = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}

    def check(path: Path) -> tuple[Path, list[int] | None, str | None]:
        try:
            status = path.stat()
        except OSError as failure:
            return path, None, str(failure.strerror or failure)
        stamp = [status.st_size, status.st_mtime_ns]
        entry = known.get(str(path))
        if entry is not None and entry[:2] == stamp:
            return path, entry, None
        try:
            size = _decoded_size(path, DataError)
        except DataError as failure:
            return path, None, str(failure)
        return path, [*stamp, *size], None

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(check, paths))
    bad = {path: why for path, _, why in results if why is not None}
    if cache is not None:
        from active_learning.files.atomic import atomic_write_text

        readable = {str(path): entry for path, entry, _ in results if entry is not None}
        if readable != known:
            try:
                atomic_write_text(cache, json.dumps(readable) + "\n")
            except OSError:   # only a cache: the next round decodes them again
                pass
    return bad


def _decoded_size(path: Path, error: type[Exception]) -> tuple[int, int]:
    """(width, height) of the image at ``path``, after decoding all of its pixels."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            opened.load()   # the pixels too: a truncated file fails here, not in a late cycle
            return opened.size
    except Exception as failure:   # PIL raises many types; each means "not a readable image"
        raise error(f"cannot read image {path}: {failure}") from None


def image_size(path: str | Path, error: type[Exception] = DataError) -> tuple[int, int]:
    """(width, height) of the image file at ``path``, from its header (EXIF rotation not
    applied, as every reader here): what its pixel coordinates refer to."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            return opened.size
    except Exception as failure:   # PIL raises many types; each means "not a readable image"
        raise error(f"cannot read image {path}: {failure}") from None
