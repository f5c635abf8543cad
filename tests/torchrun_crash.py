"""classification/train.py whose process of rank 1 crashes when it starts scoring: run by
tests/test_distributed_run.py under torchrun to see the other process stopped, not hanging."""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import active_learning.loop.runner as runner  # noqa: E402
from classification.train import main  # noqa: E402

original = runner._select


def crashing(run, *args, **kwargs):
    if os.environ.get("RANK") == "1":
        raise RuntimeError("simulated crash of rank 1 in scoring")
    return original(run, *args, **kwargs)


runner._select = crashing
main()
