"""How each library's NIR export is meant to be run: its time step and neuron conventions.

None of snnTorch, norse, sinabs and SpikingJelly writes ``dt`` into the graph, and NIR has no field
for the firing comparison or the reset (see :class:`sne_deploy.simulators.neuron.Dynamics`). A preset supplies
what the file leaves out, as that library simulates it (read from each library's source:
snnTorch 1.0.0, norse 1.1.0, sinabs 3.1.3, SpikingJelly 2.0.0). ``--dt`` and a ``dt`` in the
graph's metadata win over a preset's; ``--firing``, ``--reset`` and ``--decay`` win over its
conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import check_choice
from .neuron import Dynamics


@dataclass(frozen=True)
class Preset:
    name: str
    dt: float  # the step the exporter divided its per-step constants by
    dynamics: Dynamics
    note: str  # what the preset does, for --help and the README


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "snntorch",
            1e-4,
            Dynamics("gt", "subtract-next", "euler"),
            "export_to_nir writes tau = 1e-4 / (1 - beta), r = tau / 1e-4 (dt = 1e-4); Leaky fires at mem > threshold "
            "and by default subtracts the threshold at the next step (reset_mechanism='subtract', reset_delay=True); "
            "a graph of reset_mechanism='zero' layers needs --reset zero",
        ),
        Preset(
            "norse",
            1e-6,
            Dynamics("gt", "zero", "euler", gain="norse"),
            "norse writes tau = dt / tau_inv (not 1 / tau_inv) with its default dt = 1e-3, so dt = 1e-6 recovers the "
            "per-step factor dt * tau_inv of LIFBox, LIBox and LIFCell; it fires at v > v_th and resets to v_reset = 0; "
            "LIFCell (a CubaLIF) adds its input to the current undecayed (i = i + input) and v takes "
            "dt * tau_mem_inv * i, so the input gain is w_in * dt / tau_mem with no dt / tau_syn factor; IAFCell "
            "(an IF) adds its input to v whatever dt is, so its gain is r",
        ),
        Preset(
            "sinabs",
            1.0,
            Dynamics("ge", "subtract", "exp", "multi"),
            "sinabs works in steps (dt = 1) with the exact decay alpha = exp(-1 / tau_mem) and, as LIF's default "
            "norm_input=True, an input gain of 1 - alpha; its default MultiSpike emits floor(v / threshold) spikes "
            "where v >= threshold and MembraneSubtract takes that many thresholds off right away (layers with "
            "SingleSpike need --spikes single; the file cannot say which was used); sinabs' to_nir writes the input "
            "shape with its time axis, read as leading axes",
        ),
        Preset(
            "rockpool",
            1e-3,
            Dynamics("ge", "subtract", "exp", "multi", "rockpool"),
            "Rockpool's torch modules step at dt = 1e-3 with the exact decays exp(-dt / tau); LIFTorch (a CubaLIF) "
            "adds its input to the synaptic current before that current decays, so the input gain is "
            "exp(-dt / tau_syn), and LIFNeuronTorch (a LIF) adds it to v with gain 1, whatever the exported r says "
            "(Rockpool writes r = tau exp(-dt / tau) / dt and no w_in); both emit floor(v / threshold) spikes where "
            "v >= threshold (max_spikes_per_dt, 2^16 by default, is not modelled) and subtract that many "
            "thresholds; the exporter drops biases",
        ),
        Preset(
            "spyx",
            1.0,
            Dynamics("gt", "subtract-next", "euler", gain="spyx"),
            "Spyx 1.0 steps in units of dt = 1 (its to_nir default) and writes tau = dt / (1 - beta), r = beta and "
            "no w_in: every neuron adds its input with gain 1 (V = beta V + x; a CuBaLIF's I = alpha I + x, "
            "V = beta V + I); it fires at V > threshold, but reads a step's spike from the membrane before that "
            "step's input, so each LIF, IF and CuBaLIF layer's spikes come one step later than the delay-free "
            "neuron's; LIF and IF subtract the threshold after the decay (subtract-next), CuBaLIF before it "
            "(subtract); LI -> Threshold (PSU_LIF) is reset-free and spikes in the same step; its recurrent layers, "
            "exported as input -> w_rec -> lif <-> w_rec, add the input to the neuron directly (V + x + W_rec s); its "
            "conv nets flatten channels-last (H, W, C), which the weights after a Flatten are reordered for",
        ),
        Preset(
            "spikingjelly",
            1e-4,
            Dynamics("ge", "zero", "euler"),
            "export_to_nir writes tau = tau_steps * dt with dt = 1e-4; LIFNode charges by forward Euler, fires at "
            "v >= v_threshold (Heaviside of x >= 0) and hard-resets to v_reset = 0 (the exporter refuses soft reset)",
        ),
    )
}


def get_preset(name: str) -> Preset:
    check_choice("--preset", name, tuple(PRESETS))
    return PRESETS[name]
