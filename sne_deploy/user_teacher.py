"""The user's own trained teacher: any ``nn.Module`` (a torchvision ResNet, a paper's model) or an
ONNX file, cut at the feature layer the user names, with no wrapper to write.

The cut is made on the module's torch.fx graph (ONNX files become one through onnx2torch, which
gives a torch module whose Linear and Conv2d layers count MACs like the built-in teachers' and
whose graph can be cut like any other; onnxruntime would hide both behind a session). The part
up to and including ``features_at`` is :meth:`SplitTeacher.features` (flattened to (N, D)), the
rest is :meth:`SplitTeacher.head`. The ensemble reuses the teacher's classifier as an
``nn.Linear`` (``classifier``): the rest itself when it is one Linear (after flatten / dropout),
else a linear probe fitted to the teacher's logits on the training features (least squares), whose
agreement with the teacher is reported.

A checkpoint stores such a teacher as TorchScript (traced ``features`` and ``head``), so it
loads without the user's code and without unpickling anything.
"""

from __future__ import annotations

import io
import operator
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import fx, nn

from sne_deploy.simulators.errors import InputError

from .energy import AnnWork

PASS_THROUGH = (nn.Flatten, nn.Dropout, nn.Identity)
PASS_THROUGH_FUNCTIONS = {torch.flatten, torch.nn.functional.dropout, operator.getitem}
MAX_NAMES = 40  # layer names listed in the "not found" line


def _layer_names(gm: fx.GraphModule) -> list[str]:
    """What ``features_at`` may name: each called module's path, else the graph node's name."""
    names = []
    for n in gm.graph.nodes:
        if n.op == "call_module":
            names.append(str(n.target))
        elif n.op in ("call_function", "call_method"):
            names.append(n.name)
    return names


def _find(gm: fx.GraphModule, features_at: str, where: str, module: Optional[nn.Module] = None) -> fx.Node:
    for n in gm.graph.nodes:
        if (n.op == "call_module" and n.target == features_at) or n.name == features_at:
            return n
    blocks = [name for name, _ in (module or gm).named_modules() if name]
    names = list(dict.fromkeys(blocks + _layer_names(gm)))
    shown = ", ".join(names[:MAX_NAMES]) + (f", … ({len(names)} in all)" if len(names) > MAX_NAMES else "")
    raise InputError(f"{where}: no layer '{features_at}' (features_at); it has: {shown}")


def _ancestors(node: fx.Node) -> set[fx.Node]:
    seen: set[fx.Node] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(n.all_input_nodes)
    return seen


def split_graph(
    gm: fx.GraphModule, features_at: str, where: str, module: Optional[nn.Module] = None
) -> tuple[fx.GraphModule, fx.GraphModule]:
    """(features: x -> the cut node's output, rest: that output -> the network's output)."""
    cut = _find(gm, features_at, where, module)
    before = _ancestors(cut)
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    after = _ancestors(out_node) - before - {out_node}
    if cut not in _ancestors(out_node):
        raise InputError(f"{where}: the output does not depend on '{features_at}': cut at a layer on the way to it")
    for n in after:
        crossing = [a for a in n.all_input_nodes if a in before and a is not cut and a.op != "get_attr"]
        if crossing:
            raise InputError(
                f"{where}: cannot cut at '{features_at}': '{n.name}' after it also uses '{crossing[0].name}' "
                "before it (a skip connection across the cut); name a layer the whole network passes through"
            )

    g1, env1 = fx.Graph(), {}  # type: ignore[var-annotated]
    for n in gm.graph.nodes:
        if n in before:
            env1[n] = g1.node_copy(n, lambda a: env1[a])
    g1.output(env1[cut])

    g2, env2 = fx.Graph(), {}
    env2[cut] = g2.placeholder("features")
    for n in gm.graph.nodes:
        if n.op == "get_attr" and any(u in after or u.op == "output" for u in n.users):
            env2[n] = g2.node_copy(n, lambda a: env2[a])
        elif n in after:
            env2[n] = g2.node_copy(n, lambda a: env2[a])
    g2.output(env2[out_node.args[0]] if not isinstance(out_node.args[0], (tuple, list)) else env2[out_node.args[0][0]])
    return fx.GraphModule(gm, g1), fx.GraphModule(gm, g2)


