"""File ▸ Export: the trained model (ONNX / TorchScript), a run's metrics (CSV) and its samples (text).

The model export runs :func:`workbench.core.export.export_model` in a worker thread (a
:class:`~workbench.gui.jobs.JobRunner`: it builds, traces and checks the model, which takes seconds) while a busy
dialog keeps the window responsive; the GUI computes nothing itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QProgressDialog, QWidget

from workbench.core.history_export import metrics_csv, samples_text, write_text
from workbench.gui.jobs import JobRunner
from workbench.gui.views import MenuEntry, ViewRegistry

MODEL_FILTERS = {"onnx": "ONNX model (*.onnx)", "torchscript": "TorchScript model (*.pt)"}
MODEL_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in keep.split("-") if p) or "project"


def _start_dir(window: Any) -> Path:
    return Path(window.doc.path).resolve().parent if window.doc.path else Path.home()


def register(views: ViewRegistry) -> None:
    """File ▸ Export (before Close) with its three actions; they are enabled when the menu opens."""
    window = views.window
    view = views.register_view("export", submenu="&Export", submenu_in="file", entries=[
        MenuEntry("&Model (ONNX or TorchScript)…", name="model", slot=lambda: export_model_dialog(window),
                  status_tip="Export the trained model's forward pass, checked against the model"),
        MenuEntry("Run &Metrics (CSV)…", name="metrics", slot=lambda: export_metrics_dialog(window),
                  status_tip="Every recorded series of the latest run (or of the runs selected in the dashboard) "
                             "as a CSV table"),
        MenuEntry("Run &Samples (text)…", name="samples", slot=lambda: export_samples_dialog(window),
                  status_tip="The generated samples of the latest run as a text file")])
    assert view.menu is not None
    view.menu.aboutToShow.connect(lambda: _update(view.actions, window.doc.project.history.runs))


def _update(actions: dict[str, Any], runs: list[Any]) -> None:
    actions["metrics"].setEnabled(bool(runs))
    actions["samples"].setEnabled(any(r.samples for r in runs))


# ---- the model ----------------------------------------------------------------------------------------------

def export_model_dialog(window: Any) -> str | None:
    project = window.doc.project
    base = _start_dir(window) / _slug(project.name)
    path, chosen = QFileDialog.getSaveFileName(window, "Export model", str(base) + ".onnx",
                                               ";;".join(MODEL_FILTERS.values()), MODEL_FILTERS["onnx"])
    if not path:
        return None
    fmt = next((f for f, flt in MODEL_FILTERS.items() if flt == chosen), None)
    if fmt is None or Path(path).suffix.lower() in (".onnx", ".pt"):
        fmt = "onnx" if Path(path).suffix.lower() == ".onnx" else (fmt or "torchscript")
    if not Path(path).suffix:
        path += MODEL_SUFFIX[fmt]
    if not trained(project):
        answer = QMessageBox.question(window, "Export untrained model?",
                                      "This project has no trained weights for its graph: the export would hold "
                                      "freshly initialised weights. Export anyway?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return None
    return export_model_to(window, path, fmt)


def trained(project: Any) -> bool:
    ckpt = project.checkpoint
    return bool(ckpt is not None and ckpt.weights and ckpt.graph_hash == project.graph.content_hash())


def export_model_to(window: Any, path: str, fmt: str, *, quiet: bool = False) -> str | None:
    """Export in a worker thread with a busy dialog; the result (or the reason it failed) is shown.  Returns the
    path written, or None.  ``quiet``: no message boxes (tests read ``window.last_export``)."""
    from workbench.schema.errors import WorkbenchError
    from workbench.core.export import export_model

    project = window.doc.project
    base_dir = Path(window.doc.path).resolve().parent if window.doc.path else None
    threads = max(1, int(getattr(project.train, "threads", 0) or 1))

    def work():
        import torch
        torch.set_num_threads(threads)
        return export_model(project, window.registry, path, fmt, base_dir=base_dir)

    def describe(exc: BaseException) -> str:
        # the whole message of the errors an export meets (a bad path, an operator the format lacks)
        return str(exc) if isinstance(exc, (WorkbenchError, OSError, ValueError)) else f"{type(exc).__name__}: {exc}"

    busy = QProgressDialog(f"Exporting the model to {Path(path).name}…", "", 0, 0, window)
    busy.setWindowTitle("Export model")
    busy.setCancelButton(None)       # tracing cannot be interrupted half-way; it takes seconds
    busy.setWindowModality(Qt.WindowModality.WindowModal)
    busy.setMinimumDuration(300)
    jobs = JobRunner("model export", busy, thread_name="seqwb-export", describe=describe)
    outcome: dict[str, Any] = {}
    loop = QEventLoop()
    jobs.submit(lambda _job: work(), on_result=lambda result: (outcome.update(result=result), loop.quit()),
                on_error=lambda message: (outcome.update(error=message), loop.quit()))
    loop.exec()                      # the window stays responsive (and modal under the busy dialog) meanwhile
    busy.close()
    busy.deleteLater()
    if "error" in outcome:
        error = outcome["error"]
        window.last_export = {"ok": False, "error": error}
        if not quiet:
            QMessageBox.warning(window, "Cannot export the model", error)
        window.show_message(f"Export failed: {error.splitlines()[0]}")
        return None
    result = outcome["result"]
    window.last_export = {"ok": True, **result.to_dict()}
    shapes = "\n".join(f"  {r['name']}: {r['dtype']} [{', '.join(str(d) for d in r['shape'])}]"
                       for r in result.inputs + result.outputs)
    check = (f"Checked with {result.checked_with}: largest difference {result.max_abs_diff:.3g}."
             if result.max_abs_diff is not None else result.checked_with)
    notes = "".join(f"\n\n{n}" for n in result.notes)
    window.show_message(f"Exported the model to {path}")
    if not quiet:
        QMessageBox.information(window, "Model exported",
                                f"Wrote {path} ({fmt}).\n\nInputs and outputs (time-major):\n{shapes}\n\n{check}"
                                f"{notes}")
    return path


# ---- metrics and samples ------------------------------------------------------------------------------------

def runs_for_export(history: Any, selected_ids: list[str]) -> list[Any]:
    """The runs selected in the dashboard's list, or else the latest run."""
    chosen = [r for r in history.runs if r.id in set(selected_ids)]
    return chosen or ([history.current] if history.current is not None else [])


