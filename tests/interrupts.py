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


def check_a_truncated_image_stops_the_run(run, dataset, tmp_path, folder: str, pattern: str, first: bool,
                                          capsys) -> None:
    """A task's run on a copy of ``dataset``; then one image under ``folder`` (the first or last
    ``pattern`` match) is truncated: the next run stops with one message naming it, and the run
    folder is byte for byte as it was. ``run(dataset, tmp_path, *extra)`` runs the task."""
    import shutil

    import pytest

    copy = tmp_path / dataset.name
    shutil.copytree(dataset, copy)
    run_dir = run(copy, tmp_path, "--cycles", "1")
    before = file_digests(run_dir)
    images = sorted((copy / folder).rglob(pattern))
    victim = images[0] if first else images[-1]
    truncate_image(victim)
    with pytest.raises(SystemExit) as exit_info:
        run(copy, tmp_path, "--cycles", "2")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: cannot read image") and victim.name in err
    assert "Traceback" not in err and file_digests(run_dir) == before
