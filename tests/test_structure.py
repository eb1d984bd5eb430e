"""The house rules that keep the code easy to change: one error type the CLI trusts, typed records
with a checked JSON form, and imports that point one way."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from sne_deploy.exporters.manifest import BundleError, Manifest
from sne_deploy import cli
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


def test_every_project_error_is_an_sne_error():
    from sne_deploy.exporters.checks import ExportError
    from sne_deploy.checkpoint import CheckpointError
    from sne_deploy.data import DataError
    from sne_deploy.simulators.errors import BackendUnavailable, Brian2Error, InputError, WorkerError

    for e in (GraphError, InputError, BackendUnavailable, WorkerError, Brian2Error, ExportError, BundleError,
              CheckpointError, DataError):
        assert issubclass(e, SneError), e


def test_manifest_round_trips_and_refuses_bad_fields(digits_bundle):
    m = digits_bundle.manifest
    on_disk = json.loads((digits_bundle.path / "manifest.json").read_text())
    assert m.to_dict() == on_disk
    assert Manifest.from_dict(m.to_dict(), "b") == m
    for key, bad, msg in (("steps", "1000", "'steps'"), ("gate_macs", "NaN", "'gate_macs'"),
                          ("member_files", "members/member_0.nir", "'member_files'"),
                          ("fixed_subsets", {"1": [0]}, "fixed_subsets")):
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
    code = ("import sys; import sne_deploy.checkpoint, sne_deploy.deploy, sne_deploy.runtime; "
            "bad = [m for m in ('sne_deploy.train', 'sne_deploy.students', 'sne_deploy.head_gate') if m in sys.modules]; "
            "print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_simulation_loop_and_fixed_point_rule_import_no_torch():
    code = ("import sys; import sne_deploy.simulators.loop, sne_deploy.simulators.fixed_point, sne_deploy.simulators.reference, sne_deploy.simulators.files; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
