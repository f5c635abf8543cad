"""Simulating Ctrl-C in the middle of a run (the resume tests of every task)."""
from __future__ import annotations

from collections.abc import Callable


def interrupt_on_call(monkeypatch, owner: type, method: str, call: int) -> Callable[[], None]:
    """Make ``owner.method`` raise KeyboardInterrupt on its ``call``-th call (1-based).

    Returns a function that puts the original method back.
    """
    original = getattr(owner, method)
    calls = {"n": 0}

    def dying(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, dying)
    return lambda: monkeypatch.setattr(owner, method, original)


def truncate_image(path) -> None:
    """Cut an image file to two thirds of its bytes: its header still opens, its pixels do not."""
    from pathlib import Path

    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: 2 * len(data) // 3])


def file_digests(folder) -> dict:
    """{path: md5} of every file under ``folder``: a run folder's state, to compare."""
    import hashlib
    from pathlib import Path

    return {path: hashlib.md5(path.read_bytes()).hexdigest() for path in sorted(Path(folder).rglob("*"))
            if path.is_file()}
