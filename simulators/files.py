"""Writing files so that a failure never leaves half of one, checksums, and plain JSON values.

Every file or folder the toolkit writes for a user goes through :func:`atomic_file` or
:func:`atomic_dir`: the content is written to a temporary sibling and renamed into place, so the
destination is either the old content or the complete new one. (Lives in ``simulators``, the
package every other one depends on; the Lava worker side needs none of it.)
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import InputError, SneError


class WriteError(SneError, OSError):
    """A file or folder could not be written (disk full, read-only, no permission); the message
    names the user's destination, never the temporary sibling."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _disk_full(path: Path, e: BaseException) -> bool:
    """Whether a writer's error is a full disk. OSError says so (ENOSPC, EDQUOT; HDF5 spells
    "errno = 28" out in its text); torch.save and h5py raise RuntimeError with texts such as
    "basic_ios::clear: iostream error": those count when the disk is (nearly) full. Called before
    the half-written file is removed, so the disk is still as full as the writer found it."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "errno = 28" in str(e) or "No space left" in str(e):
        return True
    if isinstance(e, OSError) and e.errno is not None:
        return False  # some other OSError (permissions, read-only): said as it is
    try:
        return shutil.disk_usage(path.parent).free < (16 << 20)
    except OSError:
        return False


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Write errors become one :class:`WriteError` line that names the user's path: a full disk
    (whichever library noticed it), a read-only folder, a missing permission."""
    try:
        yield
    except WriteError:
        raise
    except (OSError, RuntimeError) as e:  # translated where it happens, before any clean-up
        if _disk_full(path, e):
            raise WriteError(f"no space left on the device to write {path}") from None
        if isinstance(e, RuntimeError):
            raise  # not a write failure: a bug keeps its traceback
        if e.errno == errno.EROFS:
            raise WriteError(f"cannot write {path}: it is on a read-only file system") from None
        if e.errno == errno.EBUSY:
            raise WriteError(
                f"cannot replace {path}: it is a mount point or in use (the report folder is swapped in whole; "
                "name a folder inside it instead)"
            ) from None
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from None


@contextmanager
def atomic_file(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (with the mode the
    user's umask gives, not mkstemp's 0600), on failure it is removed. ``suffix`` keeps writers
    that append an extension (``np.savez``) from writing elsewhere."""
    path = Path(path)
    with _naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=suffix, dir=path.parent)
        os.close(fd)
    try:
        with _naming(path):
            yield Path(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it takes the place of ``path``
    (an existing folder there is swapped out and removed; callers decide whether it may be), on
    failure it is removed. The folder gets the user's umask mode, not mkdtemp's 0700."""
    path = Path(path)
    with _naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        with _naming(path):
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
                os.rmdir(old)
                os.rename(path, old)
                os.rename(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock for writing ``path``; a second writer gets :class:`WriteError` at once
    instead of mixing its files in. The lock lives on a hidden sibling file, removed afterwards;
    the kernel drops it if the process dies, so a crash never blocks later runs."""
    import fcntl

    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    with _naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WriteError(
                f"{path} is being written by another sne-deploy run; try again when it has finished"
            ) from None
        try:
            yield
        finally:
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_plain(x: Any) -> Any:
    """Numpy scalars and arrays to plain Python values, recursively (for JSON and checkpoints)."""
    if isinstance(x, dict):
        return {str(k): to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_plain(x.tolist())
    if isinstance(x, np.generic):
        return x.item()
    return x


def read_npz(path: Path, required: str, what: str) -> dict:
    """The arrays of an .npz (no pickles), with a one-line error when it is missing or foreign."""
    import zipfile

    if path.is_dir():
        raise InputError(f"{path} is a folder, not an .npz file")
    if not path.is_file():
        raise FileNotFoundError(f"inputs file not found: {path}")
    if not zipfile.is_zipfile(path):  # .npy, pickles, text: never handed to np.load
        raise InputError(f"{path} is not an .npz archive (write one with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "allow_pickle" in str(e):  # numpy refuses object arrays without pickle, as it should
            raise InputError(
                f"{path} holds arrays of Python objects (pickles), which are never loaded; save plain numeric arrays"
            ) from None
        raise InputError(f"cannot read {path} as .npz: it is damaged or truncated (ValueError)") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:  # damaged or truncated archive
        raise InputError(f"cannot read {path} as .npz: it is damaged or truncated ({type(e).__name__})") from None
    if required not in arrays:
        raise InputError(f"{path} has no array '{required}' ({what})")
    return arrays
