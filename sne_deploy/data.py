"""Datasets, offline only: scikit-learn's digits (embedded default), Fashion-MNIST (idx files,
Debian's ``dataset-fashion-mnist``) and CIFAR-10 (python pickle batches, read with an unpickler
that can build nothing but numpy arrays). Images come back as float32 in [0, 1], shape
(N, C, H, W), labels as int64; the validation split is stratified and fixed by ``seed``.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np

from sne_deploy.simulators.errors import SneError

DATASETS = ("digits", "fashion-mnist", "cifar10")
FASHION_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"


class DataError(SneError, ValueError):
    """A dataset is missing or malformed; the message names the files expected and how to get them."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset. ``x`` is what the teacher and the gate see: images, or for event
    data each sample's events summed over time (:func:`~sne_deploy.simulators.encoding.events_frame`);
    ``events`` holds event data's counts per bin (N, T, n_in), which the students take as their
    input spikes (the encoder does not run)."""

    x: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    y: np.ndarray  # (N,) int64
    events: Optional[np.ndarray] = None  # (N, T, C*H*W) counts per bin, for event data

    def __len__(self) -> int:
        return len(self.y)

    def flat(self) -> np.ndarray:
        """The teacher's and the gate's view, one row per sample: (N, C*H*W)."""
        return self.x.reshape(len(self.x), -1)

    def inputs(self) -> np.ndarray:
        """What the deployed ensemble is fed, one row per sample: the intensities (N, n_in) that
        the encoder turns into spikes, or event data's bins flattened time-major (N, T * n_in)."""
        return self.flat() if self.events is None else self.events.reshape(len(self.events), -1)

    def take(self, idx: Any) -> "Split":
        """The samples ``idx`` (an index array or a slice)."""
        return Split(self.x[idx], self.y[idx], None if self.events is None else self.events[idx])


@dataclass(frozen=True)
class Normalisation:
    """Raw values to [0, 1]: ``clip((x - low) / (high - low), 0, 1)``, for data of ``dtype``."""

    dtype: str
    low: float
    high: float

    def apply(self, x: np.ndarray) -> np.ndarray:
        span = self.high - self.low
        out = (np.asarray(x, dtype=np.float64) - self.low) / (span if span > 0 else 1.0)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, d: Any) -> "Normalisation":
        return cls(str(d["dtype"]), float(d["low"]), float(d["high"]))

    @property
    def identity(self) -> bool:
        return self.low == 0.0 and self.high == 1.0


IDENTITY = Normalisation("float32", 0.0, 1.0)


@dataclass(frozen=True)
class Dataset:
    name: str  # a built-in dataset's name, or the user's file or folder
    train: Split
    val: Split
    test: Split
    n_classes: int
    normalisation: Normalisation = IDENTITY  # how the raw values became [0, 1] (sne_deploy.own_data)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def event_bins(self) -> Optional[int]:
        """T for event data (counts per bin, no encoder), None for images."""
        return None if self.train.events is None else int(self.train.events.shape[1])

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split '{name}' (train, val, test)")
        return getattr(self, name)


