"""Rounds that cannot go silently wrong (issue 31), through ``classification/train.py round``:
one image list, a workspace apart from the images, one round at a time, labels identified by
what they say and that only grow, a class list that grows, bad workspaces as one line.

Each round here is a tiny classification round (a few seconds); ``_round`` returns what the
command did (its folder, or its exit code and stderr) so that every check is an assertion.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from active_learning.files.export import read_entropies_csv
from classification.train import main
from round_checks import check_proposals

TINY = ["--width", "2", "--epochs", "1", "--batch-size", "8", "--image-size", "16",
        "--no-progress", "--threads", "1"]


def _png(path: Path, bright: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 100, size=(20, 20, 3)) + 150 * int(bright)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)


@pytest.fixture
def images(tmp_path):
    """16 images of two kinds (dark, bright: by the number's parity) under two subfolders."""
    folder = tmp_path / "images"
    for index in range(16):
        _png(folder / f"part{index // 8}" / f"img_{index:02d}.png", index % 2 == 1, index)
    return folder


def _class(name: str) -> str:
    return "bright" if int(name[-6:-4]) % 2 else "dark"


def _export(path: Path, names, classes=None, header: str = "image,label") -> Path:
    """A ``name,label`` CSV; ``classes``: name -> label where it is not ``_class(name)``."""
    classes = classes or {}
    rows = [f"{name},{classes[name] if name in classes else _class(name)}\n" for name in names]
    path.write_text(header + "\n" + "".join(rows))
    return path


def _round(images, labels, workspace, capsys, *extra):
    """(round folder or None, exit code or None, stderr lines, stdout) of one round; a
    traceback's exception is returned as the code, so a test fails on it by assertion."""
    capsys.readouterr()
    try:
        folder = main(["round", "--images", str(images), "--labels", str(labels),
                       "--workspace", str(workspace), "--budget", "4", *TINY, *extra])
        code = None
    except SystemExit as stop:
        folder, code = None, stop.code
    except Exception as bug:  # noqa: BLE001 - a bug's traceback, asserted against
        folder, code = None, repr(bug)
    captured = capsys.readouterr()
    return folder, code, captured.err.strip().splitlines(), captured.out


def _state(workspace: Path) -> dict:
    return json.loads((workspace / "workspace.json").read_text())


def _names(images: Path) -> list[str]:
    """The test's images under ``images`` (not the hidden ones a test adds)."""
    return sorted(path.relative_to(images).as_posix() for path in images.rglob("img_*.png")
                  if not path.relative_to(images).as_posix().startswith("."))


def _pending(workspace: Path, labeled) -> set[str]:
    """Images proposed by a round and not labeled yet: out for labeling."""
    return {name for entry in _state(workspace)["rounds"] for name in entry["proposed"]} - \
        set(labeled)


# -- 1: a workspace inside --images -------------------------------------------------------

def test_a_workspace_inside_the_images_is_refused(tmp_path, images, capsys):
    labels = _export(tmp_path / "export.csv", _names(images)[:6])
    for inside in (images / "al", images / "part0" / "al", images):
        folder, code, err, _ = _round(images, labels, inside, capsys)
        assert folder is None and code == 2, inside
        assert len(err) == 1 and "is inside --images" in err[0]
        assert not (inside / "workspace.json").exists() and not (inside / "round_001").exists()
    assert not (images / "al").exists()


# -- 2: one function decides what an image is ----------------------------------------------

def test_the_scan_and_the_label_reader_agree_on_what_an_image_is(tmp_path, images, capsys):
    """Images in a symlinked subfolder, a .tif, a name with a literal %20 are images to both
    the candidates' scan and the export's reader; hidden files and folders (a macOS resource
    fork ``._x.png``, a viewer's ``.thumbnails/``) are not, so they are neither refused as
    labels nor proposed."""
    elsewhere = tmp_path / "elsewhere"
    for index in range(16, 20):
        _png(elsewhere / f"img_{index:02d}.png", index % 2 == 1, index)
    (images / "linked").symlink_to(elsewhere, target_is_directory=True)
    Image.open(images / "part0" / "img_00.png").save(images / "scan_30.tif")
    _png(images / "a%20b_31.png", True, 31)
    (images / "part0" / "._img_00.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    _png(images / "part1" / ".img_98.png", False, 98)   # hidden, and a readable picture
    _png(images / ".thumbnails" / "img_00.png", False, 99)
    labeled = ["linked/img_16.png", "linked/img_17.png", "scan_30.tif", "a%20b_31.png",
               "part0/img_00.png", "part0/img_01.png"]
    labels = _export(tmp_path / "export.csv", labeled, {"scan_30.tif": "dark"})
    workspace = tmp_path / "ws"
    folder, code, err, _ = _round(images, labels, workspace, capsys, "--budget", "all")
    assert code is None and folder is not None, err
    proposed = check_proposals(folder, "classification", ["bright", "dark"])
    expected = set(_names(images)) | {"linked/img_18.png", "linked/img_19.png"}
    assert set(proposed) == expected - set(labeled)
    assert _state(workspace)["rounds"][0]["labeled"] == 6
    assert not (folder / "proposals" / "unreadable.txt").exists()   # the hidden: not images


# -- 6: one round at a time ----------------------------------------------------------------

def test_a_second_round_on_a_locked_workspace_is_refused_and_a_stale_lock_taken_over(
        tmp_path, images, capsys, monkeypatch):
    import active_learning.rounds.run as run_module

    names = _names(images)
    workspace = tmp_path / "ws"
    seen = []
    listing = run_module.image_names

    def find_images(folder):   # records the lock as the round sees it while it runs
        lock = workspace / "workspace.lock"
        seen.append(json.loads(lock.read_text()) if lock.is_file() else None)
        return listing(folder)

    monkeypatch.setattr(run_module, "image_names", find_images)
    first, code, err, _ = _round(images, _export(tmp_path / "a.csv", names[:6]), workspace,
                                 capsys)
    assert code is None, err
    assert seen and seen[0] is not None
    assert seen[0]["pid"] == os.getpid() and seen[0]["host"] == socket.gethostname()
    assert not (workspace / "workspace.lock").exists()
    # another round holds the lock (a live process on this host): refused, nothing written
    state = (workspace / "workspace.json").read_text()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (workspace / "workspace.lock").write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "since": "now"}))
        labels = _export(tmp_path / "b.csv", names[:9])
        folder, code, err, _ = _round(images, labels, workspace, capsys)
        assert folder is None and code == 2
        assert len(err) == 1 and "in use by another round" in err[0] and str(holder.pid) in err[0]
        assert (workspace / "workspace.json").read_text() == state
        assert not (workspace / "round_002").exists()
        assert (workspace / "workspace.lock").exists()   # the holder's, untouched
    finally:
        holder.kill()
        holder.wait()
    # a round on another machine: its pid cannot be checked (here it names no process), so
    # it is not taken over
    (workspace / "workspace.lock").write_text(json.dumps(
        {"pid": holder.pid, "host": "another-host", "since": "now"}))
    folder, code, err, _ = _round(images, labels, workspace, capsys)
    assert code == 2 and len(err) == 1 and "another-host" in err[0]
    # the holder died without removing its lock: stale, taken over with a warning
    (workspace / "workspace.lock").write_text(json.dumps(
        {"pid": holder.pid, "host": socket.gethostname(), "since": "then"}))
    folder, code, err, out = _round(images, labels, workspace, capsys)
    assert code is None and folder is not None and folder.name == "round_002", err
    assert "stale lock" in out + "\n".join(err)
    assert seen[-1]["pid"] == os.getpid()
    assert not (workspace / "workspace.lock").exists()


