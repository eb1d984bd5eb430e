"""Records as plain data: the one serialisation every record of a network shares.

Each record (:class:`~sne_deploy.simulators.neuron.LIFParams`, ``LIFFixedParams``, ``Dynamics``,
:class:`~sne_deploy.simulators.linear_maps.ConvGeometry`, :class:`~sne_deploy.simulators.network.FixedLayer`,
``Layer``, ``Network``) has ``to_dict()`` (this module's :func:`to_dict`: field name -> value,
nested records as nested dicts, ``None`` fields left out) and a ``from_dict`` classmethod that
restores the exact types (float vs per-neuron array, int64 vs float64). Stores that hold only flat
name -> array maps use :func:`flatten` / :func:`unflatten` (dotted keys): the Lava worker's npz
(no pickle crosses the process boundary) and NIR node metadata (``nir.write`` stores one array per
key). :func:`same` is the equality the bundle's round-trip check asks for: every field, every
array by dtype and value. Modelled on ``nir``'s generic ``dict`` round trip of its primitives.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

SEP = "."


def to_dict(record: Any) -> dict[str, Any]:
    """A dataclass or NamedTuple as {field: value}; nested records become dicts, a tuple of
    records a list of dicts, ``None`` fields are left out (``from_dict`` restores the default)."""
    if dataclasses.is_dataclass(record):
        items = ((f.name, getattr(record, f.name)) for f in dataclasses.fields(record))
    else:
        items = record._asdict().items()
    return {k: _plain(v) for k, v in items if v is not None}


def _is_record(x: Any) -> bool:
    return (dataclasses.is_dataclass(x) and not isinstance(x, type)) or (isinstance(x, tuple) and hasattr(x, "_fields"))


def _plain(v: Any) -> Any:
    if _is_record(v):
        return to_dict(v)
    if isinstance(v, (tuple, list)) and v and all(_is_record(x) for x in v):
        return [to_dict(x) for x in v]
    return v


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}, "l": [{"x": 2}]} -> {"a.b": 1, "l.0.x": 2}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, Mapping):
            out.update(flatten(v, key + SEP))
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            for i, x in enumerate(v):
                out.update(flatten(x, f"{key}{SEP}{i}{SEP}"))
        else:
            out[key] = v
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten`: a level whose keys are 0..n-1 becomes a list."""
    root: dict[str, Any] = {}
    for key, v in flat.items():
        *parents, last = key.split(SEP)
        node = root
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = v
    return _lists(root)


def _lists(d: dict[str, Any]) -> Any:
    d = {k: _lists(v) if isinstance(v, dict) else v for k, v in d.items()}
    if d and all(k.isdigit() for k in d) and sorted(int(k) for k in d) == list(range(len(d))):
        return [d[str(i)] for i in range(len(d))]
    return d


def same(a: Any, b: Any) -> bool:
    """Equal plain data (or records): the same keys, arrays of the same dtype, shape and values
    (a Python float is a float64, an int an int64)."""
    a = to_dict(a) if _is_record(a) else a
    b = to_dict(b) if _is_record(b) else b
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (
            isinstance(a, Mapping)
            and isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(same(a[k], b[k]) for k in a)
        )
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    x, y = np.asarray(a), np.asarray(b)
    same_type = x.dtype == y.dtype or x.dtype.kind == y.dtype.kind == "U"
    return same_type and x.shape == y.shape and bool(np.array_equal(x, y))


# --- from_dict: each record names a coercion per field; stores hand back 0-d arrays, bytes and numpy scalars ---

R = TypeVar("R")


def record(cls: type[R], d: Mapping[str, Any], **coerce: Callable[[Any], Any]) -> R:
    """``cls`` from the plain form ``d``: each field ``d`` holds through its coercion; a field it
    does not hold (``to_dict`` leaves out ``None``) takes the record's default."""
    return cls(**{k: f(d[k]) for k, f in coerce.items() if k in d})


def _number_or_array(dtype: Any) -> Callable[[Any], Any]:
    def coerce(x: Any) -> Any:
        a = np.asarray(x, dtype=dtype)
        return a.item() if a.ndim == 0 else a  # a population-wide value stays a plain number

    return coerce


def _array(dtype: Any) -> Callable[[Any], np.ndarray]:
    return lambda x: np.asarray(x, dtype=dtype)


NUMBER = _number_or_array(np.float64)  # a float, or one per neuron
INTEGER = _number_or_array(np.int64)  # an int, or one per neuron
FLOATS = _array(np.float64)
INTS = _array(np.int64)


def ints(x: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(x).ravel())


def text(x: Any) -> str:
    x = x.item() if isinstance(x, np.ndarray) else x
    return x.decode() if isinstance(x, bytes) else str(x)
