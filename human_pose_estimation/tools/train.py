"""The original project's command:
``python tools/train.py --cfg FILE [--use_active_learning=True] [KEY VALUE ...]``.

    cd human_pose_estimation
    python tools/train.py --cfg experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml
    python tools/train.py --cfg experiments/coco/hrnet/w32_256x192_adam_lr1e-3.yaml \\
        --use_active_learning=True
    python tools/train.py --cfg ... --dataDir /data TRAIN.END_EPOCH 20 --cycles 3 --seed 1

The YAML (``config.py`` lists the keys read) and its trailing ``KEY VALUE`` overrides become
``train.py`` flags; any ``train.py`` flag may follow as well (``--strategy``, ``--cycles``, ...),
and wins over the configuration. ``--use_active_learning=True`` is ``--strategy loss_prediction``.
``--logDir`` receives a copy of the run's metrics and learning curve.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

TASK_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TASK_DIR.parent))

from active_learning.console import cli_errors, warnings_as_lines  # noqa: E402
from active_learning.flags import str2bool  # noqa: E402
from human_pose_estimation import train  # noqa: E402
from human_pose_estimation.config import apply_overrides, config_to_argv, load_config  # noqa: E402

CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tools/train.py", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--cfg", required=True, help="experiment configuration (YAML)")
    parser.add_argument("--modelDir", default=None, help="output folder (overrides OUTPUT_DIR)")
    parser.add_argument("--logDir", default=None,
                        help="folder that receives the run's metrics and curve")
    parser.add_argument("--dataDir", default=None,
                        help="prefix of DATASET.ROOT (overrides DATA_DIR)")
    parser.add_argument("--prevModelDir", default=None, help="accepted for compatibility; unused")
    parser.add_argument("--use_active_learning", "--use-active-learning", type=str2bool, nargs="?",
                        const=True, default=False, help="select with learning loss (else random)")
    parser.add_argument("--output_superannotate_csv_file", "--output-superannotate-csv-file",
                        default=None, metavar="PATH",
                        help="also copy the last cycle's priority CSV to PATH")
    return parser


def split_opts(rest: Sequence[str]) -> tuple[list[str], list[str]]:
    """Leftover arguments -> (configuration KEY VALUE pairs, train.py arguments)."""
    opts, forwarded = [], []
    tokens = list(rest)
    while tokens:
        token = tokens.pop(0)
        if CONFIG_KEY.match(token) and tokens:
            opts += [token, tokens.pop(0)]
        else:
            forwarded.append(token)
    return opts, forwarded


def build_argv(argv: Sequence[str] | None = None) -> tuple[list[str], argparse.Namespace]:
    """The ``train.py`` arguments of an original command line (and the parsed original flags)."""
    args, rest = get_args_parser().parse_known_args(argv)
    opts, forwarded = split_opts(rest)
    config = apply_overrides(load_config(args.cfg), opts)
    # --from-scratch (or a backbone named on the command line) replaces MODEL.PRETRAINED; both
    # together reach train.py, which refuses them
    named = {token.split("=", 1)[0] for token in forwarded}
    from_scratch = "--from-scratch" in named
    overridden = bool(named & {"--weights-backbone", "--weights_backbone", "--pretrained"})
    translated = config_to_argv(config, data_dir=args.dataDir, model_dir=args.modelDir,
                                base_dir=TASK_DIR, published=train.PUBLISHED,
                                from_scratch=from_scratch)
    if overridden:   # the command line's backbone wins over MODEL.PRETRAINED
        translated = _without_backbone(translated)
    if args.use_active_learning:
        translated += ["--strategy", "loss_prediction"]
    if args.output_superannotate_csv_file:
        translated += ["--output_superannotate_csv_file", args.output_superannotate_csv_file]
    return translated + forwarded, args


def _without_backbone(argv: list[str]) -> list[str]:
    """``argv`` without the configuration's ``--weights-backbone X`` / ``--from-scratch``."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--weights-backbone":
            skip = True
        elif token != "--from-scratch":
            kept.append(token)
    return kept


def main(argv: Sequence[str] | None = None) -> Path:
    with cli_errors(), warnings_as_lines():
        train_argv, args = build_argv(argv)
    run_dir = train.main(train_argv)
    if args.logDir:
        log_dir = Path(args.logDir) / Path(args.cfg).stem
        log_dir.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.csv", "learning_curve.png"):
            if (run_dir / name).exists():
                shutil.copy2(run_dir / name, log_dir / name)
        print(f"log:            {log_dir}")
    return run_dir


if __name__ == "__main__":
    main()
