"""The user's own data (sne_deploy.own_data): an .npz of arrays and an ImageFolder train, export
and simulate; the normalisation travels to the bundle and `simulate --inputs` applies it; every
malformed dataset gets one line naming the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sne_deploy.data import DataError, load_dataset
from sne_deploy.own_data import defaults_key, load_image_folder, load_npz_dataset, peek_image_shape


def synthetic(n: int, seed: int, classes: int = 3, size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W) images: class c lights up its own band of rows over dim noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, size, size)).astype(np.uint8)
    band = size // classes
    for c in range(classes):
        x[y == c, c * band : (c + 1) * band, :] += 150
    return x, y


def write_npz(path: Path, **changes: np.ndarray) -> Path:
    xt, yt = synthetic(300, 0)
    xs, ys = synthetic(90, 1)
    arrays = {"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys, **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sne_deploy", *args], capture_output=True, text=True, cwd=cwd)


def test_an_npz_of_uint8_images_loads_normalised_with_a_stratified_validation_split(tmp_path):
    ds = load_npz_dataset(write_npz(tmp_path / "d.npz"))
    assert ds.input_shape == (1, 12, 12) and ds.n_classes == 3
    assert ds.train.x.dtype == np.float32 and 0.0 <= ds.train.x.min() and ds.train.x.max() <= 1.0
    assert ds.normalisation.dtype == "uint8" and (ds.normalisation.low, ds.normalisation.high) == (0.0, 255.0)
    assert len(ds.val) == 30 and len(ds.train) == 270 and len(ds.test) == 90
    raw = synthetic(90, 1)[0]
    assert np.array_equal(ds.test.x[:, 0], raw.astype(np.float32) / 255.0)
    # floats outside [0, 1] are scaled by the training split's range, and say so
    xt, yt = synthetic(300, 0)
    f = load_npz_dataset(write_npz(tmp_path / "f.npz", x_train=xt * 4.0 - 100.0, x_test=synthetic(90, 1)[0] * 4.0))
    assert f.normalisation.low == float((xt * 4.0 - 100.0).min()) and f.train.x.min() == 0.0
    assert f.train.x.max() == 1.0


def test_per_size_defaults_come_from_the_image_shape(tmp_path):
    assert peek_image_shape(str(write_npz(tmp_path / "d.npz"))) == (1, 12, 12)
    assert defaults_key((1, 12, 12)) == "digits"
    assert defaults_key((1, 28, 28)) == "fashion-mnist"
    assert defaults_key((3, 32, 32)) == "cifar10"


def _bad(tmp: Path, name: str, **changes) -> Path:  # type: ignore[no-untyped-def]
    return write_npz(tmp / f"{name}.npz", **changes)


X, Y = synthetic(300, 0)
BAD = {
    "missing_key": ({"y_test": None}, "missing y_test"),
    "flat_vectors": ({"x_train": X.reshape(300, -1)}, "must be images of shape (N, H, W) or (N, C, H, W)"),
    "channels_last": ({"x_train": np.repeat(X[..., None], 3, -1)}, "looks channels-last"),
    "nan": ({"x_train": np.where(X > 200, np.nan, X / 255.0)}, "x_train contains NaN or inf"),
    "negative_label": ({"y_train": np.where(Y == 0, -1, Y)}, "y_train holds the class -1"),
    "fractional_label": ({"y_train": Y + 0.5}, "y_train must be whole numbers"),
    "empty_class": ({"y_train": np.where(Y == 1, 2, Y)}, "class 1 has no training images"),
    "unseen_test_class": ({"y_test": np.full(90, 5)}, "y_test holds class 5, which y_train never has"),
    "shapes_differ": ({"x_test": synthetic(90, 1, size=15)[0]}, "x_test images have shape (1, 15, 15)"),
    "label_count": ({"y_train": Y[:-1]}, "y_train must have shape (300,)"),
    "one_class": ({"y_train": np.zeros(300, int), "y_test": np.zeros(90, int)}, "one class only"),
    "val_alone": ({"x_val": X[:10]}, "x_val and y_val come together"),
    "strings": ({"x_train": np.array(["a"] * 300)}, "must hold real numbers"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_malformed_npz_is_one_line_naming_the_file(tmp_path, case):
    changes, message = BAD[case]
    path = _bad(tmp_path, case, **changes)
    with pytest.raises(DataError) as e:
        load_dataset(str(path))
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_bad_data_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    path = _bad(tmp_path, "bad", y_train=np.where(Y == 1, 2, Y))
    p = _cli("train", "--data", str(path), "--out", str(tmp_path / "m.pt"), cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        f"sne-deploy: error: {path}: class 1 has no training images (classes must be 0..2, each present)"
    ]
    assert not (tmp_path / "m.pt").exists()
    (tmp_path / "notes.txt").write_text("x")
    p = _cli("train", "--data", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "m.pt"), cwd=tmp_path)
    assert p.returncode == 2 and "a dataset file must be an .npz" in p.stderr


def _image_folder(root: Path, classes: int = 3, per_class: int = 8, size: int = 10, odd: bool = False) -> Path:
    from PIL import Image

    x, y = synthetic(classes * per_class * 3, 2, classes, size)
    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(x[y == c][:per_class]):
            Image.fromarray(img, mode="L").save(root / f"class_{c}" / f"{i}.png")
    if odd:
        Image.fromarray(np.zeros((size + 2, size), np.uint8), mode="L").save(root / "class_0" / "odd.png")
    return root


def test_an_image_folder_loads_grey_images_split_60_20_20(tmp_path):
    ds = load_image_folder(_image_folder(tmp_path / "imgs"))
    assert ds.input_shape == (1, 10, 10) and ds.n_classes == 3 and ds.normalisation.dtype == "uint8"
    assert len(ds.train) + len(ds.val) + len(ds.test) == 24 and len(ds.test) == 5
    with pytest.raises(DataError, match=r"odd.png: 10x12 pixels, the others 10x10"):
        load_image_folder(_image_folder(tmp_path / "odd", odd=True))
    (tmp_path / "odd" / "class_1" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "odd" / "class_0" / "odd.png").unlink()
    with pytest.raises(DataError, match=r"broken.png: not a readable image"):
        load_image_folder(tmp_path / "odd")
    (tmp_path / "one").mkdir()
    with pytest.raises(DataError, match="needs a folder per class"):
        load_image_folder(tmp_path / "one")


@pytest.mark.slow
def test_an_image_folder_trains_from_the_command_line(tmp_path):
    root = _image_folder(tmp_path / "imgs", per_class=12)
    p = _cli("train", "--data", str(root), "--members", "2", "--epochs", "1", "--teacher-epochs", "2",
             "--out", str(tmp_path / "m.pt"), "--quiet", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "the digits defaults for its image size" in p.stdout
    summary = json.loads((tmp_path / "m.summary.json").read_text())
    assert summary["dataset"] == str(root.resolve()) and summary["test_samples"] == 8


@pytest.mark.slow
@pytest.mark.lava
def test_an_npz_trains_exports_to_lava_and_simulates_raw_inputs_exactly(lava_ready, tmp_path):
    path = write_npz(tmp_path / "d.npz")
    p = _cli("train", "--data", "d.npz", "--members", "3", "--epochs", "2", "--teacher-epochs", "3",
             "--out", "m.pt", "--quiet", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    p = _cli("export", "m.pt", "--target", "lava", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    manifest = json.loads((tmp_path / "m.lava" / "manifest.json").read_text())
    assert manifest["dataset"] == str(path.resolve())
    assert manifest["input_normalisation"] == {"dtype": "uint8", "low": 0.0, "high": 255.0}
    raw, y = synthetic(90, 1)
    np.savez(tmp_path / "raw.npz", x=raw[:40], y=y[:40])  # as stored in the dataset: uint8 (N, H, W)
    np.savez(tmp_path / "scaled.npz", x=raw[:40].reshape(40, -1) / 255.0, y=y[:40])
    runs = {}
    for name in ("raw", "scaled"):
        p = _cli("simulate", "m.lava", "--inputs", f"{name}.npz", "--backend", "lava", "--json", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        runs[name] = json.loads(p.stdout)
    assert runs["raw"]["agreement_with_torch"]["spike_mismatches"] == 0
    assert runs["raw"]["accuracy"] == runs["scaled"]["accuracy"] is not None  # the same rule, applied once


def test_a_torch_dataset_of_image_label_pairs_becomes_a_dataset_that_names_itself_in_memory():
    import torch
    from torch.utils.data import TensorDataset

    from sne_deploy.own_data import from_torch_dataset

    (xt, yt), (xs, ys) = synthetic(120, 0), synthetic(30, 1)
    train = TensorDataset(torch.from_numpy(xt[:, None].astype(np.float32) / 255.0), torch.from_numpy(yt))
    test = TensorDataset(torch.from_numpy(xs[:, None].astype(np.float32) / 255.0), torch.from_numpy(ys))
    ds = from_torch_dataset(train, test, name="mine")
    assert ds.name == "memory:mine" and ds.input_shape == (1, 12, 12) and ds.n_classes == 3
    assert len(ds.train) + len(ds.val) == 120 and ds.normalisation.identity
    with pytest.raises(DataError, match="'mine' was handed over in Python and has no file to reload"):
        load_dataset(ds.name)
    with pytest.raises(DataError, match="item 0 is not an \\(image, label\\) pair"):
        from_torch_dataset([np.zeros((4, 4))], test)