# -- 4: labels only grow -------------------------------------------------------------------

def test_an_export_that_lost_labels_is_refused_unless_allowed(tmp_path, images, capsys):
    names = _names(images)
    workspace = tmp_path / "ws"
    first, code, err, _ = _round(images, _export(tmp_path / "a.csv", names[:6]), workspace,
                                 capsys)
    assert code is None, err
    proposed = _state(workspace)["rounds"][0]["proposed"]
    second, code, err, _ = _round(
        images, _export(tmp_path / "b.csv", names[:6] + proposed[:3]), workspace, capsys)
    assert code is None and second.name == "round_002", err
    # the stale export (round 1's labels again, under another name): refused, naming the three
    state = (workspace / "workspace.json").read_text()
    stale = _export(tmp_path / "stale.csv", names[:6])
    folder, code, err, _ = _round(images, stale, workspace, capsys)
    assert folder is None and code == 2 and len(err) == 1
    assert "3 image(s) labeled in round 2 have no label" in err[0]
    assert all(name in err[0] for name in proposed[:3]) and "--allow-unlabel" in err[0]
    assert (workspace / "workspace.json").read_text() == state
    assert not (workspace / "round_003").exists()
    # a partial export (one image lost, others added) is refused too
    partial = _export(tmp_path / "partial.csv", names[1:6] + proposed[:3] + [proposed[3]])
    folder, code, err, _ = _round(images, partial, workspace, capsys)
    assert code == 2 and names[0] in err[0] and "1 image(s)" in err[0]
    # every "dark" image relabeled "black": the CSV names only the classes its rows use, so
    # the class list would grow by "black" and keep a "dark" no label uses: a rename, refused
    renamed = _export(tmp_path / "renamed.csv", names[:6] + proposed[:3],
                      {name: "black" for name in names[:6] + proposed[:3]
                       if _class(name) == "dark"})
    folder, code, err, _ = _round(images, renamed, workspace, capsys)
    assert code == 2 and len(err) == 1 and "no label uses dark any more" in err[0]
    assert (workspace / "workspace.json").read_text() == state
    # asked for: the images become unlabeled, and may be proposed again
    third, code, err, out = _round(images, stale, workspace, capsys, "--allow-unlabel")
    assert code is None and third.name == "round_003", err
    assert "unlabeled now (--allow-unlabel)" in out + "\n".join(err)
    assert _state(workspace)["rounds"][2]["labeled"] == 6


