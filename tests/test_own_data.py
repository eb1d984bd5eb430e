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


# --- event data: counts per time bin, no encoder ---------------------------------------------


def synthetic_events(
    n: int, seed: int, classes: int = 3, steps: int = 6, size: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Event frames (N, T, 2, H, W) of Poisson counts: class c fires in its own band of rows of
    polarity c % 2 over a dim background (what tonic's ToFrame makes of a DVS recording)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    rate = np.full((n, steps, 2, size, size), 0.05)
    band = size // classes
    for c in range(classes):
        rate[y == c, :, c % 2, c * band : (c + 1) * band, :] += 0.6
    return rng.poisson(rate).astype(np.uint8), y


def write_events(path: Path, **changes) -> Path:  # type: ignore[no-untyped-def]
    xt, yt = synthetic_events(300, 0)
    xs, ys = synthetic_events(90, 1)
    arrays = {"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys, **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_event_frames_are_the_students_spikes_and_their_sums_the_teachers_frames(tmp_path):
    from sne_deploy.own_data import peek_data_shape
    from sne_deploy.simulators.encoding import encode_spikes, events_frame

    ds = load_npz_dataset(write_events(tmp_path / "ev.npz"))
    assert ds.event_bins == 6 and ds.input_shape == (2, 8, 8) and ds.n_classes == 3
    assert peek_data_shape(str(tmp_path / "ev.npz")).event_bins == 6
    raw = synthetic_events(90, 1)[0]
    assert np.array_equal(ds.test.events, raw.reshape(90, 6, 128))  # the counts, untouched
    inputs = ds.test.inputs()
    assert inputs.shape == (90, 6 * 128)
    assert np.array_equal(encode_spikes(inputs, 6, "events"), raw.reshape(90, 6, 128))  # no encoder: a reshape
    scale = ds.normalisation.high
    assert ds.normalisation.dtype == "events" and scale == np.percentile(
        (t := synthetic_events(300, 0)[0].sum(1).ravel())[t > 0], 99
    )
    frame = np.clip(raw.sum(1) / scale, 0, 1).astype(np.float32)
    assert np.array_equal(ds.test.x, frame) and np.array_equal(ds.test.flat(), events_frame(inputs, 6, scale))
    # the validation split keeps each sample's frame with its events
    assert np.array_equal(ds.val.flat(), events_frame(ds.val.inputs(), 6, scale))
    # (N, T, features) events say so with layout = "events" (else (N, H, W) images)
    flat_t = write_events(tmp_path / "f.npz", x_train=synthetic_events(300, 0)[0].reshape(300, 6, -1),
                          x_test=raw.reshape(90, 6, -1), layout=np.array("events"))  # fmt: skip
    f = load_npz_dataset(flat_t)
    assert f.event_bins == 6 and f.input_shape == (1, 1, 128) and peek_data_shape(str(flat_t)).image == (1, 1, 128)


XE = synthetic_events(300, 0)[0]
BAD_EVENTS = {
    "negative": ({"x_train": XE.astype(np.int16) - 1}, "whole event counts >= 0 per bin"),
    "fraction": ({"x_train": XE * 0.5}, "whole event counts >= 0 per bin"),
    "bins_differ": ({"x_test": synthetic_events(90, 1, steps=5)[0]}, "x_test event frames have shape (5, 2, 8, 8)"),
    "silent": ({"x_train": np.zeros_like(XE)}, "x_train holds no events at all"),
    "layout": ({"layout": np.array("video")}, "layout 'video' is none of images, events"),
}


@pytest.mark.parametrize("case", list(BAD_EVENTS))
def test_each_malformed_event_dataset_is_one_line_naming_the_file(tmp_path, case):
    changes, message = BAD_EVENTS[case]
    path = write_events(tmp_path / f"{case}.npz", **changes)
    with pytest.raises(DataError) as e:
        load_dataset(str(path))
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_event_data_set_the_time_steps_and_the_code_and_refuse_settings_against_them(tmp_path):
    from sne_deploy.config import TrainConfig
    from sne_deploy.simulators.errors import InputError

    path = str(write_events(tmp_path / "ev.npz"))
    cfg = TrainConfig(data=path).checked()
    assert (cfg.steps, cfg.encoding) == (6, "events")
    assert TrainConfig(data=path, steps=6, encoding="events").checked() == cfg
    with pytest.raises(InputError, match="--steps 4: the event data in .*ev.npz have 6 time bins"):
        TrainConfig(data=path, steps=4).checked()
    with pytest.raises(InputError, match="--encoding regular-if: .*ev.npz holds event counts"):
        TrainConfig(data=path, encoding="regular-if").checked()
    with pytest.raises(InputError, match="--encoding events takes event data"):
        TrainConfig(encoding="events").checked()


@pytest.mark.slow
@pytest.mark.brian2
@pytest.mark.lava
def test_event_data_train_and_run_exactly_on_every_backend_without_an_encoder(brian2_ready, lava_ready, tmp_path):
    """Counts per bin reach the students as they are, on Lava as graded spikes; the gate and the
    teacher see their frames; simulate --inputs takes counts as stored (N, T, C, H, W)."""
    write_events(tmp_path / "ev.npz")
    p = _cli("train", "--data", "ev.npz", "--members", "3", "--epochs", "4", "--teacher-epochs", "5",
             "--out", "m.pt", "--quiet", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "event data: their counts per bin are the input spikes, no encoder" in p.stdout
    assert _cli("export", "m.pt", "--target", "lava", cwd=tmp_path).returncode == 0
    manifest = json.loads((tmp_path / "m.lava" / "manifest.json").read_text())
    assert manifest["encoding"] == "events" and manifest["steps"] == 6 and manifest["input_shape"] == [2, 8, 8]
    raw, y = synthetic_events(90, 1)
    assert raw.max() > 1  # counts, not 0/1 spikes
    np.savez(tmp_path / "raw.npz", x=raw[:40], y=y[:40])
    for backend in ("reference", "brian2", "lava"):
        p = _cli("simulate", "m.lava", "--inputs", "raw.npz", "--backend", backend, "--policy", "cascade",
                 "--budget", "0.5", "--json", cwd=tmp_path)  # fmt: skip
        assert p.returncode == 0, p.stderr
        report = json.loads(p.stdout)
        assert report["agreement_with_torch"]["spike_mismatches"] == 0, backend
        assert report["agreement_with_torch"]["prediction_agreement"] == 1.0, backend
    np.savez(tmp_path / "half.npz", x=raw[:40] * 0.5)
    p = _cli("simulate", "m.lava", "--inputs", "half.npz", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1] == (
        "sne-deploy: error: half.npz: event inputs must be non-negative whole counts per bin; found negatives or fractions"
    )


def test_a_torch_dataset_of_event_frames_fits_through_the_python_api():
    """tonic-style (frames (T, C, H, W), label) pairs: the model takes T and the events code from
    them, and its students are fed the counts."""
    import torch
    from torch.utils.data import TensorDataset

    import sne_deploy
    from sne_deploy.own_data import from_torch_dataset

    (xt, yt), (xs, ys) = synthetic_events(150, 0), synthetic_events(40, 1)
    ds = from_torch_dataset(
        TensorDataset(torch.from_numpy(xt), torch.from_numpy(yt)), TensorDataset(torch.from_numpy(xs), torch.from_numpy(ys)),
        name="dvs",
    )  # fmt: skip
    assert ds.event_bins == 6 and ds.name == "memory:dvs"
    model = sne_deploy.fit(ds, sne_deploy.TrainConfig(members=2, epochs=1, teacher_epochs=1), progress=False)
    assert (model.config.steps, model.config.encoding, model.config.data) == (6, "events", "memory:dvs")
    assert model.summary is not None and model.summary.encoding == "events"
