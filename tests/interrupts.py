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
