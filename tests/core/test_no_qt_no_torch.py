"""The headless layers stay headless: plugin discovery imports neither torch nor Qt; workbench.core never Qt.

The import checks run in a fresh interpreter (the test process itself may already have imported anything), which
prints a JSON report; a meta-path hook in it remembers who first asked for each watched module, so a failure
names the culprit.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "workbench" / "core"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")

# Runs first in every subprocess: records the import stack of the first request for each watched module.
WATCHER = textwrap.dedent("""
    import json, sys, traceback

    WATCHED = set(json.loads(sys.argv[1]))
    first_import = {}

    class _Watcher:
        def find_spec(self, name, path=None, target=None):
            root = name.partition(".")[0]
            if root in WATCHED and root not in first_import:
                stack = [line for line in traceback.format_stack()[:-1] if "<frozen importlib" not in line]
                first_import[root] = "".join(stack[-12:])
            return None  # never load anything ourselves

    sys.meta_path.insert(0, _Watcher())

    def loaded(names):
        return sorted(n for n in names if n in sys.modules or any(m.startswith(n + ".") for m in sys.modules))
""")


def run_report(body: str, watched, env) -> dict:
    code = WATCHER + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(list(watched))], env=env, cwd=str(REPO),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"subprocess failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"no output from the subprocess; stderr:\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1])


def culprits(report: dict, names) -> str:
    return "\n".join(f"--- first import of {n}:\n{report['first_import'].get(n, '?')}" for n in names)


def test_discovery_imports_neither_torch_nor_qt(subprocess_env):
    report = run_report("""
        import workbench.plugin_system as ps
        registry = ps.discover()
        print(json.dumps({
            "loaded": loaded(WATCHED),
            "first_import": first_import,
            "contributions": sorted(f"{kind}:{spec.id}" for kind, spec in registry.all()),
            "failures": [f.message() for f in registry.failures],
        }))
    """, ("torch",) + QT_MODULES, subprocess_env())
    assert report["loaded"] == [], (
        f"plugin discovery imported {report['loaded']} (contributions: {report['contributions']}; "
        f"failures: {report['failures']})\n{culprits(report, report['loaded'])}")


def test_importing_the_plugin_system_is_light(subprocess_env):
    report = run_report("""
        import workbench.hookspecs, workbench.plugin_system, workbench.schema.params
        print(json.dumps({"loaded": loaded(WATCHED), "first_import": first_import}))
    """, ("torch", "numpy") + QT_MODULES, subprocess_env())
    assert report["loaded"] == [], culprits(report, report["loaded"])


def core_modules() -> list[str]:
    import pkgutil

    return sorted(info.name for info in pkgutil.walk_packages([str(CORE)], prefix="workbench.core."))


def test_core_modules_do_not_import_qt(subprocess_env):
    modules = core_modules()
    assert "workbench.core.cells" in modules
    report = run_report(f"""
        import importlib
        QT = {QT_MODULES!r}
        errors = {{}}
        for name in {modules!r}:
            try:
                importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001 - report everything, decide in the test
                missing = getattr(exc, "name", None) or ""
                errors[name] = {{
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "qt": isinstance(exc, ImportError) and missing.partition(".")[0] in QT,
                    "trace": traceback.format_exc()[-3000:],
                }}
        print(json.dumps({{"loaded": loaded(WATCHED), "first_import": first_import, "errors": errors}}))
    """, QT_MODULES, subprocess_env())

    qt_errors = {name: e for name, e in report["errors"].items() if e["qt"]}
    assert report["loaded"] == [] and not qt_errors, (
        f"importing workbench.core loaded {report['loaded'] or list(qt_errors)}; core must not use Qt\n"
        + culprits(report, report["loaded"] or QT_MODULES))
    broken = {name: e for name, e in report["errors"].items() if not e["qt"]}
    assert not broken, "these workbench.core modules do not import:\n" + "\n".join(
        f"  {name}: {e['type']}: {e['message']}\n{e['trace']}" for name, e in broken.items())


def _forbidden_imports(path: Path, root: Path = REPO) -> list[str]:
    """``"file:line: module"`` for every import of a Qt module in ``path`` (also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            func_name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if func_name in ("import_module", "__import__"):
                names = [node.args[0].value]
        for name in names:
            if name.partition(".")[0] in QT_MODULES:
                found.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    return sorted(found, key=lambda item: int(item.split(":")[1]))


def test_core_sources_have_no_qt_imports():
    files = sorted(CORE.rglob("*.py"))
    assert files, f"no Python files under {CORE}"
    problems = [p for f in files for p in _forbidden_imports(f)]
    assert not problems, "workbench/core must not import Qt:\n" + "\n".join(problems)


def test_the_static_check_sees_qt_imports(tmp_path):
    # The checker itself: every spelling of a Qt import is caught, other modules are not.
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        import os, PySide6.QtCore
        from PyQt6 import QtWidgets
        import pyqtgraph as pg
        import importlib
        importlib.import_module("shiboken6")
        __import__("PyQt5.QtGui")
        from . import PySide6
        from torch import nn
        def later():
            from PySide6.QtWidgets import QApplication
    """))
    found = [item.partition(": ")[2] for item in _forbidden_imports(sample, root=tmp_path)]
    assert found == ["PySide6.QtCore", "PyQt6", "pyqtgraph", "shiboken6", "PyQt5.QtGui", "PySide6.QtWidgets"]
