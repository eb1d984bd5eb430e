"""The project's one error hierarchy.

Every error a *user* can cause and fix (a bad option, file, graph, input or a missing backend
environment) derives from :class:`SneError`; its message is one line that names the user's path
or option and what to do. The CLI prints exactly those as one line and exits 2. Anything else
(``ValueError`` from numpy, ``KeyError``, ...) is a bug and keeps its traceback.

The subclasses also derive from the builtin they replace (``ValueError`` or ``RuntimeError``) so
library callers that catch the builtin keep working. This module lives in ``simulators`` because
that is the package every other package depends on; ``exporters`` and ``sne_deploy`` subclass
:class:`SneError` for their own domains.
"""

from __future__ import annotations

from typing import Sequence


class SneError(Exception):
    """Base of every user-facing error: the message is one line a user can act on."""


class InputError(SneError, ValueError):
    """A value, option or file given by the user that cannot be used."""


class GraphError(InputError):
    """A graph, a parameter or an input the runtime cannot run; the message names what and why."""


class BackendUnavailable(SneError, RuntimeError):
    """A backend's environment is missing; the message says how to provide it."""


class WorkerError(SneError, RuntimeError):
    """The Lava worker failed or timed out."""


class Brian2Error(SneError, RuntimeError):
    """The Brian2 backend could not build or run the network (message is one line)."""


def check_choice(what: str, value: object, choices: Sequence[str], error: type[SneError] = InputError) -> None:
    """The one "unknown X 'v' (choose from a, b, c)" refusal; ``what`` names the option or field."""
    if value not in choices:
        raise error(f"unknown {what} '{value}' (choose from {', '.join(choices)})")