# -- 8: workspaces that cannot be one ------------------------------------------------------

def test_a_workspace_that_is_a_file_or_under_one_is_one_line(tmp_path, images, capsys):
    labels = _export(tmp_path / "export.csv", _names(images)[:6])
    afile = tmp_path / "notes.txt"
    afile.write_text("not a workspace")
    for workspace, words in ((afile, "is a file"), (afile / "ws", "cannot write there")):
        folder, code, err, _ = _round(images, labels, workspace, capsys)
        assert folder is None and code == 2, workspace
        assert len(err) == 1 and words in err[0] and str(workspace) in err[0]
    assert afile.read_text() == "not a workspace"


# -- 3: a class list that grows, or is fixed up front ---------------------------------------

def test_a_class_list_fixed_up_front_and_a_renamed_class_refused(tmp_path, images, capsys):
    names = _names(images)
    class_list = tmp_path / "classes.txt"
    class_list.write_text("dark\nbright\nmid\n")
    workspace = tmp_path / "ws"
    first, code, err, _ = _round(images, _export(tmp_path / "a.csv", names[:6]), workspace,
                                 capsys, "--class-list", str(class_list))
    assert code is None, err
    # the Label Studio config offers every listed class from the first round
    check_proposals(first, "classification", ["dark", "bright", "mid"])
    assert _state(workspace)["categories"] == ["dark", "bright", "mid"]
    # a class outside the fixed list is refused, naming it
    outside = _export(tmp_path / "b.csv", names[:7], {names[6]: "other"})
    folder, code, err, _ = _round(images, outside, workspace, capsys,
                                  "--class-list", str(class_list))
    assert code == 2 and len(err) == 1 and "other" in err[0] and "--class-list" in err[0]
    assert not (workspace / "round_002").exists()


