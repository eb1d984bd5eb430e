"""The deployment bundle: what a neuromorphic host loads.

    <bundle>/members/member_<k>.nir   one NIR graph per student (nir.write), exact integers in metadata
    <bundle>/gate.onnx                the gate (host side)
    <bundle>/head.onnx                imputation + readouts + classifier (host side)
    <bundle>/manifest.json            versions, dataset, encoding, T, K, partition, imputation values,
                                      budget calibration, per-member sizes, sha256 of every file
    <bundle>/manifest.sha256          sha256 of manifest.json itself

A bundle is written into a temporary folder beside its destination and renamed into place, so a
failure never leaves half a bundle; an existing bundle is replaced only when asked (``force``).
Loading reads the manifest into a checked :class:`~sne_deploy.exporters.manifest.Manifest` and verifies every
file's sha256 against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sne_deploy import __version__
from sne_deploy.simulators.encoding import EVENTS, encode_spikes, events_frame
from sne_deploy.simulators.errors import GraphError
from sne_deploy.simulators.files import WriteError, atomic_dir, exclusive, sha256_file
from sne_deploy.simulators.network import Network
from sne_deploy.simulators.nir_io import from_nir, to_nir
from sne_deploy.simulators.plain import same

from .checks import ExportError, check_finite_module, check_network
from .manifest import BUNDLE_FORMAT, BundleError, Manifest, ModelInfo

__all__ = ["BundleParts", "Bundle", "BundleError", "write_bundle", "load_bundle"]


@dataclass
class BundleParts:
    """Everything the exporter needs, as plain data and host-side torch modules."""

    networks: Sequence[Network]
    gate: Any  # torch.nn.Module: x (N, n_in) -> scores (N, K)
    head: Any  # torch.nn.Module: counts (N, sum g), awake (N, K) -> logits
    gate_example: np.ndarray  # inputs to prove ONNX == torch on
    head_example: tuple[np.ndarray, np.ndarray]
    info: ModelInfo


def write_bundle(
    parts: BundleParts, out: Path, target: str, force: bool = False, strict: bool = False
) -> tuple[Path, list[str]]:
    """Check, write and verify a bundle; return its path and the checks' warnings."""
    out = Path(out)
    steps = parts.info.steps
    warnings: list[str] = []
    for net in parts.networks:
        warnings += check_network(net, target, steps, strict)
    check_finite_module(parts.gate, "gate")
    check_finite_module(parts.head, "head")
    check_destination(out, force)
    try:
        with exclusive(out), atomic_dir(out) as tmp:
            _write_contents(parts, tmp, target, warnings)
    except WriteError:
        raise
    except OSError as e:
        raise ExportError(f"cannot write to {out.parent}: {e.strerror or e}") from None
    return out, warnings


def check_destination(out: Path, force: bool) -> None:
    """A bundle may be written where nothing is, or, with ``force``, over an earlier bundle only."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not force:
            raise ExportError(f"{out} already exists; pass --force to replace it")
        if out.is_symlink() or not is_bundle(out):
            raise ExportError(
                f"{out} is not an sne-deploy bundle; --force replaces only an earlier bundle, "
                "never other files or folders"
            )


def is_bundle(path: Path) -> bool:
    """A folder whose manifest.json says it is an sne-deploy bundle (the only thing --force replaces)."""
    try:
        return json.loads((Path(path) / "manifest.json").read_text()).get("format") == BUNDLE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _write_contents(parts: BundleParts, tmp: Path, target: str, warnings: list[str]) -> None:
    import nir

    from .onnx_export import export_onnx

    (tmp / "members").mkdir()
    member_files = []
    for k, net in enumerate(parts.networks):
        rel = f"members/member_{k}.nir"
        graph = to_nir(net)
        graph.metadata.update({"encoding": parts.info.encoding, "steps": parts.info.steps, "member": k})
        nir.write(str(tmp / rel), graph)
        _verify_round_trip(net, tmp / rel)
        member_files.append(rel)
    gate_diff = export_onnx(parts.gate, [parts.gate_example], ["x"], tmp / "gate.onnx")
    head_diff = export_onnx(parts.head, list(parts.head_example), ["counts", "awake"], tmp / "head.onnx")
    files = member_files + ["gate.onnx", "head.onnx"]
    manifest = Manifest(
        **{k: v for k, v in vars(parts.info).items()},
        target=target,
        members=len(parts.networks),
        member_files=member_files,
        member_sizes=[net.sizes for net in parts.networks],
        onnx_max_abs_diff={"gate": gate_diff, "head": head_diff},
        check_warnings=warnings,
        files={f: sha256_file(tmp / f) for f in files},
        toolkit_version=__version__,
    )
    (tmp / "manifest.json").write_text(json.dumps(manifest.to_dict(), indent=2))
    (tmp / MANIFEST_SUM).write_text(sha256_file(tmp / "manifest.json") + "\n")


def _verify_round_trip(net: Network, path: Path) -> None:
    """The member as written must read back as the very same record (every field, every dtype)."""
    back = from_nir(path)
    for a, b in zip(net.layers, back.layers):
        if not same(replace(a, name=b.name), b):  # NIR names the nodes lif0, lif1, ... itself
            raise ExportError(f"{path.name}: layer '{a.name}' does not survive nir.write/nir.read exactly")
    if len(back.layers) != len(net.layers) or not same(net.dynamics, back.dynamics) or back.dt != net.dt:
        raise ExportError(f"{path.name}: the network does not survive nir.write/nir.read exactly")


@dataclass
class Bundle:
    path: Path
    manifest: Manifest
    networks: list[Network]

    @property
    def steps(self) -> int:
        return self.manifest.steps

    @property
    def n_members(self) -> int:
        return len(self.networks)

    def spikes(self, x_flat: np.ndarray) -> np.ndarray:
        """Intensities (N, n_in) as the input spikes (N, T, n_in) of the code the students were
        trained on; event data's bins (N, T * n_in) as they are."""
        return encode_spikes(x_flat, self.steps, self.manifest.encoding)

    def gate_view(self, x_flat: np.ndarray) -> np.ndarray:
        """What the gate (and the teacher) see of the inputs: the intensities, or event data's frames."""
        if self.manifest.encoding == EVENTS:
            return events_frame(x_flat, self.steps, float(self.manifest.input_normalisation["high"]))
        return x_flat

    def gate_scores(self, x_flat: np.ndarray) -> np.ndarray:
        from .onnx_export import run_onnx

        return run_onnx(self.path / "gate.onnx", {"x": self.gate_view(x_flat)})

    def head_logits(self, counts: np.ndarray, awake: np.ndarray) -> np.ndarray:
        from .onnx_export import run_onnx

        return run_onnx(self.path / "head.onnx", {"counts": counts, "awake": awake.astype(np.float32)})


