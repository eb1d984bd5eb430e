"""Networks built the way snnTorch, norse and SpikingJelly's tutorials build them, simulated step
by step in the library itself and exported with the library's own NIR exporter (no patching).

Each builder returns an :class:`Export`: the NIR file, the inputs, the library's spike trains per
spiking layer (and an LI readout's membrane), and the ``run-nir`` options that match how the
library simulates. ``tests/test_interop.py`` asserts that run-nir reproduces them;
``benchmarks/interop.py`` tabulates agreement and wall time. Inputs stay small (N = 32, T = 50).

Workarounds the libraries' own exporters need, none of them in the graph: snnTorch 1.0.0 and
norse 1.1.0 need per-neuron tensors for beta, threshold and time constants (scalars fail NIR's
shape check in snnTorch's exporter, and ``nir.write`` cannot store norse's 0-d tensors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import nir
import numpy as np
import torch

N, T, N_IN, HIDDEN, N_OUT = 32, 50, 20, 16, 5
# seconds of each library's own simulation, appended by every builder (benchmarks/interop.py's
# speed table reads the last one after a build with N set larger)
SIM_SECONDS: list[float] = []


@dataclass(frozen=True)
class Export:
    library: str
    network: str
    path: Path  # the NIR file the library wrote
    inputs: np.ndarray  # (N, T, n_in) 0/1
    trains: list  # the library's own spike trains per spiking layer, (N, T, n) bool each
    preset: str
    options: tuple = ()  # further run-nir options this network needs
    readout: Optional[np.ndarray] = None  # (N, T, n_out) membrane of an LI readout, from the library
    loihi: bool = True  # Loihi's firing and reset: Lava can run it


def inputs(seed: int = 0, shape: tuple = (N_IN,)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, N, *shape, generator=g) < 0.3).float()


def linears(
    integer: bool, seed: int = 0, scale: float = 1.0, bias: bool = False
) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """Two layers (bias-free unless ``bias``); integer weights are the Loihi use case (exact ties
    at threshold)."""
    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(N_IN, HIDDEN, bias=bias), torch.nn.Linear(HIDDEN, N_OUT, bias=bias)
    if integer:
        with torch.no_grad():
            for fc in (fc1, fc2):
                fc.weight.copy_(torch.randint(-2, 4, fc.weight.shape).float() * scale)
                if bias:
                    fc.bias.copy_(torch.randint(-1, 2, fc.bias.shape).float() * scale)
    return fc1, fc2


def simulate(x: torch.Tensor, layers: list, step: Callable[[Any, torch.Tensor], torch.Tensor]) -> list:
    """The library's own step-by-step run of (linear, neuron) pairs; every neuron's output per step."""
    outs: list = [[] for _ in range(len(layers) // 2)]
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in range(T):
            a = x[t]
            for i in range(0, len(layers), 2):
                a = step(layers[i + 1], layers[i](a))
                outs[i // 2].append(a)
    SIM_SECONDS.append(time.perf_counter() - t0)
    return [torch.stack(o, 1).numpy() for o in outs]


def _flat_inputs(x: torch.Tensor) -> np.ndarray:
    return x.flatten(2).permute(1, 0, 2).numpy().astype(np.uint8)


def run_nir_args(graph: Path, inputs: Path, preset: str, backend: str, mode: str, out: Path, *extra: str) -> list[str]:
    """The ``sne-deploy run-nir`` command line a user types for a library's export (the interop
    tests and benchmark run exactly this)."""
    return [
        "run-nir",
        str(graph),
        "--inputs",
        str(inputs),
        "--preset",
        preset,
        "--backend",
        backend,
        "--mode",
        mode,
        "--out",
        str(out),
        *extra,
    ]


# --- snnTorch --------------------------------------------------------------------------------


def _snntorch_write(folder: Path, net: torch.nn.Module, x: torch.Tensor) -> Path:
    from snntorch.export_nir import export_to_nir

    path = folder / "snntorch.nir"
    nir.write(str(path), export_to_nir(net, x[0, :1], ignore_dims=[0]))
    return path


def _snntorch_run_and_write(folder: Path, layers: list, x: torch.Tensor) -> tuple[list, Path]:
    """snnTorch's own spike trains of ``layers`` (init_hidden neurons) on ``x``, and its NIR export."""
    trains = [t.astype(bool) for t in simulate(x, layers, lambda m, a: m(a))]
    for m in layers[1::2]:
        m.reset_hidden()
    return trains, _snntorch_write(folder, torch.nn.Sequential(*layers), x)


