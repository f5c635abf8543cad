"""What ``train.py``'s command builds from its flags: the checked flags (``check``), the data and
the classifier over it (``build``, with the unlabeled folder in rank mode), and a labeling
round's pool (``build_round``)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from active_learning import cli, flags
from active_learning.errors import ConfigError
from active_learning.files.images import image_size

from .data import load_classification_data
from .folders import load_unlabeled_folder, with_unlabeled
from .task import ClassificationTask


def check(args: argparse.Namespace) -> None:
    """Bad combinations end here, with one message, before any data is read."""
    if args.unlabeled_dir is not None and args.dataset != "image_folder":
        raise ConfigError(f"--unlabeled-dir needs --dataset image_folder (labeled images in "
                          f"<data-dir>/train/<class>/ and <data-dir>/test/<class>/), got "
                          f"--dataset {args.dataset}")
    if not args.milestones:  # resolved here so that args.json records the values the run used
        args.milestones = [max(1, int(0.8 * args.epochs))]
    flags.require([
        (args.width >= 1, f"--width must be >= 1, got {args.width}"),
        (args.image_size >= 1, f"--image-size must be >= 1, got {args.image_size}"),
    ])


def build(args: argparse.Namespace) -> cli.BuiltTask:
    """The data (plus the unlabeled folder in rank mode) and the task over it."""
    rank = args.unlabeled_dir is not None
    # In rank mode the labeled images' names never reach the CSV: relative paths keep them
    # unique, so two labeled "img_001.png" in different class folders are fine.
    data = load_classification_data(args.dataset, args.data_dir, download=args.download,
                                    csv_names="relpath" if rank else args.csv_names,
                                    image_size=args.image_size)
    n_labeled = len(data.train)
    summary = f"{len(data.train)} training / {len(data.test)} test images"
    if rank:
        unlabeled, names = load_unlabeled_folder(args.unlabeled_dir, image_size=args.image_size,
                                                 csv_names=args.csv_names)
        data = with_unlabeled(data, unlabeled, names)
        summary = f"{n_labeled} labeled / {len(data.test)} test images, {len(unlabeled)} to rank"
    task = ClassificationTask(data, width=args.width, dropout=args.dropout, lr=args.lr,
                              momentum=args.momentum, weight_decay=args.weight_decay,
                              milestones=args.milestones, weights_path=args.weights)
    return cli.BuiltTask(task, dataset=args.dataset, summary=summary, n_labeled=n_labeled)


def build_round(args: argparse.Namespace, labels: Any, candidates: list[str]) -> cli.BuiltTask:
    """``train.py round``: the labeled images of the export, then the candidates to rank."""
    from .folders import load_round_data

    data = load_round_data(args.images, list(labels.targets.items()), candidates,
                           labels.categories, image_size=args.image_size)
    task = ClassificationTask(data, width=args.width, dropout=args.dropout, lr=args.lr,
                              momentum=args.momentum, weight_decay=args.weight_decay,
                              milestones=args.milestones, weights_path=args.weights)
    summary = (f"{len(labels.targets)} labeled images in {len(labels.categories)} classes, "
               f"{len(candidates)} to rank")
    position = {name: index for index, name in enumerate(data.names)}

    def predict(model: Any, name: str) -> Any:
        return task.prediction(model, position[name], image_size(Path(args.images) / name))

    return cli.BuiltTask(task, dataset="round", summary=summary, n_labeled=len(labels.targets),
                         record={"class_names": list(labels.categories)}, predict=predict)