def _only_linear(rest: fx.GraphModule) -> Optional[nn.Linear]:
    """The rest's one Linear layer, when everything else in it only passes values through."""
    linear = None
    for n in rest.graph.nodes:
        if n.op in ("placeholder", "output", "get_attr"):
            continue
        if n.op == "call_module":
            m = rest.get_submodule(str(n.target))
            if isinstance(m, nn.Linear) and linear is None:
                linear = m
                continue
            if isinstance(m, PASS_THROUGH):
                continue
        if n.op == "call_function" and n.target in PASS_THROUGH_FUNCTIONS:
            continue
        if n.op == "call_method" and n.target in ("flatten", "view", "reshape"):
            continue
        return None
    return linear


class SplitTeacher(nn.Module):
    """A trained network as the pipeline wants a teacher: ``features(x)`` (N, D), ``head(f)``
    logits, ``classifier`` an nn.Linear (the rest, or a probe), ``forward`` the whole network."""

    def __init__(self, features: nn.Module, rest: nn.Module, feature_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.front, self.rest = features, rest
        self.feature_shape = tuple(int(d) for d in feature_shape)  # one sample's, before flattening
        found = _only_linear(rest) if isinstance(rest, fx.GraphModule) else None
        self.probe = found is None  # the classifier is fitted (fit_probe), not the network's own
        self.classifier = found if found is not None else nn.Linear(int(np.prod(self.feature_shape)), n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.front(x).flatten(1)  # no len(x): the traced checkpoint copy keeps any batch size

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.rest(f.reshape((-1, *self.feature_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def cut_teacher(
    module: nn.Module, features_at: str, input_shape: tuple[int, ...], where: str = "teacher"
) -> SplitTeacher:
    """Any nn.Module (an onnx2torch conversion included) cut at ``features_at``."""
    module = module.eval()
    if isinstance(module, fx.GraphModule):
        gm = module
    else:

        class Tracer(fx.Tracer):  # the named block stays one node, however it is built inside
            def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
                return qualname == features_at or super().is_leaf_module(m, qualname)

        try:
            gm = fx.GraphModule(module, Tracer().trace(module))
        except Exception as e:  # torch.fx raises many kinds for code it cannot trace
            raise InputError(
                f"{where}: torch.fx cannot trace this module ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                "give a TorchScript teacher with features() and head() instead"
            ) from None
    front, rest = split_graph(gm, features_at, where, module)
    with torch.no_grad():
        f = front(torch.zeros((2, *input_shape)))
        logits = rest(f)
    if logits.dim() != 2:
        raise InputError(
            f"{where}: the network's output has shape {tuple(logits.shape)}; a classifier gives (N, classes)"
        )
    return SplitTeacher(front, rest, tuple(f.shape[1:]), int(logits.shape[1]))


ONNX_PASS_THROUGH = {"Flatten", "Reshape", "Identity", "Dropout", "Squeeze"}


class OnnxTeacher(nn.Module):
    """An ONNX classifier run by onnxruntime, cut at the node (or tensor) ``features_at``:
    ``features`` runs the whole graph with that tensor as an extra output, ``head`` the part after
    it (``onnx.utils.Extractor``). onnxruntime, not onnx2torch: onnx2torch 1.5.15 imports torchvision,
    whose PyPI build needs CUDA's libc10_cuda.so beside the pinned CPU torch (measured: the import
    fails), and onnxruntime is a dependency already (the bundle's ONNX checks). The teacher is
    frozen, which is all the pipeline asks of it; ``classifier`` is the graph's own last Gemm when
    the rest is one, else a probe (:func:`fit_probe`)."""

    def __init__(self, path: Path, features_at: str, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        import onnx
        import onnxruntime as ort
        from onnx import shape_inference

        where = f"--teacher {path}"
        try:
            model = onnx.load(str(path))
        except Exception as e:  # onnx raises its own kinds for files it cannot parse
            raise InputError(f"{where}: cannot read this ONNX file ({type(e).__name__})") from None
        graph = model.graph
        inits = {i.name for i in graph.initializer}
        inputs = [i.name for i in graph.input if i.name not in inits]
        if len(inputs) != 1 or len(graph.output) < 1:
            raise InputError(f"{where}: a teacher has one input (images) and a logits output; this graph has {inputs}")
        self.input_name, self.output_name = inputs[0], graph.output[0].name
        by_name = {n.name: n for n in graph.node}
        tensors = {o for n in graph.node for o in n.output}
        if features_at in by_name:
            self.feature_tensor = by_name[features_at].output[0]
        elif features_at in tensors:
            self.feature_tensor = features_at
        else:
            names = [n.name or n.output[0] for n in graph.node]
            raise InputError(
                f"{where}: no node or tensor '{features_at}' (--features-at); it has: {', '.join(names[:MAX_NAMES])}"
            )
        inferred = shape_inference.infer_shapes(model)
        value_info = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        full = onnx.ModelProto()
        full.CopyFrom(model)
        if self.feature_tensor not in {o.name for o in full.graph.output}:
            full.graph.output.append(
                value_info.get(self.feature_tensor) or onnx.helper.make_empty_tensor_value_info(self.feature_tensor)
            )
        self._full = ort.InferenceSession(full.SerializeToString(), providers=["CPUExecutionProvider"])
        try:
            rest = onnx.utils.Extractor(inferred).extract_model([self.feature_tensor], [self.output_name])
        except Exception as e:  # the cut does not separate the graph (a skip connection across it)
            raise InputError(
                f"{where}: cannot cut at '{features_at}': the rest of the graph needs more than it ({e})"
            ) from None
        self._rest = ort.InferenceSession(rest.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.zeros((2, *input_shape), np.float32)
        logits, f = self._run_full(x)
        if logits.ndim != 2:
            raise InputError(
                f"{where}: the output '{self.output_name}' has shape {logits.shape}; a classifier gives (N, classes)"
            )
        self.feature_shape = tuple(f.shape[1:])
        self.work = onnx_work(inferred, self.input_name)
        self.macs = int(self.work.macs)
        found = _onnx_linear(rest)
        self.probe = found is None
        self.classifier = found if found is not None else nn.Linear(int(np.prod(self.feature_shape)), logits.shape[1])

    def _run_full(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, f = self._full.run([self.output_name, self.feature_tensor], {self.input_name: x.astype(np.float32)})
        return logits, f

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run_full(x.detach().cpu().numpy())[1].reshape(len(x), -1))

    def head(self, f: torch.Tensor) -> torch.Tensor:
        a = f.detach().cpu().numpy().reshape((-1, *self.feature_shape)).astype(np.float32)
        return torch.from_numpy(self._rest.run([self.output_name], {self.feature_tensor: a})[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run_full(x.detach().cpu().numpy())[0])


def _onnx_linear(rest: Any) -> Optional[nn.Linear]:
    """The rest's one Gemm (or MatMul + Add) with constant weights, when everything else only
    reshapes: the teacher's own classifier as an nn.Linear."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in rest.graph.initializer}
    ops = [n for n in rest.graph.node if n.op_type not in ONNX_PASS_THROUGH and n.op_type != "Constant"]
    w = b = None
    if len(ops) == 1 and ops[0].op_type == "Gemm" and ops[0].input[1] in inits:
        attrs = {a.name: a for a in ops[0].attribute}
        if any(attrs[k].f != 1.0 for k in ("alpha", "beta") if k in attrs) or ("transA" in attrs and attrs["transA"].i):
            return None
        w = inits[ops[0].input[1]]
        w = w if "transB" in attrs and attrs["transB"].i else w.T
        b = inits.get(ops[0].input[2]) if len(ops[0].input) > 2 else None
    elif len(ops) == 2 and [o.op_type for o in ops] == ["MatMul", "Add"] and ops[0].input[1] in inits:
        w = inits[ops[0].input[1]].T
        b = next((inits[i] for i in ops[1].input if i in inits), None)
    if w is None or w.ndim != 2:
        return None
    lin = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))
        lin.bias.copy_(torch.from_numpy(b.astype(np.float32)) if b is not None else torch.zeros(w.shape[0]))
    return lin


def onnx_macs(model: Any, input_name: str) -> int:
    """Multiply-accumulates of one input through the graph's Gemm, MatMul and Conv nodes."""
    return int(onnx_work(model, input_name).macs)


def onnx_work(model: Any, input_name: str) -> AnnWork:
    """One input's pass through the graph's Gemm, MatMul and Conv nodes (from their weight shapes
    and the inferred output shapes; a batch dimension counts as 1): MACs, weights, activations
    (the input and those nodes' outputs)."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i).shape for i in model.graph.initializer}
    shapes = {}
    for v in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in v.type.tensor_type.shape.dim]
        shapes[v.name] = dims
    macs = weights = 0
    activations = int(np.prod(shapes.get(input_name, [1])[1:]))
    for n in model.graph.node:
        out = shapes.get(n.output[0]) if n.output else None
        if n.op_type in ("Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in inits:
            macs += int(np.prod(inits[n.input[1]]))
            weights += int(np.prod(inits[n.input[1]]))
        elif n.op_type == "Conv" and n.input[1] in inits and out is not None:
            w = inits[n.input[1]]  # (C_out, C_in / groups, kh, kw)
            macs += int(np.prod(out[1:])) * int(np.prod(w[1:]))
            weights += int(np.prod(w))
        else:
            continue
        activations += int(np.prod(out[1:])) if out is not None else 0
    return AnnWork(float(macs), float(weights), float(activations))


@torch.no_grad()
def fit_probe(teacher: "SplitTeacher | OnnxTeacher", x: np.ndarray, batch: int = 2000) -> float:
    """When the rest of the network is not one Linear: fit ``classifier`` to the teacher's logits
    on ``x`` by least squares (with a bias); returns how often its argmax agrees with the teacher."""
    xs = torch.from_numpy(x)
    feats = torch.cat([teacher.features(xs[i : i + batch]) for i in range(0, len(xs), batch)])
    logits = torch.cat([teacher(xs[i : i + batch]) for i in range(0, len(xs), batch)])
    a = torch.cat([feats, torch.ones(len(feats), 1)], 1).double()
    sol = torch.linalg.lstsq(a, logits.double()).solution  # (D + 1, K)
    lin = nn.Linear(feats.shape[1], logits.shape[1])
    lin.weight.copy_(sol[:-1].T.float())
    lin.bias.copy_(sol[-1].float())
    teacher.classifier = lin
    return float((lin(feats).argmax(1) == logits.argmax(1)).float().mean())


def to_torchscript(teacher: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """The teacher as TorchScript bytes (traced features, head and forward; the classifier kept as
    an attribute), for the checkpoint."""

    class Scripted(nn.Module):
        def __init__(self, t: Any) -> None:
            super().__init__()
            self.t, self.classifier = t, t.classifier

        def features(self, x: torch.Tensor) -> torch.Tensor:
            return self.t.features(x)

        def head(self, f: torch.Tensor) -> torch.Tensor:
            return self.t.head(f)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.t.head(self.t.features(x))

    x = torch.zeros((2, *input_shape))
    with torch.no_grad():
        f = teacher.features(x)  # type: ignore[operator]
        traced = torch.jit.trace_module(Scripted(teacher).eval(), {"forward": x, "features": x, "head": f})
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return buf.getvalue()


def from_torchscript(blob: bytes) -> Any:
    return torch.jit.load(io.BytesIO(blob), map_location="cpu")
