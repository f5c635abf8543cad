"""The original README's script names run the tasks' train.py as written (from the task folder)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("folder, script, argv, expected", [
    ("segmentation", "segment.py", ["train", "-d", "nowhere", "-c", "19", "-s", "896", "--arch", "drn_d_22",
                                    "--mc-dropout=True", "--entropy-superpixels=True"],
     "error: --weights-backbone drn_d_22-4bd2f8ea.pth (fyu/drn): not in torch.hub's cache"),
    ("classification", "cifar_resnet_clasification.py",
     ["--use_loss_prediction_al=True", "--data-dir", "nowhere"], "error: "),
])
def test_the_original_script_names_reach_train_py(tmp_path, folder, script, argv, expected):
    # The data is missing, so each command parses every original flag, then stops with one message.
    done = subprocess.run([sys.executable, script, *argv, "--output-dir", str(tmp_path)], cwd=ROOT / folder,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(expected) and "Traceback" not in done.stderr
    help_text = subprocess.run([sys.executable, script, "--help"], cwd=ROOT / folder, capture_output=True,
                               text=True, timeout=120).stdout
    assert "--strategy" in help_text
