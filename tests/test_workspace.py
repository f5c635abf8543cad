"""The labeling loop's workspace: rounds named by the labels they read, the category set kept,
proposals out for labeling remembered."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from active_learning.errors import ConfigError, DataError
from active_learning.rounds.candidates import candidates_for_round
from active_learning.rounds.model import model_predictions
from active_learning.rounds.workspace import Workspace


def checksum(paths) -> str:
    """The labels' identity (``labels.Labels.checksum`` in a round): here their text."""
    return "|".join(path.read_text() for path in paths)


def _export(tmp_path, name: str, text: str):
    path = tmp_path / "exports" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_same_labels_are_the_same_round_and_new_labels_the_next(tmp_path):
    export = _export(tmp_path, "labels.csv", "name,label\na.png,cat\n")
    workspace = Workspace(tmp_path / "ws", "classification")
    first = workspace.round_for(checksum([export]), ["cat", "dog"], [export], "labels.csv")
    assert first.number == 1 and not first.done
    assert (first.folder / "labels" / "labels.csv").read_text() == export.read_text()
    # an interrupted round is found again, still running
    again = Workspace(tmp_path / "ws", "classification")
    assert again.round_for(checksum([export]), ["cat", "dog"], [export], "x").number == 1
    again.finish(again.rounds[-1], ["b.png", "c.png"], labeled=1)
    reopened = Workspace(tmp_path / "ws", "classification")
    done = reopened.round_for(checksum([export]), ["cat", "dog"], [export], "x")
    assert done.done and done.proposed == ["b.png", "c.png"]
    export.write_text("name,label\na.png,cat\nb.png,dog\n")
    second = reopened.round_for(checksum([export]), ["cat", "dog"], [export], "x")
    assert second.number == 2 and second.folder.name == "round_002"
    saved = json.loads((tmp_path / "ws" / "workspace.json").read_text())
    assert [entry["status"] for entry in saved["rounds"]] == ["done", "running"]


def test_an_unfinished_round_whose_labels_changed_is_replaced(tmp_path):
    export = _export(tmp_path, "labels.csv", "1")
    workspace = Workspace(tmp_path / "ws", "classification")
    workspace.round_for(checksum([export]), None, [export], "x")
    export.write_text("2")
    replaced = workspace.round_for(checksum([export]), None, [export], "x")
    assert replaced.number == 1 and (replaced.folder / "labels" / "labels.csv").read_text() == "2"
    assert len(Workspace(tmp_path / "ws", "classification").rounds) == 1


def test_a_changed_category_set_is_refused_naming_the_change(tmp_path):
    export = _export(tmp_path, "labels.csv", "1")
    workspace = Workspace(tmp_path / "ws", "detection")
    workspace.round_for(checksum([export]), ["car", "person"], [export], "x")
    export.write_text("2")
    with pytest.raises(DataError, match="new: bus; gone: person"):
        workspace.round_for(checksum([export]), ["car", "bus"], [export], "instances.json")
    with pytest.raises(DataError, match="another order"):
        workspace.round_for(checksum([export]), ["person", "car"], [export], "instances.json")
    assert len(workspace.rounds) == 1                      # nothing recorded for the refusal


def test_images_proposed_earlier_stay_out_until_labeled(tmp_path):
    export = _export(tmp_path, "labels.csv", "1")
    workspace = Workspace(tmp_path / "ws", "classification")
    first = workspace.round_for(checksum([export]), None, [export], "x")
    workspace.finish(first, ["b.png", "c.png", "d.png"], labeled=1)
    export.write_text("2")
    second = workspace.round_for(checksum([export]), None, [export], "x")
    labeled = {"a.png", "b.png"}
    out = workspace.out_for_labeling(labeled, before=second.number)
    assert out == {"c.png", "d.png"}
    images = ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert candidates_for_round(images, labeled, out, repropose=False) == ["e.png"]
    assert candidates_for_round(images, labeled, out, repropose=True) == ["c.png", "d.png",
                                                                         "e.png"]


def test_a_workspace_is_one_tasks_and_a_foreign_folder_is_refused(tmp_path):
    export = _export(tmp_path, "labels.csv", "1")
    workspace = Workspace(tmp_path / "ws", "classification")
    workspace.round_for(checksum([export]), None, [export], "x")
    with pytest.raises(ConfigError, match="workspace of the classification task"):
        Workspace(tmp_path / "ws", "segmentation")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="folder of other files"):
        Workspace(tmp_path / "other", "classification")
    (tmp_path / "ws" / "workspace.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot read"):
        Workspace(tmp_path / "ws", "classification")


class _Built:
    """A built task whose model is one linear layer and whose prediction is its weight."""

    def __init__(self) -> None:
        self.builds = 0
        outer = self

        class Adapter:
            def build_model(self):
                outer.builds += 1
                return torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Dropout(0.5))

        self.adapter = Adapter()

    @staticmethod
    def predict(model, name):
        assert not model.training and not torch.is_grad_enabled()
        return name, model[0].weight.detach().clone()


def test_predictions_come_from_the_rounds_checkpoint_loaded_once(tmp_path):
    trained = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Dropout(0.5))
    with torch.no_grad():
        trained[0].weight.copy_(torch.tensor([[3.0, -4.0]]))
    (tmp_path / "checkpoints").mkdir()
    torch.save({"model": trained.state_dict(), "cycle": 0, "loss_module": None},
               tmp_path / "checkpoints" / "cycle_00.pt")
    built = _Built()
    predict = model_predictions(built, tmp_path, "cpu")
    assert built.builds == 0                      # nothing is loaded before it is asked for
    for name in ("a.png", "b.png"):
        answer, weight = predict(name)
        assert answer == name and weight.tolist() == [[3.0, -4.0]]
    assert built.builds == 1
    built.predict = None
    assert model_predictions(built, tmp_path, "cpu") is None