def test_a_new_class_folder_is_added_and_a_renamed_one_refused(tmp_path, images, capsys):
    """Class folders list every class: one that appears after round 1 joins the class list
    (logged, offered to the annotators); one that disappears (renamed) is refused, naming it."""
    names = _names(images)
    export = tmp_path / "sorted"

    def sort(name, label):
        target = export / label / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((images / name).read_bytes())

    for name in names[:6]:
        sort(name, _class(name))
    workspace = tmp_path / "ws"
    first, code, err, _ = _round(images, export, workspace, capsys)
    assert code is None, err
    sort(names[6], "mid")
    second, code, err, out = _round(images, export, workspace, capsys)
    assert code is None and second.name == "round_002", err
    assert "new class(es) mid join the workspace's 2" in out
    assert _state(workspace)["categories"] == ["bright", "dark", "mid"]
    check_proposals(second, "classification", ["bright", "dark", "mid"])
    assert _state(workspace)["rounds"][1]["classes"] == 3
    (export / "dark").rename(export / "black")
    folder, code, err, _ = _round(images, export, workspace, capsys)
    assert code == 2 and len(err) == 1 and "gone: dark" in err[0] and "new: black" in err[0]
    assert _state(workspace)["categories"] == ["bright", "dark", "mid"]
    assert len(_state(workspace)["rounds"]) == 2


# -- Done when: the export renamed, reordered, given a new class, given twice ----------------

def test_the_loop_survives_what_annotators_do_to_their_exports(tmp_path, images, capsys):
    names = _names(images)
    workspace = tmp_path / "ws"

    def check(folder, number, labeled, classes):
        state = _state(workspace)
        assert folder is not None and folder.name == f"round_{number:03d}"
        assert len(state["rounds"]) == number and state["rounds"][-1]["status"] == "done"
        assert state["rounds"][-1]["labeled"] == len(labeled)
        assert state["categories"] == classes
        proposed = check_proposals(folder, "classification", classes)
        assert not set(proposed) & set(labeled)
        before = {name for entry in state["rounds"][:-1] for name in entry["proposed"]}
        assert not set(proposed) & (before - set(labeled))   # none already out for labeling
        return proposed

    labeled = names[:6]
    first, code, err, _ = _round(images, _export(tmp_path / "project-1-at-10-00.csv", labeled),
                                 workspace, capsys)
    assert code is None, err
    proposed = check(first, 1, labeled, ["bright", "dark"])
    files = {path: path.stat().st_mtime_ns for path in workspace.rglob("*") if path.is_file()}
    # renamed (Label Studio stamps each export with its time): the same round, nothing changes
    renamed = _export(tmp_path / "project-1-at-10-05.csv", labeled)
    folder, code, err, out = _round(images, renamed, workspace, capsys)
    assert code is None and folder == first and "read these labels already" in out
    check(folder, 1, labeled, ["bright", "dark"])
    # reordered (rows, and the columns' header spelled otherwise): still the same labels
    reordered = _export(tmp_path / "project-1-at-10-09.csv", labeled[::-1], header="name,class")
    folder, code, err, _ = _round(images, reordered, workspace, capsys)
    assert code is None and folder == first, err
    assert files == {path: path.stat().st_mtime_ns for path in workspace.rglob("*")
                     if path.is_file()}
    # two proposals labeled, one of them with a class no one used before: round 2 learns it
    # (the model from scratch, though --warm-start asks for round 1's: the head grew)
    labeled = labeled + proposed[:2]
    grown = _export(tmp_path / "project-1-at-11-00.csv", labeled, {proposed[0]: "mid"})
    second, code, err, out = _round(images, grown, workspace, capsys, "--warm-start")
    assert code is None, err
    assert "new class(es) mid" in out and "class list grew" in out
    check(second, 2, labeled, ["bright", "dark", "mid"])
    assert _pending(workspace, labeled) >= set(proposed[2:])
    # the same export twice, once under its own name and once copied: round 2 again
    # (--repropose cannot apply to a round that is done: said, not silently ignored)
    for again in (grown, Path(str(grown).replace("11-00", "11-00 (copy)"))):
        if again != grown:
            again.write_bytes(grown.read_bytes())
        folder, code, err, out = _round(images, again, workspace, capsys, "--repropose")
        assert code is None and folder == second, err
        assert "--repropose changes nothing here: round 2 is done" in out + "\n".join(err)
        check(folder, 2, labeled, ["bright", "dark", "mid"])
    ranked = [name for name, _ in read_entropies_csv(second / "proposals" / "priority.csv")]
    assert len(ranked) == 4


# -- 11: the smaller ones --------------------------------------------------------------------

