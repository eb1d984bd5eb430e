"""The user's own images: an ``.npz`` of arrays, a folder of class-named image folders
(torchvision's ``ImageFolder`` layout, read with Pillow), or any ``torch.utils.data.Dataset`` of
(image, label) from the Python API.

Every source ends as the toolkit's :class:`~sne_deploy.data.Dataset`: float32 images (N, C, H, W)
in [0, 1], int64 labels 0..K-1, a train / val / test split. How the raw values were brought to
[0, 1] is a :class:`Normalisation` (uint8: /255; floats already in [0, 1]: as they are; anything
else: the training split's min and max), recorded in the checkpoint's config (the data path) and
in the bundle's manifest, so ``simulate --inputs`` applies the same rule to raw inputs.

Event data (spike counts per time bin, as tonic's ``ToFrame`` makes them) come as x arrays of
shape (N, T, C, H, W), or (N, T, H, W) / (N, T, features) with ``layout="events"`` (in the
``.npz`` a string array ``layout``, in :func:`from_torch_dataset` the argument). The students
take the counts as their input spikes, bin by bin, with no encoder; the teacher and the gate see
each sample's events summed over time, over the training set's 99th percentile of those sums and
clipped to [0, 1] (:func:`~sne_deploy.simulators.encoding.events_frame`), recorded as the
:class:`Normalisation` ``events`` with that scale as ``high``.

Each malformed input gets one line naming the file and what is wrong (shapes, label range, NaN,
an empty class, train and test shapes that differ); nothing here writes anything.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from sne_deploy.simulators.encoding import events_frame
from sne_deploy.simulators.result import MAX_EVENT_COUNT

from .data import DataError, Dataset, Normalisation, Split, _stratified

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")  # x_val / y_val optional
VAL_FRACTION = 0.1  # of the training split, stratified, when no validation split is given
IN_MEMORY = "memory:"  # the name of a dataset handed over in Python (nothing to reload by name)
LAYOUTS = ("images", "events")
EVENT_SCALE_PERCENTILE = 99.0  # of the training set's non-zero per-input event totals: the frame's 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def is_own_data(name: str) -> bool:
    """A ``--data`` value that names a file or folder rather than a built-in dataset."""
    return name.endswith(".npz") or "/" in name or Path(name).is_dir()


def normalisation_for(x: np.ndarray, where: str) -> Normalisation:
    """The rule that brings the training images ``x`` to [0, 1]."""
    if x.dtype == np.uint8:
        return Normalisation("uint8", 0.0, 255.0)
    if x.dtype == np.bool_:
        return Normalisation("bool", 0.0, 1.0)
    lo, hi = float(x.min()), float(x.max())
    if np.issubdtype(x.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return Normalisation(str(x.dtype), 0.0, 1.0)
    if hi == lo:
        raise DataError(f"{where}: every training value is {lo:g}; there is nothing to learn from")
    return Normalisation(str(x.dtype), lo, hi)


def _images(x: Any, where: str) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) of real numbers -> (N, C, H, W), unconverted."""
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
        raise DataError(f"{where} must hold real numbers (images), got an array of dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise DataError(f"{where} must be images of shape (N, H, W) or (N, C, H, W), got shape {a.shape}")
    if a.shape[0] == 0:
        raise DataError(f"{where} holds no images (N = 0)")
    if a.shape[-1] in (1, 3, 4) and a.shape[1] > 4:
        raise DataError(
            f"{where} has shape {a.shape}, which looks channels-last (N, H, W, C): "
            "store it as (N, C, H, W), e.g. x.transpose(0, 3, 1, 2)"
        )
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise DataError(f"{where} contains NaN or inf")
    return a


def _event_counts(x: Any, where: str) -> np.ndarray:
    """(N, T, C, H, W), (N, T, H, W) or (N, T, features) of whole counts >= 0 -> (N, T, C, H, W)."""
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_) or np.iscomplexobj(a):
        raise DataError(f"{where} must hold event counts (numbers), got an array of dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, :, None, None, :]
    elif a.ndim == 4:
        a = a[:, :, None]
    if a.ndim != 5:
        raise DataError(
            f"{where} must be event frames of shape (N, T, C, H, W), (N, T, H, W) or (N, T, features), got {a.shape}"
        )
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{where} holds no samples or no time bins (shape {a.shape})")
    if a.dtype != np.bool_:
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            raise DataError(f"{where} contains NaN or inf")
        if a.min() < 0 or np.any(a != np.round(a)):
            raise DataError(f"{where} must hold whole event counts >= 0 per bin; found negatives or fractions")
        if a.max() > MAX_EVENT_COUNT:
            raise DataError(f"{where} holds a count of {a.max():.6g} in one bin; at most {MAX_EVENT_COUNT} are taken")
    return a.astype(np.uint8 if a.max() <= 255 else np.int32)


def _labels(y: Any, n: int, where: str) -> np.ndarray:
    a = np.asarray(y)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DataError(f"{where} must be integer classes 0..K-1, got an array of dtype {a.dtype}")
    if a.ndim != 1 or len(a) != n:
        raise DataError(f"{where} must have shape ({n},), one label per image, got {a.shape}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a) & (a == np.round(a))):
        raise DataError(f"{where} must be whole numbers (classes), got fractions, NaN or inf")
    if a.min() < 0:
        raise DataError(f"{where} holds the class {a.min():g}: classes are 0..K-1")
    return a.astype(np.int64)


def build_dataset(
    name: str,
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    val: Optional[tuple[Any, Any]] = None,
    seed: int = 0,
    where: str = "",
    layout: Optional[str] = None,
) -> Dataset:
    """Validate and normalise raw (images, labels) splits into a :class:`Dataset`; without ``val``,
    a stratified tenth of the training split (fixed by ``seed``) validates. ``layout`` is
    ``images`` or ``events`` (None: events when x_train is 5-D)."""
    pre = f"{where}: " if where else ""
    if layout is not None and layout not in LAYOUTS:
        raise DataError(f"{pre}layout '{layout}' is none of {', '.join(LAYOUTS)}")
    events = layout == "events" or (layout is None and np.ndim(train[0]) == 5)
    read = _event_counts if events else _images
    raw = {"train": read(train[0], f"{pre}x_train"), "test": read(test[0], f"{pre}x_test")}
    ys = {"train": _labels(train[1], len(raw["train"]), f"{pre}y_train")}
    ys["test"] = _labels(test[1], len(raw["test"]), f"{pre}y_test")
    if val is not None:
        raw["val"] = read(val[0], f"{pre}x_val")
        ys["val"] = _labels(val[1], len(raw["val"]), f"{pre}y_val")
    shape = raw["train"].shape[1:]
    what = "event frames" if events else "images"
    for split, x in raw.items():
        if x.shape[1:] != shape:
            raise DataError(f"{pre}x_{split} {what} have shape {x.shape[1:]} but x_train's have {shape}")
    k = int(ys["train"].max()) + 1
    if k < 2:
        raise DataError(f"{pre}y_train holds one class only; a classifier needs at least two")
    counts = np.bincount(ys["train"], minlength=k)
    if (counts == 0).any():
        empty = int(np.flatnonzero(counts == 0)[0])
        raise DataError(f"{pre}class {empty} has no training images (classes must be 0..{k - 1}, each present)")
    for split in ("test", "val"):
        if split in ys and ys[split].max() >= k:
            raise DataError(f"{pre}y_{split} holds class {ys[split].max()}, which y_train never has (0..{k - 1})")
    if events:
        norm, splits = _event_splits(raw, ys, pre)
    else:
        norm = normalisation_for(raw["train"], f"{pre}x_train")
        splits = {s: Split(norm.apply(a), ys[s]) for s, a in raw.items()}
    train_split = splits["train"]
    if val is None:
        if counts.min() < 2:
            raise DataError(f"{pre}class {int(counts.argmin())} has one training image: give x_val/y_val")
        train_split, val_split = _stratified(train_split.x, train_split.y, VAL_FRACTION, seed, train_split.events)
    else:
        val_split = splits["val"]
    return Dataset(name, train_split, val_split, splits["test"], k, norm)


def _event_splits(raw: dict[str, np.ndarray], ys: dict[str, np.ndarray], pre: str) -> tuple[Normalisation, dict]:
    """Event data's splits: the counts (N, T, n_in) for the students and their frames for the
    teacher and the gate, all scaled by the training split's :data:`EVENT_SCALE_PERCENTILE`."""
    n, steps, c, h, w = raw["train"].shape
    totals = raw["train"].sum(axis=1, dtype=np.int64)
    if not totals.any():
        raise DataError(f"{pre}x_train holds no events at all; there is nothing to learn from")
    scale = float(np.percentile(totals[totals > 0], EVENT_SCALE_PERCENTILE))
    splits = {}
    for s, a in raw.items():
        events = a.reshape(len(a), steps, c * h * w)
        frame = events_frame(events.reshape(len(a), -1), steps, scale).reshape(len(a), c, h, w)
        splits[s] = Split(frame, ys[s], events)
    return Normalisation("events", 0.0, scale), splits


def load_npz_dataset(path: Path, seed: int = 0) -> Dataset:
    """An ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test`` and optionally
    ``x_val``, ``y_val`` and ``layout`` ("images" or "events"; object arrays refused: nothing is
    unpickled)."""
    if not path.is_file():
        raise DataError(f"--data {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(f"{path}: holds object arrays; store plain numeric arrays") from None
        raise DataError(f"{path}: not a readable .npz ({e})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz ({e})") from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing {', '.join(missing)} (an .npz dataset holds x_train, y_train, x_test, y_test "
            "and optionally x_val, y_val)"
        )
    if ("x_val" in arrays) != ("y_val" in arrays):
        raise DataError(f"{path}: x_val and y_val come together (one of them is missing)")
    val = (arrays["x_val"], arrays["y_val"]) if "x_val" in arrays else None
    layout = str(arrays["layout"]) if "layout" in arrays else None
    return build_dataset(
        str(path),
        (arrays["x_train"], arrays["y_train"]),
        (arrays["x_test"], arrays["y_test"]),
        val,
        seed,
        str(path),
        layout,
    )


def _class_folders(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def _read_folder(root: Path, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every image of ``root/<class>/`` as uint8 (N, C, H, W), grey when every image is."""
    from PIL import Image, UnidentifiedImageError

    files: list[tuple[Path, int]] = []
    for label, c in enumerate(classes):
        d = root / c
        found = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if d.is_dir() else []
        if not found:
            raise DataError(f"{d}: the class '{c}' has no images here ({', '.join(IMAGE_SUFFIXES)})")
        files += [(f, label) for f in found]
    images: list[tuple[Path, Any]] = []
    for f, _ in files:
        try:
            with Image.open(f) as opened:
                grey_mode = opened.mode in ("L", "1", "I;16", "I")
                images.append((f, opened.convert("L") if grey_mode else opened.convert("RGB")))
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{f}: not a readable image ({e})") from None
    grey = all(im.mode == "L" for _, im in images)
    size = images[0][1].size
    arrays = []
    for f, im in images:
        if im.size != size:
            raise DataError(f"{f}: {im.size[0]}x{im.size[1]} pixels, the others {size[0]}x{size[1]}: resize them alike")
        a = np.asarray(im if grey else im.convert("RGB"), dtype=np.uint8)
        arrays.append(a[None] if grey else a.transpose(2, 0, 1))
    return np.stack(arrays), np.array([label for _, label in files], np.int64)


def load_image_folder(root: Path, seed: int = 0) -> Dataset:
    """``root/<class>/*.png`` (stratified 60 / 20 / 20 train / val / test, fixed by ``seed``) or
    ``root/train/<class>/…`` with ``root/test/<class>/…`` (and optionally ``root/val``)."""
    if not root.is_dir():
        raise DataError(f"--data {root}: no such folder")
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = [d.name for d in _class_folders(root / "train")]
        if len(classes) < 2:
            raise DataError(f"{root / 'train'}: needs a folder per class (at least two)")
        tr = _read_folder(root / "train", classes)
        te = _read_folder(root / "test", [c for c in classes if (root / "test" / c).is_dir()] or classes)
        extra = sorted({d.name for d in _class_folders(root / "test")} - set(classes))
        if extra:
            raise DataError(f"{root / 'test'}: class folder '{extra[0]}' is not among the training classes")
        va = _read_folder(root / "val", classes) if (root / "val").is_dir() else None
        return build_dataset(str(root), tr, te, va, seed, str(root))
    classes = [d.name for d in _class_folders(root)]
    if len(classes) < 2:
        raise DataError(f"{root}: needs a folder per class (at least two), or train/ and test/ folders of them")
    x, y = _read_folder(root, classes)
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < 5:
        raise DataError(f"{root / classes[int(counts.argmin())]}: {counts.min()} images; each class needs at least 5")
    norm = normalisation_for(x, str(root))
    rest, test = _stratified(norm.apply(x), y, 0.2, seed)
    train, val = _stratified(rest.x, rest.y, 0.25, seed)
    return Dataset(str(root), train, val, test, len(classes), norm)


def from_torch_dataset(
    train: Any, test: Any, val: Any = None, name: str = "torch-dataset", seed: int = 0, layout: Optional[str] = None
) -> Dataset:
    """Any ``torch.utils.data.Dataset`` of (image, label) pairs (a tensor or array image of shape
    (C, H, W) or (H, W), an int label), for :func:`sne_deploy.fit`; with ``layout="events"``,
    (event frames (T, C, H, W), (T, H, W) or (T, features), label) pairs, as tonic's datasets
    with a ``ToFrame`` transform give them."""

    def arrays(ds: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for i in range(len(ds)):
            item = ds[i]
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise DataError(f"{name} ({split}): item {i} is not an (image, label) pair")
            x, y = item
            xs.append(np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x))
            ys.append(int(y))
        if not xs:
            raise DataError(f"{name} ({split}): holds no samples")
        return np.stack(xs), np.asarray(ys)

    name = name if name.startswith(IN_MEMORY) else IN_MEMORY + name
    return build_dataset(
        name,
        arrays(train, "train"),
        arrays(test, "test"),
        arrays(val, "val") if val is not None else None,
        seed,
        layout=layout,
    )


@dataclass(frozen=True)
class DataShape:
    """What a user's dataset holds, read without loading it: the image (or event frame) shape
    (C, H, W) and, for event data, the number of time bins."""

    image: tuple[int, ...]
    event_bins: Optional[int] = None


def peek_data_shape(name: str) -> Optional[DataShape]:
    """The :class:`DataShape` of a user dataset (for the per-size defaults and event data's T);
    None when it cannot be told (the loader then says why)."""
    p = Path(name)
    try:
        if p.is_file():
            with zipfile.ZipFile(p) as zf:
                shape = _npy_shape(zf, "x_train.npy")
                layout = None
                if "layout.npy" in zf.namelist():
                    with zf.open("layout.npy") as member:
                        layout = str(np.lib.format.read_array(member, allow_pickle=False))
            if layout == "events" or (layout is None and len(shape) == 5):
                frame = {3: (1, 1, shape[-1]), 4: (1, *shape[2:]), 5: tuple(shape[2:])}.get(len(shape))
                return DataShape(frame, int(shape[1])) if frame else None
            return DataShape((1, *shape[1:]) if len(shape) == 3 else tuple(shape[1:]))
        if p.is_dir():
            from PIL import Image

            root = p / "train" if (p / "train").is_dir() else p
            for d in _class_folders(root):
                for file in sorted(d.iterdir()):
                    if file.suffix.lower() in IMAGE_SUFFIXES:
                        with Image.open(file) as im:
                            return DataShape((1 if im.mode in ("L", "1", "I;16", "I") else 3, im.size[1], im.size[0]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return None


def _npy_shape(zf: zipfile.ZipFile, member_name: str) -> tuple[int, ...]:
    with zf.open(member_name) as member:
        major, _ = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        return tuple(read_header(member)[0])


def peek_image_shape(name: str) -> Optional[tuple[int, ...]]:
    """(C, H, W) of a user dataset's images (event data: its frames) without reading all of it."""
    shape = peek_data_shape(name)
    return shape.image if shape else None


def defaults_key(shape: Optional[tuple[int, ...]]) -> str:
    """Which built-in dataset's defaults a user dataset of images ``shape`` (C, H, W) takes: small
    images (at most 16x16) those of digits (MLP teacher), grey ones those of Fashion-MNIST (CNN
    teacher), colour ones those of CIFAR-10."""
    if shape is None or len(shape) != 3 or shape[1] * shape[2] <= 256:
        return "digits"
    return "fashion-mnist" if shape[0] == 1 else "cifar10"
