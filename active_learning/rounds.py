"""``train.py round``: one round of the labeling loop with people in it.

    python -m classification.train round --images photos/ --labels export.csv --workspace al/

reads the labels the annotation tool exported, checks them against the images, trains on the
labeled images (from the previous round's model with ``--warm-start``), scores every image that
is neither labeled nor still out for labeling from an earlier round, and writes the round's
proposals (``workspace.py`` keeps the rounds). The training and scoring are one cycle of the
shared runner in ``round_NNN/run/`` with in-cycle checkpoints, so an interrupted round resumes;
a second run with the same export changes nothing.

A task takes part by giving its ``TaskCommand`` a ``build_round(args, labels, candidates)``:
the adapter over the labeled images (the pool's first items) followed by the candidates.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from active_learning.errors import ConfigError, DataError
from active_learning.loop.workspace import Round, Workspace, checksum

__all__ = ["RoundLabels", "add_round_flags", "candidates_for_round", "find_images", "round_budget",
           "run_round", "write_proposals"]

logger = logging.getLogger("active_learning")


@dataclass
class RoundLabels:
    """What an export says, in the terms a round needs.

    Attributes:
        targets: image name (its path relative to ``--images``, with ``/``) -> the task's
            target for it, in the form the task's ``build_round`` reads.
        categories: the category names in the order the targets' class indices use; None for
            a task without categories.
        files: the export's files (what the round's checksum covers and copies).
        source: how to name the export in messages.
    """

    targets: dict[str, Any]
    categories: list[str] | None
    files: list[Path]
    source: str
    extra: dict[str, Any] = field(default_factory=dict)


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def find_images(folder: Path) -> list[str]:
    """Every image under ``folder`` (any depth, links followed), as paths relative to it with
    ``/``, sorted."""
    import os

    if not folder.is_dir():
        raise DataError(f"--images {folder} is not a folder")
    found = sorted(Path(root, name).relative_to(folder).as_posix()
                   for root, _, names in os.walk(folder, followlinks=True) for name in names
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise DataError(f"no image files under {folder}")
    return found


def add_round_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``train.py round`` (beside the task's training and model flags)."""
    group = parser.add_argument_group("round")
    group.add_argument("--images", required=True, metavar="DIR",
                       help="every image of the project, labeled or not (any depth)")
    group.add_argument("--labels", required=True, metavar="EXPORT",
                       help="what the annotation tool exported (a file or a folder)")
    group.add_argument("--labels-format", default="auto",
                       help="the export's format; auto: from its file name and content")
    group.add_argument("--workspace", required=True, metavar="DIR",
                       help="the loop's folder: one subfolder per round")
    group.add_argument("--budget", default=None, metavar="N",
                       help="images to propose (default: --images-per-cycle; 'all' ranks every "
                            "candidate)")
    group.add_argument("--repropose", action="store_true",
                       help="also propose images an earlier round proposed and that are not "
                            "labeled yet (by default they are out for labeling)")
    group.add_argument("--warm-start", action="store_true",
                       help="start from the previous round's trained model instead of the "
                            "task's initial weights")


def candidates_for_round(images: Sequence[str], labeled: set[str], out_for_labeling: set[str],
                         repropose: bool) -> list[str]:
    """The images a round scores: neither labeled nor (unless ``repropose``) out for
    labeling, in ``images``' order."""
    skipped = set(labeled) | (set() if repropose else set(out_for_labeling))
    return [name for name in images if name not in skipped]


