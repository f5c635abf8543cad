"""``train.py round``: one round of the labeling loop with people in it.

    python -m classification.train round --images photos/ --labels export.csv --workspace al/

reads the labels the annotation tool exported, checks them against the images, trains on the
labeled images (from the previous round's model with ``--warm-start``), scores every image that
is neither labeled nor still out for labeling from an earlier round, and writes the round's
proposals (``workspace.py`` keeps the rounds). The training and scoring are one cycle of the
shared runner in ``round_NNN/run/`` with in-cycle checkpoints, so an interrupted round resumes;
a second run with the same export changes nothing.

A task takes part by declaring its label kind (``TaskCommand.label_kind``: ``class``, ``boxes``,
``mask``, ``keypoints`` or a ``labels.kinds.LabelKind`` of its own), which says how the export
is read and how the proposals' pre-annotations are written, and by giving its ``TaskCommand`` a
``build_round(args, labels, candidates)``: the adapter over the labeled images (the pool's first
items) followed by the candidates, and where it can, a ``predict(model, name)`` that turns the
round's trained model's output on a proposed image into pre-annotations (``model_predictions``
loads that model from the round's checkpoint). Superpixel rounds (segmentation) also get the
chosen regions: the region CSV and the region maps are copied beside the proposals, and the
report draws them.

The package, one job a module:

* ``run.py``: :func:`run_round`, one round from the export to the proposals;
* ``workspace.py``: the rounds' memory (``workspace.json``, one folder per round);
* ``candidates.py``: the project's images and the ones a round scores;
* ``model.py``: the trained model loaded again for the pre-annotations (and ``--warm-start``);
* ``proposals.py``: the files annotation tools import and the round's page;
* ``flags.py``: ``train.py round``'s flags.

The command line (``active_learning.cli``) parses the flags and hands :func:`run_round` the
cycle to run; nothing here imports the command line.
"""
from __future__ import annotations

from active_learning.rounds.candidates import candidates_for_round, find_images
from active_learning.rounds.flags import add_round_flags
from active_learning.rounds.model import load_trained_model, model_predictions, previous_model
from active_learning.rounds.proposals import write_proposals
from active_learning.rounds.run import run_round
from active_learning.rounds.workspace import Round, Workspace

__all__ = ["Round", "Workspace", "add_round_flags", "candidates_for_round", "find_images",
           "load_trained_model", "model_predictions", "previous_model", "run_round",
           "write_proposals"]
