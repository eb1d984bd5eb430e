"""sinabs networks for the interop tests, run by the sinabs environment's Python (``.venv-sinabs``:
sinabs 3.1.3 pins nir<=1.0.4, so it cannot share the main environment).

    .venv-sinabs/bin/python tests/sinabs_nets.py OUT_DIR

Builds Linear -> LIF/IAF -> Linear -> LIF/IAF MLPs the way sinabs' tutorials do, with integer
and float weights, simulates them in sinabs, exports them with ``sinabs.to_nir`` and writes per
network ``NAME.nir`` and ``NAME.npz`` (``spikes`` (N, T, n_in), ``layer0``, ``layer1`` the spike
trains, as spike counts per step). Both spike functions: ``SingleSpike`` (names ending ``_single``,
run with ``--spikes single``) and sinabs' default ``MultiSpike`` (several spikes in one step).
"""

import sys
from pathlib import Path

import nir
import numpy as np
import sinabs
import sinabs.layers as sl
import torch
from sinabs.activation import MembraneSubtract, MultiSpike, SingleSpike

N, T, N_IN, HIDDEN, N_OUT = 32, 50, 20, 16, 5


def main(out: Path) -> None:
    torch.manual_seed(0)
    x = (torch.rand(N, T, N_IN) < 0.3).float()
    for kind, integer, spike_fn in [
        (k, i, f) for k in ("LIF", "IAF") for i in (True, False) for f in (SingleSpike, MultiSpike)
    ]:
        fc1, fc2 = torch.nn.Linear(N_IN, HIDDEN, bias=False), torch.nn.Linear(HIDDEN, N_OUT, bias=False)
        if integer:
            with torch.no_grad():
                for fc in (fc1, fc2):
                    fc.weight.copy_(torch.randint(-2, 4, fc.weight.shape).float())
        thr = 2.0 if integer else (0.15 if kind == "LIF" else 0.3)  # every layer spikes, LIF leaking too

        def layer(kind: str = kind, thr: float = thr, fn=spike_fn):  # type: ignore[no-untyped-def]
            if kind == "LIF":
                return sl.LIF(tau_mem=torch.tensor(2.0), spike_threshold=thr, spike_fn=fn, reset_fn=MembraneSubtract())
            return sl.IAF(spike_threshold=thr, spike_fn=fn, reset_fn=MembraneSubtract())

        l1, l2 = layer(), layer()
        net = torch.nn.Sequential(fc1, l1, fc2, l2)
        with torch.no_grad():
            a = l1(fc1(x))
            b = l2(fc2(a))
        for m in (l1, l2):
            m.reset_states()
        name = f"{kind}_{'int' if integer else 'float'}_{'single' if spike_fn is SingleSpike else 'multi'}"
        nir.write(str(out / f"{name}.nir"), sinabs.to_nir(net, x[:1]))
        np.savez(
            out / f"{name}.npz",
            spikes=x.numpy().astype(np.uint8),
            layer0=a.numpy().astype(np.int64),  # spikes per step: 0/1, or counts under MultiSpike
            layer1=b.numpy().astype(np.int64),
        )
        print(name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
