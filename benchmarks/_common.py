"""What every benchmark script shares: where the repository and its committed results are.

A script runs as ``.venv/bin/python benchmarks/NAME.py``; its folder is then first on sys.path, so
``from _common import ...`` finds this file. The toolkit itself is installed (``make setup``
installs it in editable mode), so no script puts the repository on sys.path for ``sne_deploy``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PROGRESS = sys.stderr.isatty()  # tqdm bars only on a terminal


def with_test_nets() -> None:
    """Make the test suite's library networks (``tests.library_nets``) importable: the interop
    benchmark tabulates the very networks the CI's interop tests run."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


class _PrintMarkdown(argparse.Action):
    """``--markdown JSON``: print the README table of a committed results file and exit (no work)."""

    def __init__(self, option_strings: list[str], dest: str, render: Callable[[dict], str], **kw: Any) -> None:
        super().__init__(option_strings, dest, **kw)
        self.render = render

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        value: Any,
        option_string: Optional[str] = None,
    ) -> None:
        print(self.render(json.loads(Path(value).read_text())))
        parser.exit()


def benchmark_parser(doc: Optional[str], markdown: Optional[Callable[[dict], str]] = None) -> argparse.ArgumentParser:
    """The parser every benchmark starts from: its docstring's first line as description and,
    given the script's ``markdown`` renderer, ``--markdown JSON``."""
    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    if markdown is not None:
        ap.add_argument(
            "--markdown",
            metavar="JSON",
            action=_PrintMarkdown,
            render=markdown,
            help="print the README table for a results file and exit",
        )
    return ap


def write_results(name: str | Path, doc: dict) -> Path:
    """``benchmarks/results/NAME`` (or the path given), written whole: a reader never sees half a file."""
    from sne_deploy.simulators.files import atomic_file

    path = RESULTS / name if isinstance(name, str) else name
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2))
    return path


def table_head(title: str, first: str, columns: list[str] | tuple[str, ...]) -> list[str]:
    """A README table's title line and header: ``| first | col | ... |`` and its rule."""
    return ["", title, "", f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]


def add_cluster_options(ap: argparse.ArgumentParser) -> None:
    """``--workers N`` / ``--cluster ADDRESS``: the script's independent jobs (seeds, ablations) as
    Ray tasks; ``--job-threads``: torch threads per job, serial or not (equal counts, equal results)."""
    ap.add_argument("--workers", type=int, default=None, help="run the independent jobs on N local Ray workers")
    ap.add_argument("--cluster", default=None, metavar="ADDRESS", help="... or on the Ray cluster at ADDRESS")
    ap.add_argument(
        "--job-threads",
        type=int,
        default=None,
        help="torch threads per job (default: all of this machine's, serial; results depend on it)",
    )


def add_teacher_from(ap: argparse.ArgumentParser, when: str = "") -> None:
    """``--teacher-from CHECKPOINT``: a trained checkpoint's teacher instead of training one (the
    Fashion-MNIST recipe and seed give the same network; training it takes most of 10 minutes)."""
    ap.add_argument(
        "--teacher-from",
        default=None,
        metavar="CHECKPOINT",
        help=f"{when}take this checkpoint's teacher (e.g. runs/fashion/model.pt) instead of training one",
    )


def saved_teacher(path: Optional[str]) -> Optional[tuple[Any, str]]:
    """The (teacher, kind) of the checkpoint at ``path`` (``--teacher-from``), or None."""
    if not path:
        return None
    from sne_deploy import checkpoint

    saved = checkpoint.load(Path(path))
    return saved.teacher, saved.teacher_kind


def executor(a: argparse.Namespace) -> Any:
    """The executor ``--workers``/``--cluster`` ask for (Serial when neither is given)."""
    from sne_deploy.cluster import executor_for

    return executor_for(a.workers, a.cluster, progress=PROGRESS)


def job_threads(a: argparse.Namespace) -> int:
    import torch

    return a.job_threads or torch.get_num_threads()
