"""``torchrun ... tests/torchrun_main.py MODULE ARGS``: MODULE's ``main()`` in each process, which
then ends without the interpreter's teardown (``os._exit``, as multiprocessing ends its children).

A process that trained with DistributedDataParallel over gloo is aborted now and then in that
teardown, after its work is done and its group destroyed (SIGABRT, "terminate called without an
active exception": a C++ thread left running): about one DDP run in four on a busy 2-core
machine, never one with collectives alone. The tests check the runs, not that teardown.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    module = sys.argv.pop(1)
    importlib.import_module(module).main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
