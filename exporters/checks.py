"""Per-target checks of the member networks before they are written.

Hard limits (integer fields of Loihi, one threshold per population) are errors. The worst-case
membrane range is only an estimate (every input spiking at every step), so exceeding 24 bits is
a warning unless ``strict``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sne_deploy.simulators.errors import GraphError, SneError, check_choice
from sne_deploy.simulators.fixed_point import worst_case_uv
from sne_deploy.simulators.network import Network, check_fixed_layer
from sne_deploy.simulators.neuron import MAX_UV

EXPORT_TARGETS = ("lava", "brian2", "nir")


class ExportError(SneError, ValueError):
    """The model cannot be exported as asked; the message says which layer and why."""


def check_finite_module(module: Any, what: str) -> None:
    """Every parameter and buffer of a host-side torch module (gate, head) is finite."""
    for name, t in module.state_dict().items():
        a = np.asarray(t.detach().cpu().numpy(), dtype=np.float64) if t.is_floating_point() else None
        if a is not None and not np.all(np.isfinite(a)):
            raise ExportError(f"the {what}'s tensor '{name}' holds NaN or inf; retrain the model")


def check_target(target: str) -> None:
    check_choice("target", target, EXPORT_TARGETS, ExportError)


def check_network(network: Network, target: str, steps: int, strict: bool = False) -> list[str]:
    """Validate one member for ``target``; return warnings (raise :class:`ExportError` on errors)."""
    check_target(target)
    warnings: list[str] = []
    for i, layer in enumerate(network.layers):
        p = layer.params
        if not (np.all(np.isfinite(layer.weight)) and np.all(np.isfinite(p.vth)) and np.all(np.isfinite(p.bias))):
            raise ExportError(f"layer '{layer.name}': non-finite float parameters")
        if target in ("lava", "brian2"):
            if layer.fixed is None:
                raise ExportError(f"layer '{layer.name}': no fixed-point parameters")
            try:
                check_fixed_layer(layer)
            except GraphError as e:
                raise ExportError(str(e)) from None
        if target == "lava":
            if np.unique(np.asarray(layer.fixed.params.vth)).size != 1 or np.unique(np.asarray(p.vth)).size != 1:
                raise ExportError(f"layer '{layer.name}': Lava's LIF takes one threshold per population")
            umax, vmax = worst_case_uv(layer, steps, network.graded_input if i == 0 else 0)
            if max(umax, vmax) >= MAX_UV:
                msg = (
                    f"layer '{layer.name}': worst-case |u| = {umax:.0f}, |v| = {vmax:.0f} exceed Loihi's 24-bit range "
                    f"(2^23 = {MAX_UV}); u may wrap or v saturate if every input fires at every step"
                )
                if strict:
                    raise ExportError(msg)
                warnings.append(msg)
    return warnings
