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
* ``lock.py``: one round at a time on a workspace (``workspace.lock``: pid and host);
* ``identity.py``: what identifies an export (the labels it holds, not its file name);
* ``candidates.py``: the project's images (``files/images.image_names``, the list the label
  readers use too) and the ones a round scores;
* ``model.py``: the trained model loaded again for the pre-annotations (and ``--warm-start``);
* ``proposals.py``: the files annotation tools import and the round's page;
* ``flags.py``: ``train.py round``'s flags.

What a round refuses, each with one line and before it writes anything: a workspace inside
``--images`` (its pictures would become candidates), a workspace that is a file or cannot be
written, a workspace another round holds, an export that lacks images an earlier round read
labeled or no longer uses a class an earlier round's labels used (both unless
``--allow-unlabel``), a class outside ``--class-list``, an unreadable labeled image (all named).
What it accepts and says so: a class first labeled after round 1 (the class list grows; the
model trains from the task's initial weights even with ``--warm-start``), an unreadable
candidate (left out, listed in the log, ``proposals/unreadable.txt`` and the page).

The command line (``active_learning.cli``) parses the flags and hands :func:`run_round` the
cycle to run; nothing here imports the command line.
"""
from __future__ import annotations
