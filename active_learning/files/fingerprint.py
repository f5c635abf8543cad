"""A file's content fingerprint: its size and a hash of sampled blocks, cheap at pool scale.

A resumed run must notice that an image was replaced by another of the same name, even when the
new file has the same size and its modification time was restored (a copy with ``cp -p``, a
sync tool, an archive extracted again): its labels would silently land on another picture. A
hash of every byte would catch any change, but reading a 100,000-image pool in full at every
resume costs minutes; the fingerprint reads three blocks (head, middle, tail) of each file and
hashes them with its size. A different picture, re-encoded by any image codec, differs in its
first block already; what it misses is an edit of a few bytes outside the blocks of an
uncompressed file of the same size (``bench/bench_fingerprints.py`` measures both ways).
Files up to three blocks long are hashed whole.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

BLOCK = 4096   # bytes read at each of the three places


def file_fingerprint(path: str | os.PathLike) -> str:
    """``"<size>:<blake2b hex of the sampled blocks>"`` for the file at ``path``.

    Raises OSError when the file cannot be read (the caller names it)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest = hashlib.blake2b(digest_size=16)
        if size <= 3 * BLOCK:
            digest.update(handle.read())
        else:
            for offset in (0, (size - BLOCK) // 2, size - BLOCK):
                handle.seek(offset)
                digest.update(handle.read(BLOCK))
    return f"{size}:{digest.hexdigest()}"


def full_fingerprint(path: str | os.PathLike) -> str:
    """``"<size>:<blake2b hex of every byte>"``: the exact check the benchmark compares with."""
    path = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.stat().st_size}:{digest.hexdigest()}"