def snntorch_leaky(
    folder: Path, integer: bool, reset: str = "subtract", seed: int = 0, per_neuron: bool = False
) -> Export:
    """Linear -> Leaky -> Linear -> Leaky. NIR cannot say which reset a Leaky uses: the preset
    assumes snnTorch's default (subtract); reset_mechanism='zero' needs --reset zero, 'none' --reset none. With
    ``per_neuron`` every neuron has its own beta and threshold."""
    import snntorch as snn

    fc1, fc2 = linears(integer, seed)
    thr = 2.0 if integer else 0.4

    def beta(n: int, b: float) -> torch.Tensor:
        return torch.tensor([0.5, 0.75, 0.875, 0.25])[torch.arange(n) % 4] if per_neuron else torch.full((n,), b)

    def threshold(n: int) -> torch.Tensor:
        return thr * (1.0 + (torch.arange(n) % 3) / 2) if per_neuron else torch.full((n,), thr)

    l1 = snn.Leaky(beta=beta(HIDDEN, 0.5), threshold=threshold(HIDDEN), init_hidden=True, reset_mechanism=reset)
    l2 = snn.Leaky(beta=beta(N_OUT, 0.75), threshold=threshold(N_OUT), init_hidden=True, reset_mechanism=reset)
    x = inputs(seed)
    trains, path = _snntorch_run_and_write(folder, [fc1, l1, fc2, l2], x)
    return Export(
        "snntorch",
        f"Leaky MLP, {'integer' if integer else 'float'} weights, reset {reset}"
        + (", per-neuron beta and threshold" if per_neuron else ""),
        path,
        _flat_inputs(x),
        trains,
        "snntorch",
        () if reset == "subtract" else ("--reset", reset),
        loihi=reset == "zero" and not per_neuron,
    )


def snntorch_deep(folder: Path, seed: int = 11) -> Export:
    """A deeper snnTorch MLP: four Linear -> Leaky pairs (20-16-16-12-5), integer weights, the
    default reset (subtraction at the next step)."""
    import snntorch as snn

    torch.manual_seed(seed)
    sizes = (N_IN, HIDDEN, HIDDEN, 12, N_OUT)
    layers: list = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        fc = torch.nn.Linear(n_in, n_out, bias=False)
        with torch.no_grad():
            fc.weight.copy_(torch.randint(-2, 4, fc.weight.shape).float())
        layers += [
            fc,
            snn.Leaky(beta=torch.full((n_out,), 0.75), threshold=torch.full((n_out,), 2.0), init_hidden=True),
        ]
    x = inputs(seed)
    trains, path = _snntorch_run_and_write(folder, layers, x)
    return Export("snntorch", "Leaky MLP, four layers, integer weights", path, _flat_inputs(x), trains, "snntorch")


def snntorch_synaptic(folder: Path, seed: int = 3, bias: bool = False) -> Export:
    """Linear -> Synaptic -> Linear -> Synaptic (CubaLIF), integer weights, default reset; with
    ``bias`` the Linear layers keep PyTorch's default bias (integer-valued here)."""
    import snntorch as snn

    fc1, fc2 = linears(True, seed, bias=bias)
    l1 = snn.Synaptic(
        alpha=torch.full((HIDDEN,), 0.5),
        beta=torch.full((HIDDEN,), 0.75),
        threshold=torch.full((HIDDEN,), 3.0),
        init_hidden=True,
    )
    l2 = snn.Synaptic(
        alpha=torch.full((N_OUT,), 0.5),
        beta=torch.full((N_OUT,), 0.5),
        threshold=torch.full((N_OUT,), 3.0),
        init_hidden=True,
    )
    x = inputs(seed)
    trains = [t.astype(bool) for t in simulate(x, [fc1, l1, fc2, l2], lambda m, a: m(a))]
    path = _snntorch_write(folder, torch.nn.Sequential(fc1, l1, fc2, l2), x)
    return Export(
        "snntorch",
        "Synaptic (CubaLIF) MLP, integer weights" + (" and biases" if bias else ""),
        path,
        _flat_inputs(x),
        trains,
        "snntorch",
        loihi=False,
    )


