"""What the run identity's content check costs at pool scale (issue 31, item 10).

    python bench/bench_fingerprints.py --images 100000 --size-kib 60

Writes ``--images`` files of ``--size-kib`` KiB of random bytes (a JPEG of that size is as
incompressible) into a temporary folder, then times, over every file: the sampled fingerprint a
resumed run computes (size + a hash of three 4 KiB blocks, ``files/fingerprint.py``), the same
after the page cache was dropped where that is allowed (root), and the full hash of every byte.
Prints one Markdown table row per measurement. The files are removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from active_learning.files.fingerprint import file_fingerprint, full_fingerprint  # noqa: E402


def _drop_page_cache() -> bool:
    """Empty the kernel's page cache (root only), so the next reads come from the disk."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _timed(function, paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        function(path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size-kib", type=int, default=60)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp folder)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fingerprints_", dir=args.dir))
    try:
        payload = os.urandom(args.size_kib * 1024)
        paths = []
        for index in range(args.images):
            folder = root / f"{index // 1000:03d}"
            folder.mkdir(exist_ok=True)
            path = folder / f"{index:06d}.jpg"
            path.write_bytes(index.to_bytes(4, "little") + payload[4:])
            paths.append(path)
        total_gib = args.images * args.size_kib / 2**20
        print(f"{args.images} files of {args.size_kib} KiB ({total_gib:.1f} GiB), one thread")
        print("| check | page cache | seconds | µs per image |")
        print("|---|---|---|---|")
        rows = [("sampled (3 x 4 KiB + size)", "warm", _timed(file_fingerprint, paths))]
        if _drop_page_cache():
            rows.append(("sampled (3 x 4 KiB + size)", "dropped", _timed(file_fingerprint, paths)))
            _drop_page_cache()
            rows.append(("full blake2b of every byte", "dropped", _timed(full_fingerprint, paths)))
        rows.append(("full blake2b of every byte", "warm", _timed(full_fingerprint, paths)))
        for name, cache, seconds in rows:
            print(f"| {name} | {cache} | {seconds:.1f} | {seconds / args.images * 1e6:.0f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
