#!/usr/bin/env bash
# Install baal (2.x) for bench/bench_scoring_vs_baal.py into bench/.deps -- NOT into .venv.
#
# baal is only a comparison point, never a dependency of the project. --no-deps keeps pip from
# pulling baal's declared requirements (jupyter, and a second torch/numpy); the benchmark puts
# bench/.deps at the END of sys.path, so .venv's torch / numpy / scipy / sklearn / matplotlib / tqdm
# win and only the packages missing from .venv come from here:
#   baal                 the library itself (pure Python)
#   structlog <23        baal.utils.log_utils (baal 2.1 pins structlog >=22,<23)
#   torchmetrics         baal.utils.metrics (imported by baal.modelwrapper)
#   lightning-utilities  needed by torchmetrics at import time
#
# Usage (from the repository root):  bash bench/setup_baal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=".venv/bin/pip"
DEST="bench/.deps"
"$PIP" install --upgrade --target "$DEST" --no-deps \
    "baal>=2,<3" "structlog>=22,<23" "torchmetrics>=1.7.3,<2" lightning-utilities
# A trial import with .venv first on the path, exactly as the benchmark does it.
PYTHONPATH="" .venv/bin/python - <<'PY'
import sys
sys.path.append("bench/.deps")
import baal
from baal.modelwrapper import ModelWrapper  # noqa: F401
from baal.active.heuristics import BALD  # noqa: F401
from baal.bayesian.dropout import MCDropoutModule  # noqa: F401
print("baal", getattr(baal, "__version__", "?"), "imports fine from", baal.__file__)
PY
