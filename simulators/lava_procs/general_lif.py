"""GeneralLIF: a Lava Process for the neurons Lava's LIF is not, stepping the project's neuron contract.

Lava's LIF processes fire at v > vth, reset v to 0, emit one spike a step and take one du, dv and
vth per population. Graphs from sinabs, Rockpool, snnTorch, SpikingJelly or Spyx need other
conventions (:class:`sne_deploy.simulators.neuron.Dynamics`): ``>=`` firing, subtracting or no
resets, several spikes a step, per-neuron time constants and thresholds, a bias on the synaptic
current, a non-spiking (LI) readout. Lava is built for such neurons: a Process with its own
``PyLoihiProcessModel`` runs in Lava's runtime, behind Lava's own Dense/Sparse synapses, as its LIF
does (on Loihi 2 it would be a microcode neuron program).

The models here do not write the dynamics a second time: each step calls
:func:`~sne_deploy.simulators.neuron.lif_step_fixed` (int64 state, Loihi's 12-bit decays, the
24-bit wrap and saturation) or :func:`~sne_deploy.simulators.neuron.lif_step_float`, the one place
the neuron is written, so the Lava run can differ from the reference only in what Lava adds: its
synapses' arithmetic and one-step delay, the message passing, and the per-sample reset schedule
(``reset_interval``/``reset_offset`` as in Lava's ``LIFReset``). u and v are Lava Vars (probe-able);
the pending spikes of ``subtract-next`` are kept beside them.

Spikes leave as 0/1, or as counts for multi-spike neurons (the next synapses then take graded
messages). Like :mod:`recording_lif`, a process records its output itself and writes it to
``path`` at step ``last``: packed bits, int32 counts, or for an LI layer its membrane v.
"""

from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from sne_deploy.simulators.neuron import (
    Dynamics,
    LIFFixedParams,
    LIFParams,
    LIFState,
    lif_step_fixed,
    lif_step_float,
)


class GeneralLIF(AbstractProcess):
    """``shape`` neurons with ``params`` (a :class:`LIFParams` in float, :class:`LIFFixedParams`
    in fixed point, scalars or one value per neuron) stepping under ``dynamics``; u, v and the
    pending spikes are zeroed at every step where ``time_step % reset_interval == reset_offset``;
    before step ``start`` (when the first sample reaches the layer) the neurons stay silent, so no
    spike of those input-less steps reaches the first sample through a recurrent loop. ``delay``
    d > 0 sends each step's spikes d steps later on ``s_out`` (Spyx's timing; ``Layer.delay``), none
    of one sample's reaching the next; ``s_now`` sends them undelayed, for the layer's own loop.
    ``record`` (optional): ``{"first", "length", "last", "path", "what"}``, ``what`` one of
    ``bits``, ``counts``, ``v``."""

    def __init__(
        self,
        *,
        shape: tuple[int, ...],
        params: Any,
        dynamics: Dynamics,
        reset_interval: int,
        reset_offset: int,
        start: int = 1,
        delay: int = 0,
        record: Any = None,
    ) -> None:
        super().__init__(
            shape=shape,
            params=params,
            dynamics=dynamics,
            reset_interval=reset_interval,
            reset_offset=reset_offset,
            start=start,
            delay=delay,
            record=record,
        )
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.s_now = OutPort(shape=shape)  # this step's spikes before any delay: a recurrent loop's
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)


class _GeneralModel(PyLoihiProcessModel):
    """The step shared by both models; ``_step`` is the neuron contract's function of the mode."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._params = proc_params["params"]
        self._dyn = proc_params["dynamics"]
        self._interval = int(proc_params["reset_interval"])
        self._offset = int(proc_params["reset_offset"]) % self._interval
        self._start = int(proc_params["start"])
        self._delay = int(proc_params["delay"])
        self._held: list = []  # spikes waiting for their step, oldest first
        self._spike_dtype = np.int32 if self._dyn.spikes == "multi" else bool  # counts or 0/1
        self._pending = None  # subtract-next: last step's spikes
        rec = proc_params["record"]
        self._rec = rec
        if rec is not None:
            n = proc_params["shape"][0]
            dtype = {"bits": bool, "counts": np.int32, "v": self._state_dtype}[rec["what"]]
            self._rec_buf = np.zeros((rec["length"], n), dtype=dtype)

    _state_dtype: Any = np.float64

    def _step(self, state: LIFState, a: np.ndarray) -> tuple[LIFState, np.ndarray]:
        raise NotImplementedError

    def run_spk(self) -> None:
        a = self.a_in.recv()
        if self.time_step < self._start:  # no sample has reached this layer yet
            silent = np.zeros(a.shape, dtype=self._spike_dtype)
            self.s_out.send(silent)
            self.s_now.send(silent)
            return
        if self.time_step % self._interval == self._offset:  # a new sample reaches this layer
            self.u[:] = 0
            self.v[:] = 0
            self._pending = None
            self._held = []
        state = LIFState(self.u.astype(self._state_dtype), self.v.astype(self._state_dtype), self._pending)
        state, s = self._step(state, np.asarray(a).astype(self._state_dtype))
        self.u[:] = state.u
        self.v[:] = state.v
        self._pending = state.s
        out = np.asarray(s).astype(self._spike_dtype)
        self.s_now.send(out)
        if self._delay:
            self._held.append(out)
            out = self._held.pop(0) if len(self._held) > self._delay else np.zeros_like(out)
        self._record(out, state.v)
        self.s_out.send(out)

    def _record(self, out: np.ndarray, v: np.ndarray) -> None:
        rec = self._rec
        if rec is None:
            return
        k = self.time_step - rec["first"]
        if 0 <= k < len(self._rec_buf):
            self._rec_buf[k] = v if rec["what"] == "v" else out
        if self.time_step == rec["last"]:
            buf = np.packbits(self._rec_buf, axis=1) if rec["what"] == "bits" else self._rec_buf
            np.save(rec["path"], buf)


@implements(proc=GeneralLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyGeneralLifFixed(_GeneralModel):
    """Fixed point: int64 state through :func:`lif_step_fixed`; u and v stay within 24 bits (the
    step wraps u and saturates v), so Lava's int32 Vars hold them exactly."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    s_now: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    _state_dtype = np.int64

    def _step(self, state: LIFState, a: np.ndarray) -> tuple[LIFState, np.ndarray]:
        p: LIFFixedParams = self._params
        return lif_step_fixed(state, a, p, np, self._dyn)


@implements(proc=GeneralLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGeneralLifFloat(_GeneralModel):
    """Float: float64 state through :func:`lif_step_float`."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    s_now: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)

    def _step(self, state: LIFState, a: np.ndarray) -> tuple[LIFState, np.ndarray]:
        p: LIFParams = self._params
        return lif_step_float(state, a, p, np, dyn=self._dyn)
