"""Classification datasets read from tiny fixtures written in the real on-disk formats."""

import gzip
import pickle
import struct
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from active_learning.errors import DataError
from classification import fashion_mnist
from classification.cifar import CIFAR10_MEAN, CIFAR10_STD
from classification.data import load_classification_data
from classification.datasets import IMAGENET_MEAN, IMAGENET_STD, CorruptImageWarning
from classification.fashion_mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD, read_idx


def _unnormalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Undo Normalize: back to the 0..1 scale. ``x: [C, H, W]``."""
    return x * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]


# ------------------------------------------------------------------------------------------ CIFAR-10


def _write_cifar(root, per_batch=4, n_test=10, seed=0, py2_keys_batch=2):
    """The cifar-10-batches-py layout; one batch uses str keys like the official Python-2 pickles."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows, labels = [], []
    for i in range(1, 6):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        lab = rng.integers(0, 10, size=per_batch).tolist()
        entry = {b"batch_label": b"training batch", b"data": data, b"labels": lab}
        if i == py2_keys_batch:
            entry = {k.decode(): v for k, v in entry.items()}
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(entry, f, protocol=2 if i == py2_keys_batch else 4)
        rows.append(data)
        labels += lab
    test = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    test_labels = rng.integers(0, 10, size=n_test).tolist()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": test, b"labels": test_labels}, f)
    names = [f"c{k}".encode() for k in range(10)]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f)
    return folder, np.concatenate(rows), np.array(labels), test, np.array(test_labels)


def test_cifar10_round_trip(tmp_path):
    _, rows, labels, test_rows, test_labels = _write_cifar(tmp_path)
    d = load_classification_data("cifar10", tmp_path)
    assert (d.num_classes, d.in_channels, d.image_size) == (10, 3, 32)
    assert len(d.train) == len(d.train_eval) == 20 and len(d.test) == 10
    assert d.class_names == [f"c{k}" for k in range(10)]
    np.testing.assert_array_equal(d.targets, labels)
    assert d.targets.dtype == np.int64
    assert d.names[0] == "train_00000.png" and d.names[19] == "train_00019.png" and len(set(d.names)) == 20

    for i in (0, 7, 19):
        image, label = d.train_eval[i]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == labels[i]
        pixels = torch.round(_unnormalise(image, CIFAR10_MEAN, CIFAR10_STD) * 255)
        # CHW: channel c, row y, column x is byte c*1024 + y*32 + x of the row.
        for c, y, x in ((0, 0, 0), (1, 5, 9), (2, 31, 30)):
            assert pixels[c, y, x].item() == rows[i, c * 1024 + y * 32 + x]
    image, label = d.test[3]
    assert label == test_labels[3]
    expected = torch.from_numpy(test_rows[3].reshape(3, 32, 32)).float()
    torch.testing.assert_close(torch.round(_unnormalise(image, CIFAR10_MEAN, CIFAR10_STD) * 255), expected)


def test_cifar10_augmentation_is_a_padded_crop_and_flip(tmp_path):
    _, rows, _, _, _ = _write_cifar(tmp_path)
    d = load_classification_data("cifar10", tmp_path)
    original = torch.from_numpy(rows[5].reshape(3, 32, 32)).float()
    padded = torch.nn.functional.pad(original, (4, 4, 4, 4))  # zero (black) borders, before normalising
    candidates = [
        view for dy in range(9) for dx in range(9)
        for crop in [padded[:, dy:dy + 32, dx:dx + 32]] for view in (crop, crop.flip(-1))
    ]
    torch.manual_seed(0)
    changed = 0
    for _ in range(10):
        aug = torch.round(_unnormalise(d.train[5][0], CIFAR10_MEAN, CIFAR10_STD) * 255)
        assert any(torch.equal(aug, c) for c in candidates)  # brute force over all 162 crops/flips
        changed += not torch.equal(aug, original)
    assert changed > 0
    plain = load_classification_data("cifar10", tmp_path, augment=False)
    torch.testing.assert_close(plain.train[5][0], plain.train_eval[5][0])