def test_a_workspace_written_before_label_digests_resumes_by_its_checksum(tmp_path):
    """Rounds recorded before the content digest (no ``labels_digest``, no ``labeled.txt``)
    are matched by the export's checksum, as they were; the next round records both."""
    export = _export(tmp_path, "labels.csv", "name,label\na.png,cat\n")
    folder = tmp_path / "ws"
    (folder / "round_001" / "labels").mkdir(parents=True)
    (folder / "workspace.json").write_text(json.dumps({
        "task": "classification", "categories": ["cat", "dog"],
        "rounds": [{"number": 1, "labels_checksum": checksum([export]), "status": "done",
                    "proposed": ["b.png"], "labeled": 1}]}))
    workspace = Workspace(folder, "classification")
    assert workspace.labeled_before() is None and workspace.used_before() is None
    same = workspace.round_for(checksum([export]), ["cat", "dog"], [export], "x", "digest-1",
                               ["a.png"], ["cat"])
    assert same.number == 1 and same.done
    grown = workspace.round_for("other", ["cat", "dog", "fox"], [export], "x", "digest-2",
                                ["a.png", "b.png"], ["cat", "fox"])
    assert grown.number == 2 and grown.labels_digest == "digest-2" and grown.classes == 3
    assert grown.labeled_file.read_text() == "a.png\nb.png\n"
    workspace.finish(grown, ["c.png"], 2)
    reopened = Workspace(folder, "classification")
    assert reopened.categories == ["cat", "dog", "fox"]
    assert reopened.labeled_before() == (reopened.rounds[1], {"a.png", "b.png"})
    assert reopened.used_before() == (reopened.rounds[1], ["cat", "fox"])
    # by content now: the same digest under another checksum (a renamed export) is round 2
    assert reopened.round_for("renamed", ["cat", "dog", "fox"], [export], "x",
                              "digest-2").number == 2


def test_the_labels_digest_is_their_content_not_their_order_or_file():
    import numpy as np

    from active_learning.labels.exported import Labels
    from active_learning.labels.voc import Annotation
    from active_learning.rounds.identity import labels_digest, used_categories

    def boxes(*rows):
        return Annotation("x.jpg", 10, 10, np.asarray([r[:4] for r in rows], np.float32),
                          np.asarray([r[4] for r in rows], np.int64),
                          np.zeros(len(rows), bool))

    def labels(targets, categories=("car", "bus"), source="a.json", checksum="1"):
        return Labels("boxes", "coco", source, Path("."), dict(targets), list(categories), [],
                      checksum)

    one = labels({"a.jpg": boxes((1, 2, 3, 4, 1)), "b.jpg": boxes((0, 0, 5, 5, 2))})
    again = labels({"b.jpg": boxes((0, 0, 5, 5, 2)), "a.jpg": boxes((1, 2, 3, 4, 1))},
                   source="renamed.json", checksum="2")
    assert labels_digest(one) == labels_digest(again)
    moved = labels({"a.jpg": boxes((1, 2, 3, 5, 1)), "b.jpg": boxes((0, 0, 5, 5, 2))})
    relabeled = labels({"a.jpg": boxes((1, 2, 3, 4, 2)), "b.jpg": boxes((0, 0, 5, 5, 2))})
    swapped = labels({"a.jpg": boxes((1, 2, 3, 4, 1)), "b.jpg": boxes((0, 0, 5, 5, 2))},
                     categories=("bus", "car"))
    fewer = labels({"a.jpg": boxes((1, 2, 3, 4, 1))})
    digests = {labels_digest(other) for other in (one, moved, relabeled, swapped, fewer)}
    assert len(digests) == 5
    assert used_categories(one) == ["bus", "car"] and used_categories(fewer) == ["car"]
    classes = Labels("class", "csv", "c.csv", Path("."), {"a": 1, "b": 1}, ["cat", "dog"], [], "3")
    assert used_categories(classes) == ["dog"]


def test_only_finished_rounds_say_what_was_labeled_and_a_file_is_no_workspace(tmp_path):
    """An unfinished round (interrupted, to be replaced when the labels change) does not set
    what later exports must keep labeled, nor which classes they must keep using."""
    export = _export(tmp_path, "labels.csv", "1")
    workspace = Workspace(tmp_path / "ws", "classification")
    first = workspace.round_for("1", ["cat", "dog"], [export], "x", "d1", ["a.png"], ["cat"])
    workspace.finish(first, ["b.png"], 1)
    workspace.round_for("2", ["cat", "dog"], [export], "x", "d2", ["a.png", "b.png"],
                        ["cat", "dog"])
    assert workspace.labeled_before() == (first, {"a.png"})
    assert workspace.used_before() == (first, ["cat"])
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        Workspace(afile, "classification")


def test_a_lock_appears_whole_and_a_fresh_one_is_never_taken_over(tmp_path):
    import json

    from active_learning.rounds import lock

    path = tmp_path / lock.LOCK_FILE
    assert lock._create(path) and not lock._create(path)
    record = json.loads(path.read_text())
    assert record["pid"] == os.getpid()
    assert [p.name for p in tmp_path.iterdir()] == [lock.LOCK_FILE]   # no draft left behind
    # a round that judged an older lock stale finds this one instead: it gives it back
    stale = {"pid": 1, "host": "gone", "since": "then"}
    assert not lock._take_over(path, stale)
    assert json.loads(path.read_text()) == record
    assert [p.name for p in tmp_path.iterdir()] == [lock.LOCK_FILE]
    # the lock it judged: moved out of the way
    assert lock._take_over(path, record) and not path.exists()
