"""mkdocs hooks: the CLI reference generated from the parser itself (so it cannot drift from the
code), and the committed benchmark plots served with the results pages."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- cli-reference -->"


def cli_reference() -> str:
    """Every command's ``--help``, as the installed sne-deploy prints it."""
    from sne_deploy.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["```text", parser.format_help().rstrip(), "```"]
    for name, p in sub.choices.items():
        parts += [f"\n## sne-deploy {name}\n", "```text", p.format_help().rstrip(), "```"]
    return "\n".join(parts)


GRIFFE_TREE = ROOT / ".cache" / "griffe"  # mkdocs.yml: mkdocstrings' python handler reads from here


def link_installed_layout() -> None:
    """The installed layout for mkdocstrings' static reader: ``sne_deploy/`` with ``simulators/``
    and ``exporters/`` inside it (the wheel's package-dir), as links into the checkout. Made when
    mkdocs loads this file, before any plugin's config event: mkdocstrings drops search paths that
    do not exist yet when it starts."""
    pkg = GRIFFE_TREE / "sne_deploy"
    pkg.mkdir(parents=True, exist_ok=True)
    for src in sorted((ROOT / "sne_deploy").glob("*.py")) + [ROOT / "simulators", ROOT / "exporters"]:
        link = pkg / src.name
        if not link.is_symlink():
            link.symlink_to(src)
    for link in pkg.iterdir():  # a module removed from the checkout leaves no stale link
        if link.is_symlink() and not link.exists():
            link.unlink()


link_installed_layout()


def on_page_markdown(markdown: str, **_: Any) -> str:
    return markdown.replace(MARKER, cli_reference()) if MARKER in markdown else markdown


def on_files(files: Files, config: Any, **_: Any) -> Files:
    for png in sorted((ROOT / "benchmarks" / "results").glob("*.png")):
        files.append(File.generated(config, f"results/img/{png.name}", abs_src_path=str(png)))
    return files
