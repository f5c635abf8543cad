"""The original project's command, as its README writes it (from the task folder):

    python3 cifar_resnet_clasification.py                                 # random selection
    python3 cifar_resnet_clasification.py --use_loss_prediction_al=True   # learning loss
    python3 cifar_resnet_clasification.py --use_discriminative_al=True    # DAL

It is ``train.py`` under its original name (spelling kept): every flag of ``python train.py
--help`` works here, with the Learning Loss CIFAR-10 protocol as the defaults.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classification.train import main  # noqa: E402

if __name__ == "__main__":
    main()
