"""One round of the labeling loop (the package doc says what a round does)."""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from active_learning.distributed import resolve_device
from active_learning.errors import ConfigError, DataError
from active_learning.labels import read_labels
from active_learning.labels.kinds import LabelKind, label_kind
from active_learning.rounds.candidates import candidates_for_round, find_images
from active_learning.rounds.model import model_predictions, previous_model
from active_learning.rounds.proposals import write_proposals
from active_learning.rounds.workspace import Round, Workspace

__all__ = ["run_round"]

logger = logging.getLogger("active_learning")


def run_round(task: str, kind: str | LabelKind, args: argparse.Namespace,
              build_round: Callable[[argparse.Namespace, Any, list[str]], Any],
              run_cycle: Callable[[Any, Round, int], Path]) -> Round:
    """One round of ``task``'s labeling loop (see the package doc); returns it, done.

    The export is read with ``labels.read_labels`` as labels of ``kind``, the label kind the
    task declares (its categories matched to the workspace's by name);
    ``build_round(args, labels, candidates)`` builds the task (a ``BuiltTask`` whose pool is
    the labeled images, in ``labels.targets``' order, then the candidates;
    ``args.round_folder`` is set to the round's folder first, for files the task derives from
    the labels, e.g. segmentation's class-id PNGs); ``run_cycle(built, round, n_labeled)``
    trains and scores in ``round.run_dir`` and returns it. The proposals are written from its
    priority CSV (``write_proposals``, in the kind's Label Studio tags), with the trained
    model's pre-annotations where the built task has a ``predict(model, name)``.
    """
    declared = label_kind(kind)
    workspace = Workspace(args.workspace, task)
    images_dir = Path(args.images)
    images = find_images(images_dir)
    labels = read_labels(declared, args.labels, images_dir, workspace.categories,
                         labels_format=args.labels_format)
    unknown = sorted(set(labels.targets) - set(images))
    if unknown:   # read_labels checks against --images; this guards the names' spelling
        raise DataError(f"{labels.source}: {len(unknown)} labeled image(s) are not under "
                        f"--images {images_dir}, e.g. {unknown[0]}")
    if not labels.targets:
        raise DataError(f"{labels.source}: no labeled image; label some in the tool first")
    round_ = workspace.round_for(labels.checksum, labels.categories, labels.files,
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
        previous = previous_model(workspace.folder, round_.number)
        if previous is not None:
            args.weights = str(previous)
            if getattr(args, "weights_backbone", None):   # the whole model replaces it
                args.weights_backbone = None
            logger.info("round %d starts from round %d's model", round_.number,
                        round_.number - 1)
        else:
            logger.info("round %d: no earlier round's model to start from; the task's initial "
                        "weights are used", round_.number)
    args.round_folder = str(round_.folder)
    built = build_round(args, labels, candidates)
    run_dir = run_cycle(built, round_, len(labels.targets))
    predict = model_predictions(built, run_dir, resolve_device(args.device))
    proposed = write_proposals(round_, run_dir, declared.label_studio, images_dir,
                               labels.categories, predict,
                               keypoint_names=getattr(built, "keypoint_names", ()),
                               skeleton=getattr(built, "skeleton", ()))
    workspace.finish(round_, proposed, len(labels.targets))
    logger.info("round %d: %d proposals in %s", round_.number, len(proposed),
                round_.proposals_dir)
    return round_
