"""One round of the labeling loop (the package doc says what a round does)."""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from active_learning.distributed import resolve_device
from active_learning.errors import ConfigError, DataError
from active_learning.files.atomic import atomic_write_text
from active_learning.files.images import CHECKED_IMAGES, image_names, unreadable_images
from active_learning.labels import read_labels
from active_learning.labels.exported import Labels
from active_learning.labels.kinds import LabelKind, label_kind
from active_learning.rounds.candidates import candidates_for_round
from active_learning.rounds.identity import labels_digest, used_categories
from active_learning.rounds.lock import workspace_lock
from active_learning.rounds.model import model_predictions, previous_model
from active_learning.rounds.proposals import write_proposals
from active_learning.rounds.workspace import Round, Workspace

__all__ = ["IMAGES_FILE", "run_round"]

IMAGES_FILE = "images.txt"     # a round folder's: the absolute path of --images

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
    images_dir = Path(args.images)
    for dest in ("images_per_cycle", "superpixels_per_cycle"):   # checked before any write
        value = getattr(args, dest, None)
        if isinstance(value, int) and value <= 0:
            flag = "--budget" if dest == "images_per_cycle" else "--superpixels-per-cycle"
            raise ConfigError(f"{flag} {value}: a round proposes at least one (or 'all')")
    _check_apart(Path(args.workspace), images_dir)
    with workspace_lock(args.workspace):
        return _run_locked(task, declared, args, build_round, run_cycle, images_dir)


def _check_apart(workspace: Path, images: Path) -> None:
    """Refuse a workspace inside ``--images``: its report thumbnails and region maps are
    images, and a later round would propose them."""
    inner, outer = workspace.resolve(), images.resolve()
    if inner == outer or outer in inner.parents:
        raise ConfigError(f"--workspace {workspace} is inside --images {images}: the "
                          "workspace's own pictures would be taken for the project's; give a "
                          "workspace outside the images folder")


def _class_list(path: str | None, known: list[str] | None) -> list[str] | None:
    """The categories a round reads the export against: the workspace's, followed by those of
    ``--class-list`` it lacks (one name a line); None in a first round without the flag."""
    if path is None:
        return known
    try:
        listed = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    except OSError as error:
        raise ConfigError(f"--class-list {path}: {error.strerror or error}") from None
    if not listed:
        raise ConfigError(f"--class-list {path} names no class (one name a line)")
    if len(set(listed)) != len(listed):
        raise ConfigError(f"--class-list {path} names a class twice")
    dropped = [name for name in known or [] if name not in listed]
    if dropped:
        raise ConfigError(f"--class-list {path} lacks {', '.join(dropped)}, which the "
                          "workspace's earlier rounds use; a class cannot be removed")
    return list(known or []) + [name for name in listed if name not in (known or [])]


def _check_labels_grow(workspace: Workspace, labels: Labels, digest: str,
                       allow_unlabel: bool) -> None:
    """Refuse an export that lacks images an earlier round read labeled (a stale export would
    train on less and propose labeled images again), naming them, or whose labels no longer
    use a class an earlier round's did (:func:`_check_classes_kept`), unless
    ``allow_unlabel``."""
    before = workspace.labeled_before()
    if before is None or (workspace.rounds and workspace.rounds[-1].read(digest,
                                                                        labels.checksum)):
        return
    round_, labeled = before
    lost = sorted(labeled - set(labels.targets))
    shown = ", ".join(lost[:5]) + (", ..." if len(lost) > 5 else "")
    if lost and not allow_unlabel:
        raise DataError(f"{labels.source}: {len(lost)} image(s) labeled in round "
                        f"{round_.number} have no label in this export ({shown}); an export "
                        "holds every labeled image, so this one is stale or partial: export "
                        "the whole project again, or give --allow-unlabel to unlabel them")
    if lost:
        logger.warning("round %d: %d image(s) labeled before are unlabeled now "
                       "(--allow-unlabel): %s", round_.number + 1, len(lost), shown)
    _check_classes_kept(workspace, labels, allow_unlabel)


def _unreadable(workspace: Workspace, images_dir: Path, images: list[str],
                labels: Labels) -> dict[str, str]:
    """Decode every image of the project (the workspace remembers those that decoded): a
    labeled image that cannot be read stops the round, every one named at once; an unreadable
    candidate is left out (returned, name -> why, for the log and the round's page)."""
    import os

    bad = unreadable_images([images_dir / name for name in images],
                            jobs=min(8, os.cpu_count() or 1),
                            cache=workspace.folder / CHECKED_IMAGES)
    named = {Path(path).relative_to(images_dir).as_posix(): why for path, why in bad.items()}
    labeled = sorted(name for name in named if name in labels.targets)
    if labeled:
        raise DataError(f"{labels.source}: {len(labeled)} labeled image(s) cannot be read: "
                        + "; ".join(named[name] for name in labeled)
                        + "; replace them, or remove their labels in the tool")
    if named:
        logger.warning("%d unreadable image(s) left out of the candidates: %s", len(named),
                       "; ".join(named[name] for name in sorted(named)))
    return {name: named[name] for name in sorted(named)}


