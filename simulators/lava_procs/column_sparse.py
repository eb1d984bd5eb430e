"""Lava's own Sparse process models (bit-accurate and float), with one change: how a time step
finds the synapses of the inputs that spiked.

Lava's models select those columns from a row-compressed (CSR) matrix, which scans every synapse
of the layer at every step, spiking or not; for B copies of a 1 M-synapse conv net that scan is
the whole cost of a step. These subclasses also keep the matrix column-compressed (CSC), where the
columns of the spiking inputs are read directly: a step costs its synaptic events. Everything that
decides the numbers is Lava's code, unchanged: the weights are clipped and truncated to 8 bits by
the inherited ``AbstractPySparseModelBitAcc`` logic (first step), summed as integers (the order of
an integer sum cannot change it), shifted by the weight exponent and sent one step later.
Selected with ``exception_proc_model_map`` in the worker's run configuration.
"""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.sparse.models import AbstractPySparseModelBitAcc, AbstractPySparseModelFloat
from lava.proc.sparse.process import Sparse
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights


def _column_sum(csc, s_in: np.ndarray, graded: bool) -> np.ndarray:
    """Sum of the columns of the inputs that spiked, each times its payload when ``graded``
    (num_message_bits > 0: event counts), as Lava's own models compute ``weights.dot(s_in)``."""
    active = np.flatnonzero(s_in)
    cols = csc[:, active]
    if graded:
        return np.asarray(cols @ s_in[active]).ravel()
    return cols.sum(axis=1).A1


@implements(proc=Sparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class ColumnSparseBitAcc(AbstractPySparseModelBitAcc):
    def run_spk(self):
        self.weight_exp: int = self.proc_params.get("weight_exp", 0)
        if not self.weights_set:  # as Lava's model does on its first step
            num_weight_bits: int = self.proc_params.get("num_weight_bits", 8)
            sign_mode = self.proc_params.get("sign_mode") or determine_sign_mode(self.weights)
            self.weights = clip_weights(self.weights, sign_mode, num_bits=8)
            self.weights = truncate_weights(self.weights, sign_mode, num_weight_bits)
            self.weights_set = True
            self._csc = self.weights.tocsc()
        self.a_out.send(self.a_buff)
        graded = self.num_message_bits.item() > 0
        s_in = self.s_in.recv()
        a_accum = _column_sum(self._csc, s_in if graded else s_in.astype(bool), graded)
        self.a_buff = (
            np.left_shift(a_accum, self.weight_exp)
            if self.weight_exp > 0
            else np.right_shift(a_accum, -self.weight_exp)
        )


@implements(proc=Sparse, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class ColumnSparseFloat(AbstractPySparseModelFloat):
    def run_spk(self):
        if getattr(self, "_csc", None) is None:
            self._csc = self.weights.tocsc()
        self.a_out.send(self.a_buff)
        graded = self.num_message_bits.item() > 0
        s_in = self.s_in.recv()
        self.a_buff = _column_sum(self._csc, s_in if graded else s_in.astype(bool), graded)
