"""Which plugins the user turned off: the environment and a small JSON file in the user's config folder.

Read by the loader before any plugin module is imported (so a disabled plugin's code never runs), written by the
plugin manager.  Qt-free on purpose: ``seqwb`` on a server honours the same settings as the window.

- ``SEQWB_NO_PLUGINS=1`` — load only the plugins that ship with Sequence Workbench;
- ``SEQWB_DISABLE_PLUGINS=dist1,dist2`` — skip these distributions (or entry-point names);
- ``plugins.json`` in ``$SEQWB_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/seqwb``, else ``~/.config/seqwb``:
  ``{"disabled": ["seqwb-plugin-example"]}``, what the plugin manager's check boxes write.  Changes take effect
  at the next start.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

ENV_DISABLE = "SEQWB_DISABLE_PLUGINS"
ENV_NO_PLUGINS = "SEQWB_NO_PLUGINS"
ENV_CONFIG_DIR = "SEQWB_CONFIG_DIR"
SETTINGS_FILE = "plugins.json"
#: the distribution whose plugins are built in: never disabled (the app needs its tasks and blocks)
BUILTIN_DISTRIBUTION = "sequence-workbench"


def normalize(name: str) -> str:
    """Distribution names compare like pip compares them (PEP 503): case and ``-``/``_``/``.`` do not matter."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def config_dir() -> Path:
    if os.environ.get(ENV_CONFIG_DIR):
        return Path(os.environ[ENV_CONFIG_DIR])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "seqwb"


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def read_disabled(path: Path | None = None) -> tuple[list[str], str]:
    """``(names, problem)``: the names disabled in the settings file, and why the file was ignored ("" if not)."""
    path = path or settings_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], ""
    except OSError as exc:
        return [], f"cannot read {path}: {exc.strerror or exc}; no plugin is disabled by it"
    try:
        data = json.loads(raw)
        names = data["disabled"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError("'disabled' must be a list of names")
    except (ValueError, KeyError, TypeError) as exc:
        return [], f"{path} is not a valid plugin settings file ({type(exc).__name__}: {exc}); ignoring it"
    return names, ""


def write_disabled(names: Iterable[str], path: Path | None = None) -> Path:
    """Save the disabled list (atomically); keeps any other keys of the file."""
    from workbench.atomic import atomic_write
    path = path or settings_path()
    data: dict = {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            data = loaded
    except (OSError, ValueError):
        pass
    data["disabled"] = sorted(set(names), key=str.lower)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(data, indent=2) + "\n")
    return path


def env_disabled() -> list[str]:
    return [n for n in (os.environ.get(ENV_DISABLE) or "").split(",") if n.strip()]


def no_third_party() -> bool:
    return (os.environ.get(ENV_NO_PLUGINS) or "").strip().lower() not in ("", "0", "false", "no")


def disabled_reason(distribution: str, entry_point: str, settings_names: Iterable[str]) -> str:
    """Why this plugin is off ("" if it is on).  Built-in plugins are never turned off."""
    if normalize(distribution or "") == BUILTIN_DISTRIBUTION:
        return ""
    keys = {normalize(distribution or ""), normalize(entry_point)} - {""}
    if no_third_party() and distribution != "(registered in code)":
        return f"disabled by {ENV_NO_PLUGINS}=1 (only built-in plugins are loaded)"
    if keys & {normalize(n) for n in env_disabled()}:
        return f"disabled by {ENV_DISABLE}"
    if keys & {normalize(n) for n in settings_names}:
        return f"disabled in the plugin settings ({settings_path()})"
    return ""