def snntorch_recurrent(folder: Path, integer: bool, kind: str = "RLeaky", seed: int = 5) -> Export:
    """Linear -> RLeaky or RSynaptic (an all-to-all recurrent nn.Linear, with its bias) -> Linear ->
    Leaky, snnTorch's default reset (subtraction, one step late). The recurrent weights are
    integers in the integer case; the float case keeps PyTorch's initialisation."""
    import snntorch as snn

    fc1, fc2 = linears(integer, seed)
    thr = 2.0 if integer else 0.4
    common = dict(threshold=torch.full((HIDDEN,), thr), linear_features=HIDDEN, init_hidden=True)
    if kind == "RLeaky":
        l1 = snn.RLeaky(beta=torch.full((HIDDEN,), 0.5), **common)
    else:
        l1 = snn.RSynaptic(alpha=torch.full((HIDDEN,), 0.5), beta=torch.full((HIDDEN,), 0.75), **common)
    if integer:
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed)
            l1.recurrent.weight.copy_(torch.randint(-2, 2, l1.recurrent.weight.shape, generator=g).float())
            l1.recurrent.bias.copy_(torch.randint(-1, 2, l1.recurrent.bias.shape, generator=g).float())
    l2 = snn.Leaky(beta=torch.full((N_OUT,), 0.75), threshold=torch.full((N_OUT,), thr), init_hidden=True)
    x = inputs(seed)
    trains, path = _snntorch_run_and_write(folder, [fc1, l1, fc2, l2], x)
    return Export(
        "snntorch",
        f"{kind} (recurrent) MLP, {'integer' if integer else 'float'} weights",
        path,
        _flat_inputs(x),
        trains,
        "snntorch",
        loihi=False,
    )


# --- Rockpool --------------------------------------------------------------------------------


def rockpool_mlp(folder: Path, integer: bool, kind: str = "LIFTorch", seed: int = 13, single: bool = False) -> Export:
    """LinearTorch -> LIFTorch (CubaLIF) or LIFNeuronTorch (LIF) -> LinearTorch -> the same, in
    Rockpool's torch modules at its default dt = 1 ms, multi-spike as Rockpool's default is
    (``single``: ``max_spikes_per_dt=1``, run with --spikes single)."""
    import warnings

    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    fc1, fc2 = linears(integer, seed)
    thr = 2.0 if integer else 0.3

    def neurons(n: int):  # type: ignore[no-untyped-def]
        cap = {"max_spikes_per_dt": 1} if single else {}
        if kind == "LIFTorch":
            return LIFTorch(n, tau_mem=0.004, tau_syn=0.002, threshold=torch.full((n,), thr), **cap)
        return LIFNeuronTorch(n, tau_mem=0.004, threshold=torch.full((n,), thr), **cap)

    lins = [LinearTorch((N_IN, HIDDEN), has_bias=False), LinearTorch((HIDDEN, N_OUT), has_bias=False)]
    with torch.no_grad():
        for lin, fc in zip(lins, (fc1, fc2)):
            lin.weight.copy_(fc.weight.T)
    net = Sequential(lins[0], neurons(HIDDEN), lins[1], neurons(N_OUT))
    x = inputs(seed)
    xb = x.permute(1, 0, 2)  # Rockpool's (batch, time, channels)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        _, _, rec = net(xb, record=True)
        SIM_SECONDS.append(time.perf_counter() - t0)
        graph = to_nir(net, xb[:1])
    trains = [np.rint(rec[k]["spikes"].numpy()).astype(np.int64) for k in sorted(rec) if k.endswith(kind)]
    path = folder / "rockpool.nir"
    nir.write(str(path), graph)
    return Export(
        "rockpool",
        f"{kind} MLP, {'integer' if integer else 'float'} weights, " + ("single-spike" if single else "multi-spike"),
        path,
        _flat_inputs(x),
        trains,
        "rockpool",
        options=("--spikes", "single") if single else (),
        loihi=False,
    )


