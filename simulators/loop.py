"""The simulation loop, written once: a chain of LIF layers run over N samples at once.

It is delay-free (layer l at step t sees layer l-1's spikes of step t) and runs the neuron
contract of :mod:`sne_deploy.simulators.neuron` step by step. A recurrent layer also sees its own spikes of
step t-1 through its recurrent synapses (none before the first step of a sample). The array library is a parameter
(:class:`ArrayLib`), so the numpy reference backend (:data:`NUMPY`) and the PyTorch reference in
``sne_deploy`` (which passes torch) are the same code; this module imports no torch.

Synaptic input is one float64 product per layer and step: integer weights times 0/1 spikes (or
event counts) stay far below 2^53, so the product is exact, and it uses BLAS where an int64
product would not. On numpy the product is computed the fastest exact way for the layer
(:func:`sne_deploy.simulators.linear_maps.synapse_operator`: a convolution, a sparse or a dense product).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from .linear_maps import synapse_operator
from .network import Network
from .neuron import LIFFixedParams, LIFParams, LIFState, lif_step_fixed_checked, lif_step_float

NEVER_FIRES = 1 << 40  # vth << 6 far beyond v's saturation at 2^23


class ArrayLib(NamedTuple):
    """The few array operations the loop needs beyond what the step functions use (``xp``)."""

    name: str
    xp: Any  # module with where / clip / zeros_like, passed to the step functions
    asarray: Callable[[Any, str], Any]  # (array-like, "float64" | "int64" | "bool") -> array of that dtype
    zeros: Callable[[tuple, str], Any]
    to_numpy: Callable[[Any], np.ndarray]
    # (layer, weight matrix of the mode) -> the function x -> x @ weight.T; None: a dense product
    synapses: Optional[Callable[[Any, np.ndarray], Callable[[Any], Any]]] = None


NUMPY = ArrayLib(
    "numpy",
    np,
    lambda a, d: np.asarray(a, dtype=d),
    lambda shape, d: np.zeros(shape, dtype=d),
    np.asarray,
    lambda layer, w: synapse_operator(w, None if layer is None else layer.conv),
)


@dataclass(frozen=True)
class LoopOutput:
    counts: list[np.ndarray]  # per layer (N, n_l) spikes per neuron and sample
    trains: Optional[list[np.ndarray]]  # per layer (N, T, n_l) bool, when recorded
    saturated: np.ndarray  # per layer: fixed-point neuron-steps where u wrapped or v hit a rail
    readout: Optional[np.ndarray] = None  # (N, T, n_out) membrane of a non-spiking (LI) last layer


def run_loop(
    network: Network,
    spikes: Any,
    mode: str,
    record: bool = False,
    lib: ArrayLib = NUMPY,
    on_spikes: Optional[Callable[[int, Any], None]] = None,
) -> LoopOutput:
    """Run checked inputs ``spikes`` (N, T, n_in) through ``network`` in ``mode``: 0/1 spikes, or
    event counts per bin (see :func:`~sne_deploy.simulators.result.check_inputs`).
    ``on_spikes(layer index, spikes)`` sees every layer's spikes at every step (NeuroBench's
    adapter hooks its activation modules there)."""
    fixed = mode == "fixed"
    state_dtype = "int64" if fixed else "float64"
    x = lib.asarray(spikes, "float64")
    n, steps, _ = x.shape
    layers, dyn = network.layers, network.dynamics
    dyns = [network.layer_dynamics(i) for i in range(len(layers))]  # a layer may have its own reset
    drives = [_drive(l, l.mode_weight(mode), lib) for l in layers]
    mode_rec = [l.recurrent_weight(mode) for l in layers]
    rec_drives = [None if w is None else _drive(None, w, lib) for w in mode_rec]
    last = [None if w is None else lib.zeros((n, l.n_out), "float64") for w, l in zip(mode_rec, layers)]
    params = [step_params(l, fixed, lib) for l in layers]
    states = [LIFState(lib.zeros((n, l.n_out), state_dtype), lib.zeros((n, l.n_out), state_dtype)) for l in layers]
    counts = [lib.zeros((n, l.n_out), "int64") for l in layers]
    multi = dyn.spikes == "multi"  # spikes per neuron and step are counts, not 0/1
    trains = [lib.zeros((n, steps, l.n_out), "int64" if multi else "bool") for l in layers] if record else None
    saturated = np.zeros(len(layers), np.int64)
    readout = None if layers[-1].spiking else lib.zeros((n, steps, layers[-1].n_out), state_dtype)
    # a layer with delay d emits the spikes of step t at step t + d (Spyx reads a step's spike from
    # the previous step's membrane): its held-back spikes, oldest first (its own loop sees them undelayed)
    held = [[lib.zeros((n, l.n_out), "int64" if multi else "bool") for _ in range(l.delay)] for l in layers]
    for t in range(steps):
        s = x[:, t]
        for i in range(len(layers)):
            a = drives[i](s)
            rec_drive = rec_drives[i]
            if rec_drive is not None:
                a = a + rec_drive(last[i])
            if fixed:
                states[i], spk, over = lif_step_fixed_checked(
                    states[i], lib.asarray(a, "int64"), params[i], lib.xp, dyns[i]
                )
                saturated[i] += int(over.sum())
            else:
                states[i], spk = lif_step_float(states[i], a, params[i], lib.xp, dyn=dyns[i])
            if multi:
                spk = lib.asarray(spk, "int64")
            if last[i] is not None:
                last[i] = lib.asarray(spk, "float64")
            if held[i]:
                held[i].append(spk)
                spk = held[i].pop(0)
            counts[i] += spk
            if on_spikes is not None:
                on_spikes(i, spk)
            if trains is not None:
                trains[i][:, t] = spk
            s = lib.asarray(spk, "float64")
        if readout is not None:
            readout[:, t] = states[-1].v
    return LoopOutput(
        [lib.to_numpy(c) for c in counts],
        [lib.to_numpy(tr) for tr in trains] if trains is not None else None,
        saturated,
        lib.to_numpy(readout) if readout is not None else None,
    )


def _drive(layer: Any, weight: np.ndarray, lib: ArrayLib) -> Callable[[Any], Any]:
    """x -> x @ weight.T for one layer's synapses (``layer`` None: its recurrent ones)."""
    if lib.synapses is not None:
        return lib.synapses(layer, weight)
    w_t = lib.asarray(np.ascontiguousarray(weight.T), "float64")
    return lambda s: s @ w_t


