"""SpikeRecorder: a Lava sink that keeps a layer's spikes in its own process and writes them to a
file once, at the last step. Reading a RingBuffer sink with ``Var.get`` costs one message per
element (~17 µs each) and can dominate a run; this costs nothing per step but a row copy."""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class SpikeRecorder(AbstractProcess):
    """Records ``s_in`` of time steps ``first .. first + length - 1`` (1-based) and saves them
    as a packed bool array of shape (length, n) to ``path`` at step ``last``."""

    def __init__(self, *, shape: tuple, first: int, length: int, last: int, path: str) -> None:
        super().__init__(shape=shape, first=first, length=length, last=last, path=path)
        self.s_in = InPort(shape=shape)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")
class PySpikeRecorderModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.first = proc_params["first"]
        self.length = proc_params["length"]
        self.last = proc_params["last"]
        self.path = proc_params["path"]
        self.buf = np.zeros((self.length, proc_params["shape"][0]), dtype=bool)

    def run_spk(self) -> None:
        s = self.s_in.recv()
        k = self.time_step - self.first
        if 0 <= k < self.length:
            self.buf[k] = s != 0
        if self.time_step == self.last:
            np.save(self.path, np.packbits(self.buf, axis=1))