def test_round_help_lists_what_a_round_reads(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["round", "--help"])
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    for flag in ("--cycles", "--initial-size", "--output-dir", "--unlabeled-dir", "--resume"):
        assert f"{flag} " not in shown and f"{flag}," not in shown, flag
    for flag in ("--images", "--labels", "--workspace", "--budget", "--class-list",
                 "--allow-unlabel", "--epochs"):
        assert flag in shown


def test_a_zero_budget_is_refused_before_the_workspace_is_written(tmp_path, images, capsys):
    labels = _export(tmp_path / "export.csv", _names(images)[:6])
    folder, code, err, _ = _round(images, labels, tmp_path / "ws", capsys, "--budget", "0")
    assert folder is None and code == 2 and len(err) == 1
    assert not (tmp_path / "ws").exists()
    assert "--budget 0" in err[0]


# -- 7: unreadable images ------------------------------------------------------------------

def test_unreadable_candidates_are_left_out_and_listed_unreadable_labeled_ones_all_named(
        tmp_path, images, capsys):
    whole = (images / "part1" / "img_15.png").read_bytes()
    (images / "part1" / "broken_a.png").write_bytes(whole[:len(whole) // 2])   # truncated
    (images / "part1" / "broken_b.jpg").write_bytes(b"")
    labeled = _names(images)[:6]
    workspace = tmp_path / "ws"
    folder, code, err, out = _round(images, _export(tmp_path / "a.csv", labeled), workspace,
                                    capsys, "--budget", "all")
    assert code is None and folder is not None, err
    proposed = check_proposals(folder, "classification", ["bright", "dark"])
    assert set(proposed) == set(_names(images)) - set(labeled)
    logged = out + "\n".join(err)
    assert "2 unreadable image(s) left out of the candidates" in logged
    assert "broken_a.png" in logged and "broken_b.jpg" in logged
    listed = (folder / "proposals" / "unreadable.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in listed] == ["part1/broken_a.png",
                                                        "part1/broken_b.jpg"]
    page = (folder / "proposals" / "report" / "index.html").read_text()
    assert "2 unreadable image(s) left out" in page and "part1/broken_a.png" in page
    assert 'href="../unreadable.txt"' in page
    # labeled ones stop the round, every one named in the one line
    bad = _export(tmp_path / "b.csv", labeled + ["part1/broken_a.png", "part1/broken_b.jpg"],
                  {"part1/broken_a.png": "dark", "part1/broken_b.jpg": "bright"})
    again, code, err, _ = _round(images, bad, workspace, capsys)
    assert again is None and code == 2 and len(err) == 1
    assert "2 labeled image(s) cannot be read" in err[0]
    assert "broken_a.png" in err[0] and "broken_b.jpg" in err[0]
    assert len(_state(workspace)["rounds"]) == 1


def test_a_workspace_refused_by_the_file_system_is_one_line_and_left_as_it_was(
        tmp_path, images, capsys, monkeypatch):
    """A read-only file system as root sees it (root writes into a 0o555 folder, so the
    permission is refused here where the lock file is created): one line, exit 2, and the
    folder the round made for it removed again."""
    import active_learning.rounds.lock as lock

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(lock, "_create", denied)
    labels = _export(tmp_path / "export.csv", _names(images)[:6])
    folder, code, err, _ = _round(images, labels, tmp_path / "new" / "ws", capsys)
    assert folder is None and code == 2
    assert len(err) == 1 and "cannot write there (Permission denied)" in err[0]
    assert not (tmp_path / "new" / "ws").exists()


def test_a_round_with_nothing_left_to_propose_says_so_in_one_line(images, tmp_path, capsys):
    # every image labeled: no candidate (mutant: the check dropped, the round goes on with none)
    labels = _export(tmp_path / "all.csv", _names(images))
    folder, code, err, _ = _round(images, labels, tmp_path / "ws", capsys)
    assert folder is None and code == 2 and len(err) == 1
    assert err[0].endswith("nothing to propose: of 16 images, 16 are labeled and 0 out for "
                           "labeling (--repropose proposes those again)")
    folder, code, err, _ = _round(images, labels, tmp_path / "ws2", capsys, "--repropose")
    assert code == 2 and err[0].endswith("of 16 images, 16 are labeled and 0 out for labeling")