def test_cifar10_missing_folder_mentions_path_and_download(tmp_path):
    with pytest.raises(DataError) as err:
        load_classification_data("cifar10", tmp_path / "nowhere")
    assert "nowhere" in str(err.value) and "--download" in str(err.value)
    with pytest.raises(DataError, match="--data-dir"):
        load_classification_data("cifar10", None)


def test_cifar10_missing_or_bad_batch(tmp_path):
    folder, *_ = _write_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_classification_data("cifar10", tmp_path)
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataError, match=r"data_batch_3.*3072"):
        load_classification_data("cifar10", tmp_path)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_pickle_cannot_run_code(tmp_path, capsys):
    folder, *_ = _write_cifar(tmp_path)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match=r"test_batch.*builtins\.print"):
        load_classification_data("cifar10", tmp_path)
    assert "never run" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------- Fashion-MNIST


def _idx_bytes(array: np.ndarray) -> bytes:
    """IDX by hand: 00 00 08 ndim, then each dim as big-endian uint32, then the uint8 data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fashion(folder, n_train=12, n_test=5, gz=True, seed=1):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as f:
                f.write(_idx_bytes(array))
        else:
            (folder / name).write_bytes(_idx_bytes(array))
    return arrays


def test_read_idx_hand_made(tmp_path):
    path = tmp_path / "a-idx2-ubyte"
    path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 250]))
    np.testing.assert_array_equal(read_idx(path), [[1, 2, 3], [4, 5, 250]])
    path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5]))  # one byte short
    with pytest.raises(DataError, match="a-idx2-ubyte"):
        read_idx(path)
    path.write_bytes(bytes([8, 3, 0, 0]))
    with pytest.raises(DataError, match="magic"):
        read_idx(path)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_round_trip(tmp_path, gz):
    arrays = _write_fashion(tmp_path / "FashionMNIST" / "raw", gz=gz)
    d = load_classification_data("fashion_mnist", tmp_path)
    assert (d.num_classes, d.in_channels, d.image_size) == (10, 1, 28)
    assert len(d.train) == 12 and len(d.test) == 5 and d.names[11] == "train_00011.png"
    np.testing.assert_array_equal(d.targets, arrays["train-labels-idx1-ubyte"])
    for i in (0, 11):
        image, label = d.train_eval[i]
        assert image.shape == (1, 28, 28) and label == arrays["train-labels-idx1-ubyte"][i]
        pixels = torch.round(_unnormalise(image, FASHION_MNIST_MEAN, FASHION_MNIST_STD) * 255)[0]
        np.testing.assert_array_equal(pixels.numpy(), arrays["train-images-idx3-ubyte"][i])
    image, label = d.test[4]
    assert label == arrays["t10k-labels-idx1-ubyte"][4]
    pixels = torch.round(_unnormalise(image, FASHION_MNIST_MEAN, FASHION_MNIST_STD) * 255)[0]
    np.testing.assert_array_equal(pixels.numpy(), arrays["t10k-images-idx3-ubyte"][4])
    assert d.train[0][0].shape == (1, 28, 28)


def test_fashion_mnist_truncated_files(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    _write_fashion(raw, gz=False)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_classification_data("fashion_mnist", tmp_path)

    _write_fashion(raw, gz=True)
    path.unlink()  # the .gz copy is used now; cut its compressed stream short
    gz_path = raw / "t10k-labels-idx1-ubyte.gz"
    gz_path.write_bytes(gz_path.read_bytes()[:-12])
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_classification_data("fashion_mnist", tmp_path)


def test_fashion_mnist_falls_back_to_system_folder(tmp_path, monkeypatch):
    system = tmp_path / "usr-share"
    arrays = _write_fashion(system, gz=True, n_train=3, n_test=2)
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_SYSTEM_DIR", str(system))
    for data_dir in (None, tmp_path / "empty"):
        d = load_classification_data("fashion_mnist", data_dir)
        np.testing.assert_array_equal(d.targets, arrays["train-labels-idx1-ubyte"])

    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "not-installed"))
    with pytest.raises(DataError) as err:
        load_classification_data("fashion_mnist", tmp_path / "mine")
    assert "mine" in str(err.value) and "not-installed" in str(err.value)


# -------------------------------------------------------------------------------------- image folder


def _solid(path, rgb, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def _write_folder(root):
    _solid(root / "train" / "cat" / "a.png", (255, 0, 0))
    _solid(root / "train" / "cat" / "b.jpg", (0, 0, 255))
    _solid(root / "train" / "dog" / "c.png", (0, 255, 0))
    _solid(root / "test" / "cat" / "x.png", (255, 255, 255))
    _solid(root / "test" / "dog" / "y.png", (0, 0, 0))
    bad = root / "train" / "dog" / "bad.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return bad


def test_image_folder_skips_corrupt_image_with_warning(tmp_path):
    bad = _write_folder(tmp_path)
    with pytest.warns(CorruptImageWarning, match="bad.png"):
        d = load_classification_data("image_folder", tmp_path)
    assert d.class_names == ["cat", "dog"] and d.num_classes == 2 and d.in_channels == 3
    assert d.names == ["a.png", "b.jpg", "c.png"]  # bad.png skipped
    assert str(bad) not in [p for p, _ in d.train.samples]
    np.testing.assert_array_equal(d.targets, [0, 0, 1])
    assert len(d.test) == 2

    expected = {0: (1.0, 0.0, 0.0), 1: (0.0, 0.0, 1.0), 2: (0.0, 1.0, 0.0)}
    for i, rgb in expected.items():
        image, label = d.train_eval[i]
        assert image.shape == (3, 32, 32) and label == d.targets[i]
        colour = _unnormalise(image, IMAGENET_MEAN, IMAGENET_STD).mean(dim=(1, 2))
        torch.testing.assert_close(colour, torch.tensor(rgb), atol=0.03, rtol=0)  # jpg is lossy
    assert d.train[0][0].shape == (3, 32, 32)


def test_image_folder_names_and_size(tmp_path):
    _write_folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptImageWarning)
        d = load_classification_data("image_folder", tmp_path, csv_names="relpath", image_size=16)
    assert d.names == ["cat/a.png", "cat/b.jpg", "dog/c.png"]
    assert d.image_size == 16 and d.test[0][0].shape == (3, 16, 16)


def test_image_folder_duplicate_file_names(tmp_path):
    _write_folder(tmp_path)
    _solid(tmp_path / "train" / "dog" / "a.png", (9, 9, 9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptImageWarning)
        with pytest.raises(DataError, match="relpath") as err:
            load_classification_data("image_folder", tmp_path)
        assert "a.png" in str(err.value)
        d = load_classification_data("image_folder", tmp_path, csv_names="relpath")
    assert d.names == ["cat/a.png", "cat/b.jpg", "dog/a.png", "dog/c.png"]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="missing"):
        load_classification_data("image_folder", tmp_path / "absent")
    _solid(tmp_path / "train" / "cat" / "a.png", (1, 2, 3))
    with pytest.raises(DataError, match="test"):
        load_classification_data("image_folder", tmp_path)  # no test/ folder
    _solid(tmp_path / "test" / "bird" / "z.png", (1, 2, 3))
    with pytest.raises(DataError, match="bird"):
        load_classification_data("image_folder", tmp_path)  # class sets differ

    empty = tmp_path / "empty"
    (empty / "train" / "cat").mkdir(parents=True)
    (empty / "train" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="no image files"):
        load_classification_data("image_folder", empty)

    single = tmp_path / "single"
    for split in ("train", "test"):
        _solid(single / split / "cat" / "a.png", (1, 2, 3))
    with pytest.raises(DataError, match="1 class folder .cat.; classification needs at least two"):
        load_classification_data("image_folder", single)

    hollow = tmp_path / "hollow"
    for split in ("train", "test"):
        _solid(hollow / split / "cat" / "a.png", (1, 2, 3))
        _solid(hollow / split / "dog" / "b.png", (9, 9, 9))
    (hollow / "train" / "dog" / "b.png").unlink()
    (hollow / "train" / "dog" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"class folder .*train/dog holds no readable image"):
        load_classification_data("image_folder", hollow)

    broken = tmp_path / "broken"
    (broken / "train" / "cat").mkdir(parents=True)
    (broken / "train" / "cat" / "x.png").write_bytes(b"garbage")
    with pytest.warns(CorruptImageWarning, match="x.png"), pytest.raises(DataError, match="no readable image"):
        load_classification_data("image_folder", broken)


# ------------------------------------------------------------------------------------------- digits


def test_digits_split_sizes_and_values():
    from sklearn.datasets import load_digits

    d = load_classification_data("digits", None)
    assert (len(d.train), len(d.test), d.num_classes, d.in_channels, d.image_size) == (1500, 297, 10, 1, 8)
    assert len(d.names) == 1500 and d.names[1499] == "train_01499.png"
    assert d.targets.dtype == np.int64 and d.targets.shape == (1500,)

    full = load_digits()
    # Stratified: each class keeps its share of the 1,797 images to within one item.
    counts = np.bincount(d.targets, minlength=10)
    np.testing.assert_allclose(counts, np.bincount(full.target) * 1500 / 1797, atol=1)

    # Every item is one of sklearn's images with its label: together train + test are the whole set.
    sample = d.train_eval[0][0]
    assert sample.shape == (1, 8, 8)
    raw = torch.stack([d.train_eval.images[i].float() / 16 for i in range(len(d.train))])  # [1500, 1, 8, 8]
    assert raw.max() == 1.0 and raw.min() == 0.0
    stored = np.concatenate([d.train_eval.images.numpy(), d.test.images.numpy()])[:, 0]  # [1797, 8, 8]
    def key(imgs, labels):
        return sorted(zip(labels.tolist(), [im.tobytes() for im in imgs]))
    all_labels = np.concatenate([d.targets, d.test.targets])
    assert key(stored, all_labels) == key(full.images.astype(np.uint8), full.target)
    # Normalised with the train statistics: train pixels have mean 0, std 1.
    stacked = torch.stack([d.train_eval[i][0] for i in range(len(d.train))])
    assert abs(stacked.mean().item()) < 1e-4 and abs(stacked.std(unbiased=False).item() - 1) < 1e-3

    again = load_classification_data("digits", None)
    np.testing.assert_array_equal(again.targets, d.targets)  # deterministic split


# ------------------------------------------------------------------------------------------ general


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(DataError) as err:
        load_classification_data("imagenet", None)
    for name in ("cifar10", "fashion_mnist", "image_folder", "digits"):
        assert name in str(err.value)
    with pytest.raises(DataError, match="relpath"):
        load_classification_data("digits", None, csv_names="fullpath")


def test_image_folder_damage_past_the_header_fails_on_read_naming_the_file(tmp_path):
    # PIL's verify() does not decode JPEG pixels: a cut-short JPEG passes the load-time check,
    # and reading it later must still end in one clear DataError naming the file.
    import io

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    _solid(tmp_path / "train" / "b" / "fine.png", (9, 9, 9))
    _solid(tmp_path / "test" / "a" / "ok.png", (5, 5, 5))
    _solid(tmp_path / "test" / "b" / "ok.png", (9, 9, 9))
    d = load_classification_data("image_folder", tmp_path)
    assert d.names == ["cut.jpg", "fine.png"]
    with pytest.raises(DataError, match="cut.jpg"):
        d.train_eval[0]


def test_datasets_pickle_for_dataloader_workers():
    d = load_classification_data("digits", None)
    clone = pickle.loads(pickle.dumps(d.train))
    torch.testing.assert_close(clone[3][0], d.train[3][0])
