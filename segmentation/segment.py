"""The original project's command, as its README writes it (from the task folder):

    python3 segment.py train -d datasets/cityscapes -c 19 -s 896 --arch drn_d_22 \\
        --batch-size 4 --epochs 250 --lr 0.01 --momentum 0.9 --step 100 \\
        --mc-dropout=True --entropy-superpixels=True

It is ``train.py`` under its original name: every flag of ``python train.py --help`` works here.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segmentation.train import main  # noqa: E402

if __name__ == "__main__":
    main()
