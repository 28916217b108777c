"""What every ``seqwb`` command shares: exit codes, the usage error, the registry, opening and saving projects,
``--set``, JSON output and notes on stderr."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input on the command line: exit code 2."""


def registry():
    from workbench.plugin_system import default_registry
    return default_registry()


def settings(items: list[str] | None) -> dict[str, str]:
    from workbench.schema.params import ParamError, parse_assignments
    try:
        return parse_assignments(items or [])
    except ParamError as exc:
        raise UsageError(str(exc)) from None


def open_project(path: str, registry=None):
    from workbench.core.projectfile import load_project
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such project file: {path}")
    return load_project(p, registry=registry or registry())


def save(project, path: str, registry) -> None:
    from workbench.core.projectfile import project_plugins_used, save_project
    save_project(project, path, plugins_used=project_plugins_used(project, registry))


def apply_settings(project, items, registry) -> list[str]:
    from workbench.core.settings import apply_project_settings
    from workbench.schema.errors import UnknownContributionError
    from workbench.schema.params import ParamError
    try:
        return apply_project_settings(project, settings(items), registry)
    except (ParamError, UnknownContributionError) as exc:
        raise UsageError(str(exc)) from None


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def finite(x: Any) -> Any:
    """A JSON-safe metric: non-finite numbers become null; lists (a confusion matrix) are kept, element-wise."""
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def note(msg: str) -> None:
    sys.stderr.write(f"seqwb: {msg}\n")


def load_model(args: Any, project: Any, reg: Any, *, weights: str = "current", session: Any = None) -> Any:
    """The project's model at ``weights`` for an inference command (``--device``, ``--best``): one
    :class:`~workbench.core.training.session.ModelSession`, the process's threads set once, a clear usage error
    for weights that do not exist or a device that is not there."""
    from workbench.core.device import default_threads
    from workbench.core.training.session import ModelSession, set_cpu_threads
    from workbench.schema.errors import TrainingError
    session = session or ModelSession(reg)
    try:
        loaded = session.load(project, Path(args.file).resolve().parent, weights, getattr(args, "device", None))
    except (ValueError, TrainingError) as exc:
        if isinstance(exc, TrainingError) and "do not fit" in str(exc):
            raise
        raise UsageError(str(exc)) from None
    set_cpu_threads(loaded.device, project.train.threads or default_threads(behind_window=False))
    return loaded