def _selected(window: Any) -> list[str]:
    dashboard = getattr(window, "dashboard", None)
    return dashboard.selected_run_ids() if dashboard is not None else []


def _ask_path(parent: QWidget, title: str, start: Path, name: str, flt: str, suffix: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, title, str(start / name), flt)
    if not path:
        return None
    return path if Path(path).suffix else path + suffix


def export_metrics_dialog(window: Any) -> str | None:
    return ask_and_export_metrics(window, window.doc, _selected(window), window.show_message)


def export_samples_dialog(window: Any) -> str | None:
    return ask_and_export_samples(window, window.doc, _selected(window), window.show_message)


def ask_and_export_metrics(parent: QWidget, doc: Any, selected_ids: list[str], report=None) -> str | None:
    runs = runs_for_export(doc.project.history, selected_ids)
    if not runs:
        QMessageBox.information(parent, "Nothing to export", "This project has no training runs yet.")
        return None
    start = Path(doc.path).resolve().parent if doc.path else Path.home()
    name = f"{_slug(doc.project.name)}-{'-'.join(r.id for r in runs)}-metrics.csv"
    path = _ask_path(parent, "Export run metrics", start, name, "CSV table (*.csv)", ".csv")
    return export_metrics_to(parent, path, runs, report) if path else None


def ask_and_export_samples(parent: QWidget, doc: Any, selected_ids: list[str], report=None) -> str | None:
    runs = [r for r in runs_for_export(doc.project.history, selected_ids) if r.samples]
    if not runs:
        QMessageBox.information(parent, "Nothing to export", "The run has no generated samples.")
        return None
    start = Path(doc.path).resolve().parent if doc.path else Path.home()
    name = f"{_slug(doc.project.name)}-{runs[0].id}-samples.txt"
    path = _ask_path(parent, "Export samples", start, name, "Text file (*.txt)", ".txt")
    return export_samples_to(parent, path, runs[0], report) if path else None


def export_metrics_to(parent: QWidget, path: str, runs: list[Any], report=None) -> str | None:
    """Write every series of ``runs`` to ``path`` (CSV); a failure is shown, not raised."""
    return _write_shown(parent, path, metrics_csv(runs), "metrics",
                        f"Wrote the metrics of {', '.join(r.id for r in runs)} to {path}", report)


def export_samples_to(parent: QWidget, path: str, run: Any, report=None) -> str | None:
    """Write the samples of ``run`` to ``path`` (text); a failure is shown, not raised."""
    return _write_shown(parent, path, samples_text(run), "samples", f"Wrote the samples of {run.id} to {path}",
                        report)


def _write_shown(parent: QWidget, path: str, text: str, what: str, done: str, report) -> str | None:
    """``write_text`` with a failure shown in a message box; ``report(done)`` after a success."""
    try:
        write_text(path, text)
    except OSError as exc:
        QMessageBox.warning(parent, f"Cannot export {what}", f"Could not write {path}:\n{exc}")
        return None
    if report is not None:
        report(done)
    return path


def add_dashboard_export_button(dashboard: Any) -> Any:
    """The dashboard's "Export" button (under the runs list): metrics and samples of the selected runs."""
    from PySide6.QtWidgets import QToolButton
    button = QToolButton(dashboard)
    button.setObjectName("runsExport")
    button.setText("Export")
    button.setToolTip("Export the metrics (CSV) or samples (text) of the selected runs, or of the latest run")
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    metrics = menu.addAction("Metrics (CSV)…", lambda: ask_and_export_metrics(
        dashboard, dashboard.doc, dashboard.selected_run_ids()))
    metrics.setObjectName("runsExport:metrics")
    samples = menu.addAction("Samples (text)…", lambda: ask_and_export_samples(
        dashboard, dashboard.doc, dashboard.selected_run_ids()))
    samples.setObjectName("runsExport:samples")
    button.setMenu(menu)
    return button