def step_params(layer: Any, fixed: bool, lib: ArrayLib = NUMPY) -> Any:
    """The parameters the step functions take for ``layer`` (fixed or float), as the loop runs
    them; Lava's GeneralLIF process gets the same ones."""
    if fixed:
        f = layer.fixed.params
        # an LI readout never fires: a threshold beyond v's 24-bit range (its vth field is unused)
        vth = np.asarray(f.vth) if layer.spiking else np.full(layer.n_out, NEVER_FIRES)
        return LIFFixedParams(
            _decay(f.du_fx, "int64", lib),
            _decay(f.dv_fx, "int64", lib),
            lib.asarray(vth, "int64"),
            lib.asarray(np.asarray(f.bias_mant), "int64"),
            f.bias_exp,
            None if f.ibias is None else lib.asarray(np.asarray(f.ibias), "int64"),
        )
    p = layer.params
    vth = p.vth if layer.spiking else np.full(layer.n_out, np.inf)  # an LI readout never fires
    return LIFParams(
        _decay(p.du, "float64", lib),
        _decay(p.dv, "float64", lib),
        lib.asarray(vth, "float64"),
        lib.asarray(p.bias, "float64"),
        None if p.ibias is None else lib.asarray(p.ibias, "float64"),
    )


def _decay(x: Any, dtype: str, lib: ArrayLib) -> Any:
    """A shared decay stays a plain number (as the torch model passes it); per-neuron decays
    become arrays of the loop's library."""
    return x if np.ndim(x) == 0 else lib.asarray(np.asarray(x), dtype)
