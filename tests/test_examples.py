"""Runs examples/own_project.py (the README's "Use it in your own project") as a user would."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from active_learning.files.export import read_entropies_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "own_project.py"
POOL_NAMES = {f"img_{i:04d}.png" for i in range(64)}  # the example's default pool of 64 images
INITIALLY_LABELED = {f"img_{i:04d}.png" for i in range(16)}
BUDGET = 8  # the example's default --budget


def test_own_project_example_writes_the_priority_csv(tmp_path):
    out_dir = tmp_path / "out"
    # One intra-op thread: on a small shared CPU, two threads make ResNet steps many times slower.
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(EXAMPLE), "--output-dir", str(out_dir)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    csv_path = out_dir / "priorities.csv"
    assert f"priority CSV written to {csv_path}" in result.stdout
    for path in (csv_path, out_dir / "priorities_entropy.csv"):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "name,entropy_value"
        assert all(re.fullmatch(r"img_\d{4}\.png,\d+\.\d{5}", line) for line in lines[1:])
        rows = read_entropies_csv(path)
        assert len(rows) == BUDGET
        names = [name for name, _ in rows]
        assert len(set(names)) == BUDGET
        assert set(names) <= POOL_NAMES - INITIALLY_LABELED  # chosen from the unlabeled part only
        values = [value for _, value in rows]
        assert values == sorted(values, reverse=True) and min(values) >= 0.0
