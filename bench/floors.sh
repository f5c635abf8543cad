#!/usr/bin/env bash
# `make floors`: install the oldest version of every dependency that pyproject.toml allows
# (each `>=` floor, exactly) in fresh venvs and run the tests that exercise them.
#   stage 1, the core: torch's floor (2.13.0, the CPU build on this machine's disk) with the
#            core's extras (strategies, compare, report, labels) at their floors;
#   stage 2, the tasks: every extra at its floor, with the oldest torch/torchvision pair that
#            torchvision's floor allows (0.29.1 needs torch 2.14.1).
# Each stage prints pip's view of what it installed, then the tests' summary.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${FLOORS_DIR:-.venv-floors}
mkdir -p "$OUT"

floors() {   # the floors of the project's dependencies and of the named extras, as name==version
  "$PYTHON" - "$@" <<'PY'
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
def expand(names, seen):
    for name in names:
        for requirement in extras[name]:
            nested = re.fullmatch(r"active-learning-cv\[(.+)\]", requirement)
            if nested:
                yield from expand([n.strip() for n in nested.group(1).split(",")], seen)
            elif requirement not in seen:
                seen.add(requirement)
                yield requirement
for requirement in [*project["dependencies"], *expand(sys.argv[1:], set())]:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][^,;\s]*)", requirement).groups()
    if name not in ("torch", "torchvision"):
        print(f"{name}=={floor}")
PY
}

stage() {   # stage NAME TORCH_PINS EXTRAS -- TESTS...
  local name=$1 pins=$2 extras=$3; shift 4
  local venv="$OUT/$name"
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  floors $extras > "$venv/floors.txt"
  "$venv/bin/python" -m pip install -q $pins
  "$venv/bin/python" -m pip install -q -r "$venv/floors.txt" pytest
  "$venv/bin/python" -m pip install -q --no-deps -e .
  echo "== $name: $(tr '\n' ' ' < "$venv/floors.txt") $pins"
  "$venv/bin/python" -m pip check || true
  "$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
}

# The core stage has no torchvision (its floor needs torch 2.14): the tests that draw predictions
# or build a task's adapter run in the tasks stage; nor hdbscan (a test reference, in the dev
# extra), so tests/test_outliers.py is not run there.
stage core "torch==2.13.0" "strategies compare report labels" -- \
  tests/test_dependencies.py tests/test_strategies.py tests/test_uncertainty.py \
  tests/test_diversity.py tests/test_loop.py tests/test_loop_units.py \
  tests/test_compare.py tests/labels --ignore=tests/labels/test_labels_tasks.py \
  --deselect tests/labels/test_labels_kinds.py::test_every_task_declares_its_kind
stage tasks "torch==2.14.1 torchvision==0.29.1" "all" -- \
  tests/classification tests/segmentation tests/object_detection tests/human_pose_estimation \
  tests/test_report_html.py tests/labels/test_labels_tasks.py tests/labels/test_labels_kinds.py