def _stratified(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, events: Optional[np.ndarray] = None
) -> tuple[Split, Split]:
    """Two stratified parts (the second ``fraction`` of the samples), fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    ia, ib = train_test_split(np.arange(len(y)), test_size=fraction, stratify=y, random_state=seed)
    whole = Split(x, y, events)
    return whole.take(ia), whole.take(ib)


def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1797 8x8 digits: 60 / 20 / 20 stratified train / val / test, fixed by seed."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    rest, test = _stratified(x, y, 0.2, seed)
    train, val = _stratified(rest.x, rest.y, 0.25, seed)
    return Dataset("digits", train, val, test, 10)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        zero, dtype_code, dims = struct.unpack(">HBB", raw[:4])
        if zero != 0 or dtype_code != 0x08 or dims != ndim:
            raise ValueError("bad idx header")
        shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
        data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
        if data.size != int(np.prod(shape)):
            raise ValueError(f"expected {int(np.prod(shape))} values, found {data.size}")
        return data.reshape(shape)
    except (OSError, EOFError, ValueError, struct.error) as e:
        raise DataError(f"malformed idx file {path}: {e}") from None


def load_fashion_mnist(data_dir: Optional[Union[str, Path]] = None, seed: int = 0, val_size: int = 5000) -> Dataset:
    d = Path(data_dir) if data_dir else FASHION_DEFAULT_DIR
    missing = [n for n in FASHION_FILES.values() if not (d / n).is_file()]
    if missing:
        raise DataError(
            f"Fashion-MNIST not found in {d}: missing {', '.join(missing)}; "
            "install Debian's package (apt-get install dataset-fashion-mnist) or pass --data-dir with the idx .gz files"
        )
    tx, ty = _read_idx(d / FASHION_FILES["train_x"], 3), _read_idx(d / FASHION_FILES["train_y"], 1)
    sx, sy = _read_idx(d / FASHION_FILES["test_x"], 3), _read_idx(d / FASHION_FILES["test_y"], 1)
    if len(tx) != len(ty) or len(sx) != len(sy):
        raise DataError(f"Fashion-MNIST in {d}: image and label counts differ")
    to_x = lambda a: (a.astype(np.float32) / 255.0)[:, None, :, :]  # noqa: E731
    train, val = _stratified(to_x(tx), ty.astype(np.int64), val_size / len(ty), seed)
    return Dataset("fashion-mnist", train, val, Split(to_x(sx), sy.astype(np.int64)), 10)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes and numpy arrays; any other global (os.system, ...) is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    MAX_ELEMENTS = 1 << 28  # a CIFAR-10 batch holds 30.7 M bytes; nothing real asks for more

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        found = super().find_class(module, name)
        if name != "_reconstruct":
            return found

        def reconstruct(subtype, shape, dtype):
            # the pickle names the shape before any data: refuse absurd sizes before allocating
            if int(np.prod(np.asarray(shape, dtype=np.float64))) > self.MAX_ELEMENTS:
                raise pickle.UnpicklingError(f"an array of shape {tuple(shape)} is larger than any CIFAR-10 batch")
            return found(subtype, shape, dtype)

        return reconstruct


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError, OSError, MemoryError) as e:
        raise DataError(f"malformed CIFAR-10 batch {path}: {e}") from None
    if len(data) != len(labels):
        raise DataError(f"malformed CIFAR-10 batch {path}: {len(data)} images but {len(labels)} labels")
    return data, labels


def load_cifar10(data_dir: Optional[Union[str, Path]] = None, seed: int = 0, val_size: int = 5000) -> Dataset:
    if data_dir is None:
        raise DataError(
            "CIFAR-10 needs --data-dir: the folder 'cifar-10-batches-py' with data_batch_1..5 and test_batch"
        )
    d = Path(data_dir)
    if (d / "cifar-10-batches-py").is_dir():
        d = d / "cifar-10-batches-py"
    missing = [n for n in CIFAR_TRAIN + [CIFAR_TEST] if not (d / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 not found in {d}: missing {', '.join(missing)} (the python version of CIFAR-10)")
    parts = [_read_cifar_batch(d / n) for n in CIFAR_TRAIN]
    tx, ty = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    sx, sy = _read_cifar_batch(d / CIFAR_TEST)
    to_x = lambda a: a.astype(np.float32) / 255.0  # noqa: E731
    train, val = _stratified(to_x(tx), ty, val_size / len(ty), seed)
    return Dataset("cifar10", train, val, Split(to_x(sx), sy), 10)


def load_dataset(name: str, data_dir: Optional[Union[str, Path]] = None, seed: int = 0) -> Dataset:
    """A built-in dataset by name, or the user's own: an ``.npz`` file or an image folder
    (:mod:`~sne_deploy.own_data`)."""
    from .own_data import IN_MEMORY, is_own_data, load_image_folder, load_npz_dataset

    if name.startswith(IN_MEMORY):
        raise DataError(
            f"the dataset '{name[len(IN_MEMORY) :]}' was handed over in Python and has no file to reload: "
            "pass it again (sne_deploy.export(model, target, out, data=...))"
        )
    if name not in DATASETS and is_own_data(name):
        p = Path(name)
        return load_image_folder(p, seed) if p.is_dir() else load_npz_dataset(p, seed)
    if name == "digits":
        return load_digits(seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir, seed)
    if name == "cifar10":
        return load_cifar10(data_dir, seed)
    raise DataError(
        f"unknown dataset '{name}' (choose from {', '.join(DATASETS)}, or give an .npz file or a folder of class folders)"
    )


def minibatches(n: int, size: int, rng: np.random.Generator, shuffle: bool = True) -> Iterator[np.ndarray]:
    """Index arrays of ``size`` samples (the last may be shorter), in a seeded random order."""
    idx = rng.permutation(n) if shuffle else np.arange(n)
    for i in range(0, n, size):
        yield idx[i : i + size]
