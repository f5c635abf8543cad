"""PoolState: the labeled-at-cycle history, its queries, and its atomic pool.npz."""
from __future__ import annotations

import numpy as np
import pytest

from active_learning import PoolState
from active_learning.errors import RunMismatchError
from active_learning.loop import pool as pool_module


def _history() -> PoolState:
    """10 items: 0, 3, 7 initial (cycle 0); 1, 8 in cycle 1; 5 in cycle 2; the rest unlabeled."""
    labeled_at = np.array([0, 1, -1, 0, -1, 2, -1, 0, 1, -1])
    return PoolState(labeled_at, finished_cycles=2)


def test_save_load_round_trip(tmp_path):
    state = _history()
    path = tmp_path / "run" / "pool.npz"  # the folder does not exist yet
    state.save(path)
    loaded = PoolState.load(path)
    assert loaded.labeled_at.dtype == np.int16
    np.testing.assert_array_equal(loaded.labeled_at, state.labeled_at)
    assert loaded.finished_cycles == 2
    # The file is a plain npz with the documented keys.
    with np.load(path) as data:
        assert sorted(data.files) == ["finished_cycles", "labeled_at"]
        assert data["labeled_at"].dtype == np.int16
        assert int(data["finished_cycles"]) == 2


def test_labeled_at_is_stored_as_int16():
    state = PoolState(np.array([0, -1, 3], dtype=np.int64))
    assert state.labeled_at.dtype == np.int16
    assert len(state) == 3
    assert state.finished_cycles == 0


def test_queries_on_a_hand_made_history():
    state = _history()
    np.testing.assert_array_equal(state.labeled_indices, [0, 1, 3, 5, 7, 8])
    np.testing.assert_array_equal(state.unlabeled_indices, [2, 4, 6, 9])
    np.testing.assert_array_equal(state.labeled_up_to(0), [0, 3, 7])
    np.testing.assert_array_equal(state.labeled_up_to(1), [0, 1, 3, 7, 8])
    np.testing.assert_array_equal(state.labeled_up_to(2), [0, 1, 3, 5, 7, 8])
    np.testing.assert_array_equal(state.added_in(0), [0, 3, 7])
    np.testing.assert_array_equal(state.added_in(1), [1, 8])
    np.testing.assert_array_equal(state.added_in(2), [5])
    assert state.added_in(3).size == 0


def test_mark_labeled_records_the_cycle():
    state = PoolState.empty(6)
    np.testing.assert_array_equal(state.labeled_at, [-1] * 6)
    state.mark_labeled([4, 1], cycle=0)
    state.mark_labeled(np.array([5]), cycle=1)
    np.testing.assert_array_equal(state.labeled_at, [-1, 0, -1, -1, 0, 1])
    np.testing.assert_array_equal(state.unlabeled_indices, [0, 2, 3])
    state.mark_labeled([], cycle=2)  # nothing to add is not an error
    np.testing.assert_array_equal(state.labeled_at, [-1, 0, -1, -1, 0, 1])


@pytest.mark.parametrize("indices, message", [
    ([2, 2], "repeats"),
    ([10], "outside"),
    ([-1], "outside"),
    ([0, 6], "labeled already"),   # 0 was labeled in cycle 0
])
def test_mark_labeled_rejects_bad_indices(indices, message):
    state = _history()
    before = state.labeled_at.copy()
    with pytest.raises(ValueError, match=message):
        state.mark_labeled(indices, cycle=3)
    np.testing.assert_array_equal(state.labeled_at, before)  # nothing was half-applied


def test_mark_labeled_rejects_a_cycle_outside_int16():
    state = PoolState.empty(3)
    with pytest.raises(ValueError, match="cycle"):
        state.mark_labeled([0], cycle=40000)
    with pytest.raises(ValueError, match="cycle"):
        state.mark_labeled([0], cycle=-1)


@pytest.mark.parametrize("size", [0, -3])
def test_empty_pool_is_an_error(size):
    with pytest.raises(ValueError, match="empty"):
        PoolState.empty(size)