def run_round(task: str, args: argparse.Namespace,
              read_labels: Callable[[argparse.Namespace], RoundLabels],
              build_round: Callable[[argparse.Namespace, RoundLabels, list[str]], Any],
              run_cycle: Callable[[Any, Round, int], Path],
              write_proposals: Callable[[Round, Path, Any], list[str]]) -> Round:
    """One round (see the module doc); returns it, done.

    ``read_labels(args)`` reads the export; ``build_round(args, labels, candidates)`` the task
    (a ``BuiltTask`` whose pool is the labeled images, in ``labels.targets``' order, then the
    candidates); ``run_cycle(built, round, n_labeled)`` trains and scores in ``round.run_dir``
    and returns it; ``write_proposals(round, run_dir, built)`` writes the proposals and returns
    their names, best first.
    """
    workspace = Workspace(args.workspace, task)
    images_dir = Path(args.images)
    images = find_images(images_dir)
    labels = read_labels(args)
    unknown = sorted(set(labels.targets) - set(images))
    if unknown:
        raise DataError(f"{labels.source}: {len(unknown)} labeled image(s) are not under "
                        f"--images {images_dir}, e.g. {unknown[0]}")
    if not labels.targets:
        raise DataError(f"{labels.source}: no labeled image; label some in the tool first")
    round_ = workspace.round_for(checksum(labels.files), labels.categories, labels.files,
                                 labels.source)
    if round_.done:
        logger.info("round %d read these labels already: its %d proposals are in %s; label "
                    "them and export again", round_.number, len(round_.proposed),
                    round_.proposals_dir)
        return round_
    out = workspace.out_for_labeling(labels.targets, before=round_.number)
    candidates = candidates_for_round(images, set(labels.targets), out, args.repropose)
    if not candidates:
        raise ConfigError(f"nothing to propose: of {len(images)} images, {len(labels.targets)} "
                          f"are labeled and {len(out)} out for labeling"
                          + ("" if args.repropose else " (--repropose proposes those again)"))
    logger.info("round %d: %d labeled, %d out for labeling%s, %d candidates", round_.number,
                len(labels.targets), len(out), " (proposed again)" if args.repropose else "",
                len(candidates))
    if getattr(args, "warm_start", False):
        previous = previous_model(workspace.folder, round_)
        if previous is not None:
            args.weights = str(previous)
            logger.info("round %d starts from round %d's model", round_.number,
                        round_.number - 1)
        else:
            logger.info("round %d: no earlier round's model to start from; the task's initial "
                        "weights are used", round_.number)
    built = build_round(args, labels, candidates)
    run_dir = run_cycle(built, round_, len(labels.targets))
    proposed = write_proposals(round_, run_dir, built)
    workspace.finish(round_, proposed, len(labels.targets))
    logger.info("round %d: %d proposals in %s", round_.number, len(proposed),
                round_.proposals_dir)
    return round_


def round_budget(text: str | None, default: int, candidates: int) -> int:
    """``--budget``: a number (at most the candidates), ``all``, or the default."""
    if text is None:
        return min(default, candidates)
    if text == "all":
        return candidates
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--budget takes a number or 'all', got {text!r}") from None
    if value < 1:
        raise ConfigError(f"--budget must be >= 1, got {value}")
    return min(value, candidates)


def previous_model(workspace_dir: Path, round_: Round) -> Path | None:
    """The trained model of the round before ``round_`` (``--warm-start``), if it has one."""
    path = workspace_dir / f"round_{round_.number - 1:03d}" / "run" / "checkpoints" / \
        "cycle_00.pt"
    return path if path.exists() else None


def write_proposals(round_: Round, run_dir: Path, built: Any) -> list[str]:
    """The round's proposals, in the formats annotation tools import, from the run's priority
    CSV (best first): ``proposals/priority.csv`` (``name,entropy_value``, SuperAnnotate's
    priority scores) and ``proposals/order.txt`` (one name per line, for a tool that takes an
    order, e.g. CVAT's predefined sorting). Returns the names, best first."""
    from active_learning.files.atomic import atomic_write_text
    from active_learning.files.export import read_entropies_csv

    chosen = read_entropies_csv(run_dir / "priorities" / "cycle_00.csv")
    folder = round_.proposals_dir
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "priority.csv",
                      (run_dir / "priorities" / "cycle_00.csv").read_text(encoding="utf-8"))
    names = [name for name, _ in chosen]
    atomic_write_text(folder / "order.txt", "".join(f"{name}\n" for name in names))
    return names