def _check_classes_kept(workspace: Workspace, labels: Labels, allow_unlabel: bool) -> None:
    """Refuse an export in which no label uses a class that an earlier round's labels used:
    the class was renamed (a CSV lists only the names its rows use) or removed, and the
    model's output for it would be trained from no example."""
    before = workspace.used_before()
    used = used_categories(labels)
    if before is None or used is None:
        return
    round_, earlier = before
    gone = sorted(set(earlier) - set(used))
    if gone and not allow_unlabel:
        raise DataError(f"{labels.source}: no label uses {', '.join(gone)} any more (labeled "
                        f"in round {round_.number}): a class may be added, not renamed or "
                        "removed; restore it in the tool, or give --allow-unlabel if its "
                        "images are meant to be unlabeled")


def _run_locked(task: str, declared: LabelKind, args: argparse.Namespace,
                build_round: Callable[[argparse.Namespace, Any, list[str]], Any],
                run_cycle: Callable[[Any, Round, int], Path], images_dir: Path) -> Round:
    """:func:`run_round` while it holds the workspace's lock."""
    workspace = Workspace(args.workspace, task)
    # the project's images: the one listing the label readers use too (files/images.py)
    images = image_names(images_dir)
    expected = _class_list(getattr(args, "class_list", None), workspace.categories)
    labels = read_labels(declared, args.labels, images_dir, expected,
                         labels_format=args.labels_format)
    unknown = sorted(set(labels.targets) - set(images))
    if unknown:   # read_labels checks against --images; this guards the names' spelling
        raise DataError(f"{labels.source}: {len(unknown)} labeled image(s) are not under "
                        f"--images {images_dir}, e.g. {unknown[0]}")
    if not labels.targets:
        raise DataError(f"{labels.source}: no labeled image; label some in the tool first")
    if getattr(args, "class_list", None) is not None and expected is not None:
        extra = [name for name in labels.categories if name not in expected]
        if extra:
            raise DataError(f"{labels.source}: class(es) {', '.join(extra)} are not in "
                            f"--class-list {args.class_list}; add them there, or fix the labels")
    added = [name for name in labels.categories if name not in (workspace.categories or [])]
    if workspace.categories is not None and added:
        logger.info("%s: new class(es) %s join the workspace's %d; this round's model is "
                    "trained for %d", labels.source, ", ".join(added),
                    len(workspace.categories), len(labels.categories))
    digest = labels_digest(labels)
    _check_labels_grow(workspace, labels, digest, getattr(args, "allow_unlabel", False))
    unreadable = _unreadable(workspace, images_dir, images, labels)
    round_ = workspace.round_for(labels.checksum, labels.categories, labels.files,
                                 labels.source, digest, sorted(labels.targets),
                                 used_categories(labels))
    if round_.done:
        logger.info("round %d read these labels already: its %d proposals are in %s; label "
                    "them and export again", round_.number, len(round_.proposed),
                    round_.proposals_dir)
        if args.repropose:   # the round is done: its candidates were fixed when it ran
            logger.warning("--repropose changes nothing here: round %d is done with these "
                           "labels; it applies to the round the next export starts",
                           round_.number)
        return round_
    out = workspace.out_for_labeling(labels.targets, before=round_.number)
    candidates = [name for name in candidates_for_round(images, set(labels.targets), out,
                                                        args.repropose)
                  if name not in unreadable]
    if not candidates:
        raise ConfigError(f"nothing to propose: of {len(images)} images, {len(labels.targets)} "
                          f"are labeled and {len(out)} out for labeling"
                          + ("" if args.repropose else " (--repropose proposes those again)"))
    logger.info("round %d: %d labeled, %d out for labeling%s, %d candidates", round_.number,
                len(labels.targets), len(out), " (proposed again)" if args.repropose else "",
                len(candidates))
    if getattr(args, "warm_start", False):
        previous = previous_model(workspace.folder, round_.number)
        before = workspace.rounds[-2] if len(workspace.rounds) > 1 else None
        if previous is not None and before is not None and before.classes and \
                before.classes != len(labels.categories):
            # The head has another number of outputs: the model trains from the start.
            logger.info("round %d: the class list grew since round %d; its model starts from "
                        "the task's initial weights", round_.number, before.number)
        elif previous is not None:
            args.weights = str(previous)
            if getattr(args, "weights_backbone", None):   # the whole model replaces it
                args.weights_backbone = None
            logger.info("round %d starts from round %d's model", round_.number,
                        round_.number - 1)
        else:
            logger.info("round %d: no earlier round's model to start from; the task's initial "
                        "weights are used", round_.number)
    args.round_folder = str(round_.folder)
    # the images' folder, for what reads the round later (python -m active_learning.export)
    atomic_write_text(round_.folder / IMAGES_FILE, f"{images_dir.resolve()}\n")
    built = build_round(args, labels, candidates)
    run_dir = run_cycle(built, round_, len(labels.targets))
    predict = model_predictions(built, run_dir, resolve_device(args.device))
    proposed = write_proposals(round_, run_dir, declared.label_studio, images_dir,
                               labels.categories, predict, unreadable=unreadable,
                               keypoint_names=getattr(built, "keypoint_names", ()),
                               skeleton=getattr(built, "skeleton", ()))
    workspace.finish(round_, proposed, len(labels.targets))
    logger.info("round %d: %d proposals in %s", round_.number, len(proposed),
                round_.proposals_dir)
    return round_