def test_bad_labeled_at_is_rejected():
    with pytest.raises(ValueError, match="1-D"):
        PoolState(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="below -1"):
        PoolState(np.array([0, -2]))


def test_load_of_a_bad_file_is_a_value_error(tmp_path):
    path = tmp_path / "pool.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="cannot read pool state"):
        PoolState.load(path)
    with pytest.raises(ValueError, match="cannot read pool state"):
        PoolState.load(tmp_path / "missing.npz")


def test_load_of_a_truncated_file_is_a_value_error(tmp_path):
    path = tmp_path / "pool.npz"
    state = PoolState.empty(1000)
    state.mark_labeled(np.arange(10), cycle=0)
    state.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # e.g. a copy cut short
    with pytest.raises(ValueError, match="cannot read pool state"):
        PoolState.load(path)


def test_failed_save_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "pool.npz"
    old = _history()
    old.save(path)
    old_bytes = path.read_bytes()

    def broken_savez(handle, **arrays):
        handle.write(b"half a file")  # a crash in the middle of the write
        raise OSError("disk full")

    monkeypatch.setattr(pool_module.np, "savez", broken_savez)
    new = PoolState.empty(10)
    new.mark_labeled([2, 4, 6], cycle=0)
    with pytest.raises(OSError, match="disk full"):
        new.save(path)

    assert path.read_bytes() == old_bytes
    np.testing.assert_array_equal(PoolState.load(path).labeled_at, old.labeled_at)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.npz"]


def test_a_pool_that_gained_items_is_remapped_by_name_with_each_items_units():
    from active_learning.loop.identity import check_pool

    old = PoolState(np.array([0, -1, 1, -1, 0]), 2, item_names=np.array(["b.png", "c.png"]),
                    item_units=np.array([2, 3]))                       # b: units 0-1, c: units 2-4
    names, counts = np.array(["a.png", "b.png", "c.png"]), np.array([1, 2, 3])
    with pytest.raises(RunMismatchError, match=r"1 new \(a.png\).*--allow-new-images"):
        check_pool(old, names, counts, "pool.npz")
    new = check_pool(old, names, counts, "pool.npz", allow_new_items=True)
    np.testing.assert_array_equal(new.labeled_at, [-1, 0, -1, 1, -1, 0])
    assert new.finished_cycles == 2 and new.item_names.tolist() == names.tolist()
    with pytest.raises(RunMismatchError, match="c.png had 3 units in this run and has 4 now"):
        check_pool(old, names, np.array([1, 2, 4]), "pool.npz", allow_new_items=True)


def test_a_reordered_pool_is_refused_and_a_run_without_names_is_accepted_once():
    from active_learning.loop.identity import check_pool

    old = PoolState(np.array([0, -1]), 1, item_names=np.array(["a.png", "b.png"]), item_units=np.array([1, 1]))
    with pytest.raises(RunMismatchError, match=r"another order \(item 0 was a.png, is b.png\)"):
        check_pool(old, np.array(["b.png", "a.png"]), np.array([1, 1]), "pool.npz")
    remapped = check_pool(old, np.array(["b.png", "a.png"]), np.array([1, 1]), "pool.npz", allow_new_items=True)
    np.testing.assert_array_equal(remapped.labeled_at, [-1, 0])               # a.png stays labeled
    legacy = PoolState(np.array([0, -1]), 1)                                    # recorded before names
    resumed = check_pool(legacy, np.array(["a.png", "b.png"]), np.array([1, 1]), "pool.npz")
    assert resumed.item_names.tolist() == ["a.png", "b.png"]
    with pytest.raises(RunMismatchError, match="a pool of 2 units, but the dataset has 3"):
        check_pool(PoolState(np.array([0, -1]), 1), np.array(["a", "b", "c"]), np.array([1, 1, 1]), "p")


