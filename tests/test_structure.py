"""The house rules that keep the code easy to change: one error type the CLI trusts, typed records
with a checked JSON form, and imports that point one way."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from sne_deploy import cli
from sne_deploy.exporters.manifest import BundleError, Manifest
from sne_deploy.simulators.errors import GraphError, SneError


def _fails_with(exc: BaseException):
    def cmd(_args):  # type: ignore[no-untyped-def]
        raise exc

    return cmd


def test_cli_prints_one_line_for_user_errors_and_keeps_tracebacks_for_bugs(monkeypatch, capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["simulate"])
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    args.func = _fails_with(GraphError("layer 'x': bad"))
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    assert cli.main([]) == 2
    assert capsys.readouterr().err.strip() == "sne-deploy: error: layer 'x': bad"
    # a ValueError that is not ours is a bug: it must propagate with its traceback
    args.func = _fails_with(ValueError("operands could not be broadcast together"))
    with pytest.raises(ValueError, match="broadcast"):
        cli.main([])


def test_manifest_round_trips_and_refuses_bad_fields(digits_bundle):
    m = digits_bundle.manifest
    on_disk = json.loads((digits_bundle.path / "manifest.json").read_text())
    assert m.to_dict() == on_disk
    assert Manifest.from_dict(m.to_dict(), "b") == m
    for key, bad, msg in (
        ("steps", "1000", "'steps'"),
        ("gate_macs", "NaN", "'gate_macs'"),
        ("member_files", "members/member_0.nir", "'member_files'"),
        ("fixed_subsets", {"1": [0]}, "fixed_subsets"),
    ):
        d = {**on_disk, key: bad}
        with pytest.raises(BundleError, match=msg):
            Manifest.from_dict(d, "b")
    d = dict(on_disk)
    del d["groups"]
    with pytest.raises(BundleError, match="no 'groups'"):
        Manifest.from_dict(d, "b")
    with pytest.raises(BundleError, match="inconsistent"):
        Manifest.from_dict(replace(m, members=m.members + 1).to_dict(), "b")


def test_loading_or_exporting_a_model_does_not_load_training():
    code = (
        "import sys; import sne_deploy.checkpoint, sne_deploy.deploy, sne_deploy.runtime; "
        "bad = [m for m in ('sne_deploy.train', 'sne_deploy.students', 'sne_deploy.head_gate') if m in sys.modules]; "
        "print(bad); sys.exit(bool(bad))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_simulation_loop_and_fixed_point_rule_import_no_torch():
    code = (
        "import sys; import sne_deploy.simulators.loop, sne_deploy.simulators.fixed_point, sne_deploy.simulators.reference, sne_deploy.simulators.files; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _package_files(*folders: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for folder in folders:
        yield from sorted((root / folder).rglob("*.py"))


def _imported_modules(path) -> set[str]:  # type: ignore[no-untyped-def]
    """Absolute module names a file imports (relative imports resolved to their package)."""
    import ast

    pkg = {"simulators": "sne_deploy.simulators", "exporters": "sne_deploy.exporters"}.get(
        path.parent.name, "sne_deploy"
    )
    if path.parent.name == "lava_procs":
        pkg = "sne_deploy.simulators.lava_procs"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def test_imports_point_one_way_and_only_through_the_namespace():
    """simulators import nothing else of ours; exporters only simulators (and the version); the
    old top-level names are gone everywhere (they would load a second copy of every class)."""
    for path in _package_files("simulators"):
        ours = {m for m in _imported_modules(path) if m.split(".")[0] in ("sne_deploy", "simulators", "exporters")}
        assert all(m.startswith("sne_deploy.simulators") for m in ours), (path, ours)
    for path in _package_files("exporters"):
        ours = {m for m in _imported_modules(path) if m.split(".")[0] in ("sne_deploy", "simulators", "exporters")}
        allowed = ("sne_deploy.simulators", "sne_deploy.exporters", "sne_deploy.__version__")
        assert all(m.startswith(allowed) or m == "sne_deploy" for m in ours), (path, ours)
    for path in _package_files("sne_deploy", "simulators", "exporters", "tests", "benchmarks", "examples"):
        top = {m.split(".")[0] for m in _imported_modules(path)}
        assert not top & {"simulators", "exporters"}, f"{path} imports a top-level simulators/exporters"


def test_every_exception_class_in_the_packages_is_an_sne_error():
    """Found by reading the source, so a new error type cannot be forgotten in a hand-written list."""
    import ast
    import importlib

    found = []
    for path in _package_files("sne_deploy", "simulators", "exporters"):
        if "lava_procs" in path.parts:  # Lava's processes: importable only in the Lava environment
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                (b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")).endswith(("Error", "Exception"))
                for b in node.bases
            ):
                pkg = {"simulators": "sne_deploy.simulators", "exporters": "sne_deploy.exporters"}.get(
                    path.parent.name, "sne_deploy"
                )
                module = importlib.import_module(f"{pkg}.{path.stem}")
                found.append(getattr(module, node.name))
    names = {c.__name__ for c in found}
    assert {"GraphError", "WriteError", "SetupError", "BundleError", "CheckpointError", "DataError"} <= names, names
    for cls in found:
        if not issubclass(cls, Exception):  # cli.Terminated: a signal unwinding the stack, not an error
            assert cls.__name__ == "Terminated", cls
            continue
        assert issubclass(cls, SneError), f"{cls.__module__}.{cls.__name__} is not an SneError"


def test_tests_take_helpers_from_helpers_not_conftest():
    """conftest holds fixtures, which pytest injects; a test that imports conftest's names gets a
    second copy of the module under another name (and its fixtures registered twice)."""
    for path in _package_files("tests"):
        imported = _imported_modules(path)
        assert not any(m.split(".")[-1] == "conftest" or ".conftest." in m for m in imported), path


def test_every_exported_record_has_one_dict_form():
    """The records a network is made of share one serialisation (simulators/plain.py): each has
    to_dict and from_dict, and nothing else writes their fields by hand."""
    from sne_deploy.simulators.linear_maps import ConvGeometry
    from sne_deploy.simulators.network import FixedLayer, Layer, Network
    from sne_deploy.simulators.neuron import Dynamics, LIFFixedParams, LIFParams

    for cls in (LIFParams, LIFFixedParams, Dynamics, ConvGeometry, FixedLayer, Layer, Network):
        assert callable(getattr(cls, "to_dict", None)) and callable(getattr(cls, "from_dict", None)), cls
    for path in _package_files("simulators", "exporters"):
        text = path.read_text()
        assert '"sne_du"' not in text and "l{i}_" not in text, f"{path} writes a record's fields by hand"