# --- SpikingJelly ----------------------------------------------------------------------------


def _spikingjelly_write(folder: Path, net: torch.nn.Module, example: torch.Tensor) -> Path:
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    functional.reset_net(net)
    path = folder / "spikingjelly.nir"
    export_to_nir(net, example, save_path=str(path))
    functional.reset_net(net)
    return path


def spikingjelly_mlp(folder: Path, integer: bool, kind: str = "LIF", seed: int = 4) -> Export:
    """Linear -> LIFNode/IFNode -> Linear -> LIFNode/IFNode (hard reset to 0, fires at v >= vth)."""
    from spikingjelly.activation_based import neuron

    fc1, fc2 = linears(integer, seed)
    thr = 2.0 if integer else 0.3
    make = (
        (lambda: neuron.LIFNode(tau=2.0, v_threshold=thr))
        if kind == "LIF"
        else (lambda: neuron.IFNode(v_threshold=thr))
    )
    l1, l2 = make(), make()
    x = inputs(seed + 1)
    trains = [t.astype(bool) for t in simulate(x, [fc1, l1, fc2, l2], lambda m, a: m(a))]
    path = _spikingjelly_write(folder, torch.nn.Sequential(fc1, l1, fc2, l2), x[0])
    return Export(
        "spikingjelly",
        f"{kind}Node MLP, {'integer' if integer else 'float'} weights",
        path,
        _flat_inputs(x),
        trains,
        "spikingjelly",
        loihi=False,
    )


