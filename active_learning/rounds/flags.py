"""The flags of ``train.py round`` (beside the task's training and model flags)."""
from __future__ import annotations

import argparse

__all__ = ["SIMULATION_ONLY", "add_round_flags"]

# Flags of a simulation or a ranking that a round sets itself or has no use for: one cycle, on
# every labeled image, in the workspace's round folder, resumed by itself. ``round --help``
# leaves them out, so that it lists what a round reads.
SIMULATION_ONLY = ("--cycles", "--initial-size", "--output-dir", "--unlabeled-dir",
                   "--output_superannotate_csv_file", "--save-checkpoints", "--resume")


def add_round_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``train.py round`` (beside the task's training and model flags); the
    simulation's flags a round ignores are left out of its ``--help``."""
    for action in parser._actions:   # argparse keeps no public list of a parser's flags
        if any(option in SIMULATION_ONLY for option in action.option_strings):
            action.help = argparse.SUPPRESS
    group = parser.add_argument_group("round")
    group.add_argument("--images", required=True, metavar="DIR",
                       help="every image of the project, labeled or not (any depth)")
    group.add_argument("--labels", required=True, metavar="EXPORT",
                       help="what the annotation tool exported (a file or a folder)")
    group.add_argument("--labels-format", default="auto",
                       help="the export's format; auto: from its file name and content")
    group.add_argument("--workspace", required=True, metavar="DIR",
                       help="the loop's folder: one subfolder per round")
    group.add_argument("--repropose", action="store_true",
                       help="also propose images an earlier round proposed and that are not "
                            "labeled yet (by default they are out for labeling)")
    group.add_argument("--warm-start", action="store_true",
                       help="start from the previous round's trained model instead of the "
                            "task's initial weights")
    group.add_argument("--class-list", default=None, metavar="FILE",
                       help="the project's classes, one name a line, fixed from the first "
                            "round (the Label Studio config offers them all); by default the "
                            "class list is what the exports use, and grows when a new class "
                            "is labeled")
    group.add_argument("--allow-unlabel", action="store_true",
                       help="accept an export that lacks images an earlier round read "
                            "labeled (they become unlabeled); by default such an export is "
                            "refused as stale")
