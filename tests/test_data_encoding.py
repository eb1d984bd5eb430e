"""Loaders (digits, Fashion-MNIST, CIFAR-10) and the shared spike encoder."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from sne_deploy.data import FASHION_DEFAULT_DIR, DataError, load_cifar10, load_dataset, load_digits, load_fashion_mnist
from sne_deploy.simulators.encoding import encode_regular
from tests.helpers import need


def test_digits_shapes_dtypes_labels():
    ds = load_digits(0)
    assert ds.input_shape == (1, 8, 8)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    for s in (ds.train, ds.val, ds.test):
        assert s.x.dtype == np.float32 and s.y.dtype == np.int64
        assert s.x.min() >= 0 and s.x.max() <= 1
        assert set(np.unique(s.y)) == set(range(10))  # stratified: every class in every split


def test_digits_split_is_deterministic_and_seeded():
    a, b, c = load_digits(0), load_digits(0), load_digits(1)
    assert np.array_equal(a.test.x, b.test.x) and np.array_equal(a.train.y, b.train.y)
    assert not np.array_equal(a.test.x, c.test.x)


def _write_idx(path, arr):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes())


def _fake_fashion(d, n_train=200, n_test=50):
    rng = np.random.default_rng(0)
    _write_idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    _write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(n_train, dtype=np.uint8) % 10)
    _write_idx(d / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", np.arange(n_test, dtype=np.uint8) % 10)


def test_fashion_loader_on_small_idx_files(tmp_path):
    _fake_fashion(tmp_path)
    ds = load_fashion_mnist(tmp_path, val_size=50)
    assert (
        ds.train.x.shape == (150, 1, 28, 28)
        and ds.val.x.shape == (50, 1, 28, 28)
        and ds.test.x.shape == (50, 1, 28, 28)
    )
    assert ds.train.x.dtype == np.float32 and ds.train.y.max() <= 9 and ds.train.y.min() >= 0


def test_fashion_missing_dir_and_malformed_file(tmp_path):
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte.gz.*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")
    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x09abc"))
    with pytest.raises(DataError, match="malformed idx"):
        load_fashion_mnist(tmp_path, val_size=50)


def test_real_fashion_mnist_from_debian():
    need(
        "Debian's dataset-fashion-mnist",
        (FASHION_DEFAULT_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
        "apt-get install dataset-fashion-mnist (make data)",
    )
    ds = load_dataset("fashion-mnist")
    assert len(ds.train) + len(ds.val) == 60000 and len(ds.test) == 10000
    assert ds.input_shape == (1, 28, 28) and set(np.unique(ds.test.y)) == set(range(10))


def _fake_cifar(d):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": list(range(10)) * 2}
        (d / name).write_bytes(pickle.dumps(batch))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/sne-pwned",))


def test_cifar_reads_batches_and_refuses_code(tmp_path):
    _fake_cifar(tmp_path)
    ds = load_cifar10(tmp_path, val_size=20)
    assert ds.train.x.shape == (80, 3, 32, 32) and ds.test.x.shape == (20, 3, 32, 32)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}))
    with pytest.raises(DataError, match="refusing to load global"):
        load_cifar10(tmp_path, val_size=20)
    assert not os.path.exists("/tmp/sne-pwned")
    with pytest.raises(DataError, match="needs --data-dir"):
        load_cifar10(None)


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")


def test_encoder_rate_and_determinism():
    x = np.linspace(0, 1, 33)[None, :]
    for steps in (1, 8, 16, 25):
        s = encode_regular(x, steps)
        assert s.shape == (1, steps, 33) and s.dtype == bool
        assert np.array_equal(s.sum(axis=1)[0], np.floor(steps * x[0]).astype(int))  # rate = x up to 1/T
        assert np.array_equal(s, encode_regular(x, steps))
    assert np.array_equal(encode_regular(x.astype(np.float32), 16), encode_regular(x.astype(np.float64), 16))


def test_encoder_spikes_are_evenly_spaced():
    s = encode_regular(np.array([[0.25, 0.5]]), 8)[0]
    assert np.flatnonzero(s[:, 0]).tolist() == [3, 7] and np.flatnonzero(s[:, 1]).tolist() == [1, 3, 5, 7]


def test_centred_code_rounds_and_lets_faint_pixels_spike():
    """regular-if-centred: round(T x) spikes (halves up), evenly spaced, the first step carrying
    every pixel of 0.5 or more; regular-if is the phase-0 code; unknown names are refused."""
    from sne_deploy.simulators.encoding import ENCODINGS, encode_spikes

    x = np.linspace(0, 1, 41)[None, :]
    for steps in (1, 4, 8):
        s = encode_spikes(x, steps, "regular-if-centred")
        assert np.array_equal(s.sum(axis=1)[0], np.floor(steps * x[0] + 0.5).astype(int))
        assert np.array_equal(encode_spikes(x, steps, "regular-if"), encode_regular(x, steps))
    s = encode_spikes(np.array([[0.1, 0.125, 0.5, 0.75]]), 4, "regular-if-centred")[0]
    assert s.sum(0).tolist() == [0, 1, 2, 3] and s[0].tolist() == [False, False, True, True]
    assert np.flatnonzero(encode_spikes(np.array([[0.25]]), 8, "regular-if-centred")[0, :, 0]).tolist() == [1, 5]
    assert set(ENCODINGS) == {"regular-if", "regular-if-centred"}  # the rate codes (graded is no rate code)
    with pytest.raises(ValueError, match="unknown input encoding 'poisson'"):
        encode_spikes(x, 4, "poisson")
    with pytest.raises(ValueError, match="phase"):
        encode_regular(x, 4, phase=1.0)


def test_graded_code_sends_each_pixel_once_as_its_payload():
    """graded: round(15 x) (halves to even) at the first step, nothing after, as int64; a pixel
    of 0 sends nothing, so the messages are the non-zero payloads."""
    from sne_deploy.simulators.encoding import GRADED_LEVELS, encode_spikes, graded_levels

    x = np.array([[0.0, 0.02, 0.04, 0.5, 0.7, 1.0]])
    for steps in (1, 4, 8):
        s = encode_spikes(x, steps, "graded")
        assert s.shape == (1, steps, 6) and s.dtype == np.int64
        assert s[0, 0].tolist() == [0, 0, 1, 8, 10, 15] and not s[:, 1:].any()
    assert graded_levels("graded") == GRADED_LEVELS == 15
    assert graded_levels("regular-if-centred") == 0 and graded_levels("events") == 0


@pytest.mark.parametrize("code", ["regular-if", "graded"])
@pytest.mark.parametrize("bad", [np.array([[1.5]]), np.array([[-0.1]]), np.array([[np.nan]]), np.zeros(3)])
def test_encoder_rejects_bad_input(bad, code):
    from sne_deploy.simulators.encoding import encode_spikes

    with pytest.raises(ValueError):
        encode_spikes(bad, 4, code)