def spikingjelly_conv(folder: Path, seed: int = 7) -> Export:
    """Conv2d -> LIFNode -> AvgPool2d -> Flatten -> Linear -> LIFNode on 1 x 8 x 8 frames."""
    from spikingjelly.activation_based import neuron

    torch.manual_seed(seed)
    conv, fc = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), torch.nn.Linear(4 * 4 * 4, N_OUT, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-1, 3, conv.weight.shape).float())
        fc.weight.copy_(torch.randint(-1, 3, fc.weight.shape).float())
    l1, l2 = neuron.LIFNode(tau=2.0, v_threshold=2.0), neuron.LIFNode(tau=2.0, v_threshold=1.0)
    pool, flat = torch.nn.AvgPool2d(2), torch.nn.Flatten()
    x = inputs(seed + 1, (1, 8, 8))
    s1, s2 = [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in range(T):
            a = l1(conv(x[t]))
            s1.append(a.flatten(1))
            s2.append(l2(fc(flat(pool(a)))))
    SIM_SECONDS.append(time.perf_counter() - t0)
    trains = [torch.stack(s, 1).numpy().astype(bool) for s in (s1, s2)]
    path = _spikingjelly_write(folder, torch.nn.Sequential(conv, l1, pool, flat, fc, l2), x[0])
    return Export(
        "spikingjelly",
        "conv net (Conv2d, AvgPool2d, Flatten, Linear)",
        path,
        _flat_inputs(x),
        trains,
        "spikingjelly",
        loihi=False,
    )


# --- norse -----------------------------------------------------------------------------------


def _norse_step(states: dict) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    def step(cell: Any, a: torch.Tensor) -> torch.Tensor:
        out, states[id(cell)] = cell(a, states.get(id(cell)))
        return out

    return step


def norse_lifbox(folder: Path, integer: bool = True, seed: int = 9) -> Export:
    """Linear -> LIFBoxCell -> Linear -> LIFBoxCell."""
    import norse.torch as norse

    fc1, fc2 = linears(integer, seed, scale=4.0)

    def params(n: int) -> Any:
        return norse.LIFBoxParameters(
            tau_mem_inv=torch.full((n,), 250.0), v_th=torch.full((n,), 1.0 if integer else 0.05), v_leak=torch.zeros(n)
        )

    l1, l2 = norse.LIFBoxCell(params(HIDDEN)), norse.LIFBoxCell(params(N_OUT))
    x = inputs(seed + 1)
    trains = [t.astype(bool) for t in simulate(x, [fc1, l1, fc2, l2], _norse_step({}))]
    path = folder / "norse.nir"
    nir.write(str(path), norse.to_nir(norse.SequentialState(fc1, l1, fc2, l2), x[0, :1]))
    return Export(
        "norse", f"LIFBox MLP, {'integer' if integer else 'float'} weights", path, _flat_inputs(x), trains, "norse"
    )


def norse_lifcell(folder: Path, integer: bool = True, seed: int = 9) -> Export:
    """Linear -> LIFCell -> Linear -> LIFCell: norse's current-based LIF (a CubaLIF in NIR)."""
    import norse.torch as norse

    fc1, fc2 = linears(integer, seed, scale=4.0)

    def params(n: int) -> Any:
        return norse.LIFParameters(
            tau_syn_inv=torch.full((n,), 200.0),
            tau_mem_inv=torch.full((n,), 100.0),
            v_th=torch.full((n,), 1.0 if integer else 0.05),
            v_leak=torch.zeros(n),
            v_reset=torch.zeros(n),
        )

    l1, l2 = norse.LIFCell(params(HIDDEN)), norse.LIFCell(params(N_OUT))
    x = inputs(seed + 1)
    trains = [t.astype(bool) for t in simulate(x, [fc1, l1, fc2, l2], _norse_step({}))]
    path = folder / "norse_lifcell.nir"
    nir.write(str(path), norse.to_nir(norse.SequentialState(fc1, l1, fc2, l2), x[0, :1]))
    return Export(
        "norse",
        f"LIFCell (CubaLIF) MLP, {'integer' if integer else 'float'} weights",
        path,
        _flat_inputs(x),
        trains,
        "norse",
    )


def norse_iaf(folder: Path, seed: int = 9) -> Export:
    """Linear -> IAFCell -> Linear -> IAFCell: integrate and fire, no leak (an IF in NIR)."""
    import norse.torch as norse

    fc1, fc2 = linears(True, seed)

    def params(n: int) -> Any:
        return norse.IAFParameters(v_th=torch.full((n,), 3.0), v_reset=torch.zeros(n))

    l1, l2 = norse.IAFCell(params(HIDDEN)), norse.IAFCell(params(N_OUT))
    x = inputs(seed + 1)
    trains = [t.astype(bool) for t in simulate(x, [fc1, l1, fc2, l2], _norse_step({}))]
    path = folder / "norse_iaf.nir"
    nir.write(str(path), norse.to_nir(norse.SequentialState(fc1, l1, fc2, l2), x[0, :1]))
    return Export("norse", "IAFCell MLP, integer weights", path, _flat_inputs(x), trains, "norse")


def norse_li_readout(folder: Path, seed: int = 12) -> Export:
    """Linear -> LIFBoxCell -> Linear -> LIBoxCell: a classifier with a leaky-integrator readout."""
    import norse.torch as norse

    fc1, fc2 = linears(True, seed)
    lif = norse.LIFBoxCell(
        norse.LIFBoxParameters(
            tau_mem_inv=torch.full((HIDDEN,), 500.0), v_th=torch.full((HIDDEN,), 1.0), v_leak=torch.zeros(HIDDEN)
        )
    )
    li = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.full((N_OUT,), 250.0), v_leak=torch.zeros(N_OUT)))
    x = inputs(seed + 1)
    spikes, trace = simulate(x, [fc1, lif, fc2, li], _norse_step({}))
    path = folder / "norse_li.nir"
    nir.write(str(path), norse.to_nir(norse.SequentialState(fc1, lif, fc2, li), x[0, :1]))
    return Export(
        "norse",
        "LIFBox MLP with an LIBox readout",
        path,
        _flat_inputs(x),
        [spikes.astype(bool)],
        "norse",
        readout=trace,
    )