def test_item_names_survive_a_save_and_load(tmp_path):
    state = PoolState(np.array([0, -1, 2]), 3, item_names=np.array(["x,1.png", "é.png", "c"]),
                      item_units=np.array([1, 1, 1]))
    state.save(tmp_path / "pool.npz")
    loaded = PoolState.load(tmp_path / "pool.npz")
    assert loaded.item_names.tolist() == ["x,1.png", "é.png", "c"] and loaded.item_units.tolist() == [1, 1, 1]


def test_contents_are_compared_by_name_and_carried_through_a_remap():
    from active_learning.loop.identity import check_pool

    old = PoolState(np.array([0, -1]), 1, item_names=np.array(["a.png", "b.png"]),
                    item_units=np.array([1, 1]), item_contents=np.array(["1:aa", "1:bb"]))
    names, counts = np.array(["a.png", "b.png"]), np.array([1, 1])
    with pytest.raises(RunMismatchError, match=r"content of 1 image\(s\) changed .*\(b.png\)"):
        check_pool(old, names, counts, "pool.npz", contents=np.array(["1:aa", "1:XX"]))
    # an item whose file could not be read now ("") is not called changed: reading it reports it
    assert check_pool(old, names, counts, "p", contents=np.array(["1:aa", ""])).item_contents.tolist() == ["1:aa", ""]
    old.item_contents = np.array(["1:aa", "1:bb"])
    grown = check_pool(old, np.array(["0.png", "a.png", "b.png"]), np.array([1, 1, 1]), "p",
                       allow_new_items=True, contents=np.array(["1:00", "1:aa", "1:bb"]))
    assert grown.item_contents.tolist() == ["1:00", "1:aa", "1:bb"]
    old.item_contents = np.array(["1:aa", "1:bb"])
    with pytest.raises(RunMismatchError, match=r"\(a.png\)"):   # moved by the remap, then compared
        check_pool(old, np.array(["0.png", "a.png", "b.png"]), np.array([1, 1, 1]), "p",
                   allow_new_items=True, contents=np.array(["1:00", "1:zz", "1:bb"]))
    legacy = PoolState(np.array([0, -1]), 1, item_names=names, item_units=counts)   # before contents
    assert check_pool(legacy, names, counts, "p", contents=np.array(["1:aa", "1:cc"])).item_contents.tolist() == ["1:aa", "1:cc"]


def test_item_contents_survive_a_save_and_load(tmp_path):
    state = PoolState(np.array([0, -1]), 1, item_names=np.array(["a", "b"]), item_units=np.array([1, 1]),
                      item_contents=np.array(["3:ab", ""]))
    state.save(tmp_path / "pool.npz")
    assert PoolState.load(tmp_path / "pool.npz").item_contents.tolist() == ["3:ab", ""]


def test_a_file_fingerprint_sees_a_change_in_each_sampled_block_and_in_the_size(tmp_path):
    from active_learning.files.fingerprint import BLOCK, file_fingerprint, full_fingerprint

    data = bytearray(np.random.default_rng(0).integers(0, 256, 10 * BLOCK, dtype=np.uint8).tobytes())
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(data))
    original = file_fingerprint(path)
    assert original.startswith(f"{10 * BLOCK}:") and original == file_fingerprint(path)
    for place in (0, (len(data) - BLOCK) // 2 + 7, len(data) - 1):   # head, middle, tail block
        changed = bytearray(data)
        changed[place] ^= 0xFF
        path.write_bytes(bytes(changed))
        assert file_fingerprint(path) != original, place
    changed = bytearray(data)
    changed[2 * BLOCK] ^= 0xFF   # between the blocks: the documented blind spot; the full hash sees it
    path.write_bytes(bytes(changed))
    reference = tmp_path / "reference.bin"
    reference.write_bytes(bytes(data))
    assert file_fingerprint(path) == original and full_fingerprint(path) != full_fingerprint(reference)
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(data[:3 * BLOCK]))
    small_print = file_fingerprint(small)
    small.write_bytes(bytes(data[:2 * BLOCK]) + bytes([data[2 * BLOCK] ^ 1]) + bytes(data[2 * BLOCK + 1:3 * BLOCK]))
    assert file_fingerprint(small) != small_print   # up to three blocks: every byte counts