def load_bundle(path: Path) -> Bundle:
    path = Path(path)
    mpath = path / "manifest.json"
    if not path.is_dir() or not mpath.is_file():
        raise BundleError(f"{path} is not a bundle (no manifest.json); make one with 'sne-deploy export MODEL.pt'")
    try:
        manifest = Manifest.from_dict(json.loads(mpath.read_text()), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mpath} is not valid JSON: {e}") from None
    _check_manifest_sum(path)
    files = manifest.files
    for rel in manifest.member_files + ["gate.onnx", "head.onnx"]:
        if rel not in files:
            raise BundleError(f"{path}: manifest lists no checksum for {rel}")
    for rel, digest in files.items():
        f = _inside(path, rel)
        if not f.is_file():
            raise BundleError(f"{path}: file {rel} is missing")
        if sha256_file(f) != digest:
            raise BundleError(f"{path}: {rel} does not match its sha256 in manifest.json (tampered or corrupted)")
    networks = []
    for k, rel in enumerate(manifest.member_files):
        try:
            net = from_nir(_inside(path, rel))
        except GraphError as e:
            raise BundleError(f"{path}: {e}") from None
        if net.sizes != manifest.member_sizes[k]:
            raise BundleError(
                f"{path}: member {k} ({rel}) has layer sizes {net.sizes}, the manifest says {manifest.member_sizes[k]}"
            )
        _cross_check(path, rel, k, net, manifest)
        networks.append(net)
    return Bundle(path, manifest, networks)


def _cross_check(path: Path, rel: str, k: int, net: Network, manifest: Manifest) -> None:
    """What a member's graph states about itself (written beside its layers at export) must agree
    with the manifest: a manifest edited to run 1000 steps, or member files swapped, is refused
    even when every checksum was recomputed. Every member carries fixed-point values (export
    checks them), so the fixed mode, the one simulate defaults to, can run."""
    meta = net.metadata
    stated = {"member": k, "steps": manifest.steps, "encoding": manifest.encoding}
    for key, want in stated.items():
        if key not in meta:
            raise BundleError(
                f"{path}: member {k} ({rel}) does not state its {key} (not written by sne-deploy export?)"
            )
        got = meta[key]
        got = got.decode() if isinstance(got, bytes) else (got.item() if hasattr(got, "item") else got)
        if str(got) != str(want):
            raise BundleError(f"{path}: member {k} ({rel}) says {key} = {got}, the manifest says {want} (edited?)")
    if any(layer.fixed is None for layer in net.layers):
        raise BundleError(f"{path}: member {k} ({rel}) has no fixed-point values (not written by sne-deploy export?)")


MANIFEST_SUM = "manifest.sha256"


def _check_manifest_sum(path: Path) -> None:
    """The manifest's own integrity: its sha256, written beside it at export."""
    try:
        recorded = (path / MANIFEST_SUM).read_text().strip()
    except OSError:
        raise BundleError(
            f"{path}: {MANIFEST_SUM} is missing (a bundle from an older sne-deploy? export it again)"
        ) from None
    if sha256_file(path / "manifest.json") != recorded:
        raise BundleError(f"{path}: manifest.json does not match {MANIFEST_SUM} (edited, tampered or corrupted)")


def _inside(bundle: Path, rel: str) -> Path:
    """``bundle/rel`` if it resolves inside the bundle (symlinks followed); else one error that does
    not say whether the outside path exists."""
    root = bundle.resolve()
    target = (bundle / rel).resolve()
    if Path(rel).is_absolute() or root not in target.parents:
        raise BundleError(f"{bundle}: manifest.json names a file outside the bundle ({rel!r})")
    return target
